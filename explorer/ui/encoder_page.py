"""Encoder-only page: contextual representations, similarity and bidirectional attention."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.adapters import encoder
from explorer.adapters.common import display_token
from explorer.plots import encoder as encoder_plots
from explorer.ui import common

EXAMPLES = [
    "She sat on the bank of the river.",
    "He deposited the cheque at the bank.",
    "The animal didn't cross the street because it was too tired.",
    "Paris is the [MASK] of France.",
]


@st.cache_data(max_entries=64, show_spinner=False)
def cached_trace(_loaded, model_id: str, device: str, text: str):
    return encoder.trace_text(_loaded, text)


def render() -> None:
    st.title("Encoder-only: every token reads the whole sentence")
    st.markdown(
        "An encoder (the BERT family) reads all tokens at once. Each block lets every token attend to every other "
        "token, **left and right** (bidirectional), so a word's vector comes to depend on its context: the 'bank' "
        "of a river and the 'bank' that holds money start from the same embedding and drift apart layer by layer. "
        "Encoders are trained with masked-language modelling (and next-sentence prediction for BERT); they "
        "understand text but do not natively generate long text."
    )
    loaded = common.load_for_page("encoder")
    if loaded is None:
        return
    common.run_safely(lambda: _body(loaded))


def _body(loaded) -> None:
    cleaned = common.text_input("encoder_text", "Text", EXAMPLES[0], EXAMPLES)
    if cleaned is None:
        return
    trace = cached_trace(loaded, loaded.model_id, loaded.device, cleaned.text)
    common.notes(trace.notes)
    st.markdown("**Tokens:** " + " ".join(f"`{t}`" for t in trace.tokens))

    common.show_figure(
        encoder_plots.token_trajectories(trace), key="encoder_trajectories",
        caption=f"{len(trace.tokens)} tokens × {trace.num_layers + 1} depths ({trace.hidden_states.shape[2]}-dimensional vectors) "
                "projected on the two directions of greatest variance (PCA fitted once, on all layers together).",
        how_to_read="Each line is one token. Its small first dot is the token's embedding (layer 0, no context yet); "
                    "each further dot is the vector after one more block; the labelled big dot is the last layer. "
                    "Tokens whose lines end close together have similar contextual representations. "
                    "PCA keeps only the share of variance shown on the axes, so distances are approximate.",
    )

    c1, c2 = st.columns(2)
    with c1:
        layer = st.slider("Depth for similarity", 0, trace.num_layers, trace.num_layers, key="encoder_sim_layer",
                          help="0 = embeddings before any attention")
        common.show_figure(
            encoder_plots.cosine_similarity_matrix(trace, layer), key="encoder_similarity",
            caption="Cosine similarity between every pair of token vectors at the chosen depth.",
            how_to_read="Red = pointing the same way (similar), blue = opposite. Compare depth 0 with the last layer: "
                        "context makes some pairs grow more alike.",
        )
    with c2:
        a_layer = st.slider("Block", 1, trace.num_layers, 1, key="encoder_attn_layer") - 1
        heads = ["average"] + list(range(trace.num_heads))
        head = st.selectbox("Head", heads, key="encoder_attn_head", format_func=lambda h: "average of heads" if h == "average" else f"head {h}")
        common.show_figure(
            encoder_plots.layer_attention(trace, a_layer, None if head == "average" else int(head)), key="encoder_attention",
            caption="Self-attention weights: each row is one token's query spreading weight over all tokens (rows sum to 1).",
            how_to_read="Unlike a decoder, an encoder's rows fill the whole square: tokens also look to the right. "
                        "Many heads dump weight on [CLS] or [SEP] when they have nothing useful to read. "
                        "Attention weights are not explanations of the output.",
        )
    _mask_predictions(loaded, trace)


def _mask_predictions(loaded, trace) -> None:
    st.subheader("Masked-token predictions")
    mask = getattr(loaded.tokenizer, "mask_token", None)
    if trace.logits is None:
        st.info(
            f"{loaded.model_id} has no trained masked-language head, so it cannot fill in {mask or '[MASK]'}. "
            "Its representations and attention above are real; pick a model with a head (for example bert-base-uncased, "
            "with internet) to see predictions."
        )
        return
    mask_id = loaded.tokenizer.mask_token_id
    positions = np.flatnonzero(trace.token_ids == mask_id)
    if len(positions) == 0:
        st.info(f"Type {mask} in the text (for example: 'Paris is the {mask} of France.') to see what the model predicts there.")
        return
    for pos in positions:
        probs = np.exp(trace.logits[pos] - trace.logits[pos].max())
        probs /= probs.sum()
        top = np.argsort(-probs)[:5]
        st.markdown(f"Position {pos}: " + ", ".join(f"`{display_token(loaded.tokenizer, int(i))}` {probs[i]:.1%}" for i in top))
