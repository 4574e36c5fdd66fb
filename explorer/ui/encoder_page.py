"""Encoder-only page: contextual representations, similarity and bidirectional attention."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.adapters import encoder
from explorer.adapters.attribution import Target
from explorer.adapters.common import display_token
from explorer.decoding import depth_readout, softmax
from explorer.plots import decoding as decoding_plots
from explorer.plots import encoder as encoder_plots
from explorer.text import code_span, plain
from explorer.ui import attribution_panel
from explorer.ui.view import View, cached, notes

VIEW = View.of_family(
    "encoder",
    text_key="encoder_text",
    settings={
        "encoder_dims": "choice 2|3",
        "encoder_sim_layer": "int 0 1000",
        "encoder_attn_layer": "int 1 1000",
        **attribution_panel.link_settings("encoder"),
    },
    keep=(
        "encoder_attn_head",
        "encoder_pair_a",
        "encoder_pair_b",
        "encoder_mask_positions",
    ),
)

EXAMPLES = [
    "She sat on the bank of the river.",
    "He went to the bank to deposit a cheque.",
    "The animal didn't cross the street because it was too tired.",
    "The capital of [MASK] is Paris.",
    "Paris is the [MASK] of France.",
]
# What each example shows, measured on the embedded default (tests/test_example_notes.py checks every claim).
EXAMPLE_NOTES = {
    "She sat on the bank of the river.": (
        "'bank' by a river. It is token 5, as in the money sentence next to it, so both start from the same "
        "vector; the figure of 'bank' in different sentences shows them drift apart block by block."
    ),
    "He went to the bank to deposit a cheque.": (
        "'bank' that holds money, at the same position as the river 'bank': same start, other context. After "
        "the last block its cosine with the river 'bank' is about 0.6, against about 0.94 for a stream's bank."
    ),
    "The animal didn't cross the street because it was too tired.": (
        "What does 'it' point to? In the pair figure compare 'it' with 'animal', then with 'street': after every "
        "block 'it' is closer to 'animal' (a similarity, not proof that the model resolves 'it')."
    ),
    "The capital of [MASK] is Paris.": (
        "Fill the gap from both sides: the top answer is 'France', read from 'Paris' after the gap; with the "
        "sentence cut after 'is' the top answer is 'India'."
    ),
    "Paris is the [MASK] of France.": (
        "Where it fails: the top answer is 'name' (8%); 'capital' only comes second (also 8%)."
    ),
}


HEADLINE = "Encoder-only: every token reads the whole sentence"
INTRO = (
    "An encoder (the BERT family) reads all tokens at once. Each block lets every token attend to every other "
    "token, **left and right** (bidirectional), so a word's vector comes to depend on its context: the 'bank' "
    "of a river and the 'bank' that holds money start from the same embedding and drift apart layer by layer. "
    "Encoders are trained with masked-language modelling (and next-sentence prediction for BERT); they "
    "understand text but do not natively generate long text."
)


# A trace is frozen with read-only arrays, so every session shares one object. Without the
# vocabulary head: masked predictions apply it at the masked positions only (cached_mask_readout).
@cached(max_entries=32)
def cached_trace(loaded, text: str):
    return encoder.trace_text(loaded, text, with_logits=False)


# The figure of one trace, shared by every session that shows it (a class on one link): its
# PCA and one Plotly trace per token cost about half of a rerun's CPU time.
@cached(max_entries=32)
def cached_trajectories(loaded, text: str, dims: int, _trace):
    return encoder_plots.token_trajectories(_trace, dims=dims)


def render() -> None:
    VIEW.text_page(HEADLINE, INTRO, "Text", EXAMPLES, _body, example_notes=EXAMPLE_NOTES)


def _body(loaded, text: str) -> None:
    trace = cached_trace(loaded, text)
    with VIEW.side():
        notes(trace.notes)
        st.markdown("**Tokens:** " + " ".join(code_span(t) for t in trace.tokens))
        dims = (
            st.segmented_control("Projection", [2, 3], default=2, key="encoder_dims", format_func=lambda d: f"{d}-D")
            or 2
        )
    with VIEW.main():
        _trajectories(loaded, text, trace, int(dims))
    _pair(trace)
    _same_word(loaded)
    _similarity_and_attention(trace)
    with st.expander("All heads at a glance, and bidirectional versus causal attention"):
        VIEW.figure(
            encoder_plots.attention_entropy_overview(trace),
            key="encoder_overview",
            caption="Mean entropy of each head's attention rows: dark = focused on few tokens, bright = spread out.",
        )
        VIEW.figure(
            encoder_plots.mask_comparison(trace.tokens),
            key="encoder_masks",
            caption="An encoder lets every token read every other token; a decoder hides the future (upper triangle).",
        )
    _mask_predictions(loaded, trace)


def _trajectories(loaded, text: str, trace, dims: int) -> None:
    VIEW.figure(
        cached_trajectories(loaded, text, dims, trace),
        key="encoder_trajectories",
        caption=(
            f"{len(trace.tokens)} tokens × {trace.num_layers + 1} depths "
            f"({trace.hidden_states.shape[2]}-dimensional vectors) "
            "projected on the two directions of greatest variance (PCA fitted once, on all layers together)."
        ),
        how_to_read=(
            "Each line is one token. Its small first dot is the token's embedding (layer 0, no context yet); "
            "each further dot is the vector after one more block; the labelled big dot is the last layer. "
            "Tokens whose lines end close together have similar contextual representations. "
            "PCA keeps only the share of variance shown on the axes, so distances are approximate."
        ),
    )


def _pair(trace) -> None:
    default_pair = _default_pair(trace.tokens)
    first, second = (
        column.selectbox(
            label, range(len(trace.tokens)), index=index, key=key, format_func=lambda i: f"{i}: {trace.tokens[i]}"
        )
        for column, label, index, key in zip(
            st.columns(2), ("First token", "Second token"), default_pair, ("encoder_pair_a", "encoder_pair_b")
        )
    )
    VIEW.figure(
        encoder_plots.pair_similarity_by_depth(trace, int(first), int(second)),
        key="encoder_pair",
        caption="Cosine similarity of the two tokens' vectors after each block.",
        how_to_read=(
            "At depth 0 each vector is the token's embedding alone; as blocks mix in context, the vectors of "
            "related words can grow more alike (or apart). Vectors in deep layers of many models share a common "
            "direction, so similarities drift upwards for every pair: compare pairs, not absolute values."
        ),
    )


def _same_word(
    loaded,
    word: str = "bank",
    sentences: tuple[str, ...] = (
        "She sat on the bank of the river.",
        "He went to the bank to deposit a cheque.",
        "They walked along the bank of the stream.",
    ),
) -> None:
    """The river 'bank' against the money 'bank' (and a stream's 'bank'), depth by depth, whatever text is typed."""
    traces = {sentence: cached_trace(loaded, sentence) for sentence in sentences}
    spellings = (word, "␣" + word)  # alone (BERT) or with its leading space (RoBERTa)
    positions = [next((i for i, t in enumerate(tr.tokens) if t in spellings), None) for tr in traces.values()]
    if None in positions:
        st.caption(f"This model's tokenizer has no single token for '{word}', so the '{word}' figure is not drawn.")
        return
    starts = [trace.hidden_states[0, p] for trace, p in zip(traces.values(), positions)]
    if len(set(positions)) == 1:  # same word, same position: the same input, whatever embeddings the model has
        depth0 = f"'{word}' is token {positions[0]} in every sentence, so depth 0 is one vector (cosine 1)."
    elif all(np.array_equal(v, starts[0]) for v in starts):
        depth0 = "This model adds no position embedding to its input, so depth 0 is one vector (cosine 1)."
    else:
        depth0 = (
            f"'{word}' sits at positions {', '.join(map(str, positions))} and this model adds a position "
            "embedding, so depth 0 already differs a little."
        )
    VIEW.figure(
        encoder_plots.same_word_by_depth(traces, word),
        key="encoder_bank",
        caption=(
            f"The same word in different sentences, computed by this model: the cosine similarity of the vector of "
            f"'{word}' in the first sentence with its vector in each other sentence, at every depth. {depth0}"
        ),
        how_to_read=(
            "Depth 0 is the embedding layer's output: the word's own embedding, plus the embedding of its "
            "position in models that add one. Each block then mixes in the words around it, so the vectors can "
            f"only drift apart through context. If the model tells the two senses of '{word}' apart, the "
            "money line falls below the stream line. Vectors in deep layers share a common direction, so compare "
            "the lines rather than reading absolute values."
        ),
    )


def _similarity_and_attention(trace) -> None:
    c1, c2 = st.columns(2)
    with c1:
        VIEW.within("encoder_sim_layer", 0, trace.num_layers)
        layer = st.slider(
            "Depth for similarity",
            0,
            trace.num_layers,
            trace.num_layers,
            key="encoder_sim_layer",
            help="0 = embeddings before any attention",
        )
        VIEW.figure(
            encoder_plots.cosine_similarity_matrix(trace, layer),
            key="encoder_similarity",
            caption="Cosine similarity between every pair of token vectors at the chosen depth.",
            how_to_read=(
                "Red = pointing the same way (similar), blue = opposite. Compare depth 0 with the last layer: "
                "context makes some pairs grow more alike."
            ),
        )
    with c2:
        VIEW.within("encoder_attn_layer", 1, trace.num_layers)
        a_layer = st.slider("Block", 1, trace.num_layers, 1, key="encoder_attn_layer") - 1
        heads = ["average"] + list(range(trace.num_heads))
        head = st.selectbox(
            "Head",
            heads,
            key="encoder_attn_head",
            format_func=lambda h: "average of heads" if h == "average" else f"head {h}",
        )
        VIEW.figure(
            encoder_plots.layer_attention(trace, a_layer, None if head == "average" else int(head)),
            key="encoder_attention",
            caption=(
                "Self-attention weights: each row is one token's query spreading weight over all tokens "
                "(rows sum to 1)."
            ),
            how_to_read=(
                "Unlike a decoder, an encoder's rows fill the whole square: tokens also look to the right. "
                "Many heads dump weight on [CLS] or [SEP] when they have nothing useful to read. "
                "Attention weights are not explanations of the output."
            ),
        )


def _default_pair(tokens) -> tuple[int, int]:
    """Two content tokens to compare first (skipping [CLS]/[SEP]-like specials)."""
    content = [i for i, t in enumerate(tokens) if not (t.startswith("[") or t.startswith("<"))] or list(
        range(len(tokens))
    )
    return content[0], content[min(len(content) - 1, max(1, len(content) // 2))]


@cached(max_entries=32)
def cached_trace_ids(loaded, ids: tuple[int, ...]):
    return encoder.trace_ids(loaded, np.asarray(ids, dtype=np.int64), with_logits=False)


@cached(max_entries=32)
def cached_mask_readout(loaded, ids: tuple[int, ...], positions: tuple[int, ...], _hidden: np.ndarray):
    """What the MLM head reads at the masked positions: their final probabilities [P, V] and, per
    position, a DepthReadout of every depth. ``_hidden`` [L+1, P, D] is their columns of the trace
    of ``ids`` (the key). One head call for every position: the vocabulary projection's weights
    (94 MB for DistilBERT) are read once, not once per position. The last depth is the model's own
    masked-token output (the head on the last hidden state: test_contract)."""
    lens = encoder.mlm_lens(loaded, _hidden)  # [L+1, P, V]
    final = softmax(lens[-1])
    final.flags.writeable = False
    return final, tuple(depth_readout(lens[:, n]) for n in range(len(positions)))


def _mask_predictions(loaded, trace) -> None:
    st.subheader("Masked-token predictions")
    mask = getattr(loaded.tokenizer, "mask_token", None) or "[MASK]"
    if not encoder.can_fill_masks(loaded):
        st.info(
            f"{plain(loaded.model_id)} has no trained masked-language head, so it cannot fill in {mask}. "
            "Its representations and attention above are real; pick a model with a head to see predictions."
        )
        return
    ids = _masked_ids(loaded, trace, mask)
    positions = [int(p) for p in np.flatnonzero(ids == loaded.tokenizer.mask_token_id)]
    if not positions:
        st.info(
            f"Select tokens above, or type {mask} in the text (for example 'Paris is the {mask} of France.'), "
            "to see what the model predicts there from the words on both sides."
        )
        return
    # [MASK] typed in the text: the page's own trace already read these ids
    masked = trace if np.array_equal(ids, trace.token_ids) else cached_trace_ids(loaded, tuple(ids.tolist()))
    hidden = masked.hidden_states[:, positions]  # [L+1, P, D]
    final, readouts = cached_mask_readout(loaded, tuple(ids.tolist()), tuple(positions), hidden)
    columns = st.columns(min(len(positions), 3))
    for n, pos in enumerate(positions):
        probs = final[n]
        top = [int(i) for i in np.argsort(-probs)[:10]]
        original = "" if trace.token_ids[pos] == ids[pos] else f" (was '{trace.tokens[pos]}')"
        with columns[n % len(columns)]:
            VIEW.figure(
                decoding_plots.next_token_bars(
                    probs,
                    np.ones_like(probs, dtype=bool),
                    None,
                    {i: display_token(loaded.tokenizer, i) for i in top},
                    top=10,
                    title=f"Position {pos}{original}: top 10 candidates",
                ),
                key=f"encoder_mask_bars_{pos}",
                caption="Probabilities the masked-language head gives each word at this position.",
            )
    _mask_lens(loaded, positions, readouts)
    targets = [
        (f"Position {pos}: {display_token(loaded.tokenizer, int(np.argmax(final[n])))!r}", ids, Target.masked(pos))
        for n, pos in enumerate(positions)
    ]
    attribution_panel.panel(VIEW, loaded, "encoder", targets)


def _masked_ids(loaded, trace, mask: str) -> np.ndarray:
    """The trace's ids [T] with the tokens the student picked replaced by the mask token."""
    special = set(loaded.tokenizer.all_special_ids)
    candidates = [i for i, t in enumerate(trace.token_ids) if int(t) not in special]
    signature = tuple(trace.token_ids.tolist())
    if st.session_state.get("encoder_mask_signature") != signature:  # new text: positions no longer apply
        st.session_state["encoder_mask_signature"] = signature
        st.session_state["encoder_mask_positions"] = []
    chosen = st.multiselect(
        f"Mask tokens (or type {mask} in the text)",
        candidates,
        key="encoder_mask_positions",
        format_func=lambda i: f"{i}: {trace.tokens[i]}",
    )
    ids = trace.token_ids.copy()
    ids[list(chosen)] = loaded.tokenizer.mask_token_id
    return ids


def _mask_lens(loaded, positions: list[int], readouts) -> None:
    lens_pos = st.selectbox(
        "Follow a masked position through the layers",
        positions,
        key="encoder_lens_position",
        format_func=lambda p: f"position {p}",
    )
    VIEW.depth_lens(
        readouts[positions.index(lens_pos)],
        loaded.tokenizer,
        f"How the prediction at position {lens_pos} forms across depth (approximation)",
        key="encoder_mask_lens",
        caption="The masked-language head applied to the hidden state after every block.",
        how_to_read=(
            "The head was trained on the last layer only, so reading earlier layers through it is an "
            "approximation (a 'logit lens'): it shows roughly when the answer becomes readable, not what "
            "earlier layers 'think'."
        ),
    )
