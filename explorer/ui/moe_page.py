"""Mixture-of-Experts page: the router's choice for every token, layer by layer."""

from __future__ import annotations

import streamlit as st

from explorer.adapters import moe
from explorer.plots import moe as moe_plots
from explorer.ui import common

EXAMPLES = [
    "The cat sat on the mat and the dog slept by the door.",
    "def add(a, b): return a + b",
    "Paris, London, Berlin and Rome are capital cities.",
]


@st.cache_data(max_entries=64, show_spinner=False)
def cached_trace(_loaded, model_id: str, device: str, text: str):
    return moe.trace_text(_loaded, text)


def render() -> None:
    st.title("Mixture of Experts: a router sends each token to a few experts")
    st.markdown(
        "In a sparse MoE layer the single feed-forward network (FFN) of a block is replaced by several expert FFNs "
        "and a small learned **router**. For each token the router scores every expert, keeps the top-k (often 2), "
        "and mixes their outputs with the renormalised scores as gate weights. Every expert must sit in memory, but "
        "each token only pays for k of them: that is why Mixtral 8x7B holds about 47 B parameters (only the FFNs "
        "are replicated, attention is shared) yet uses about 13 B per token."
    )
    loaded = common.load_for_page("moe")
    if loaded is None:
        return
    common.run_safely(lambda: _body(loaded))


def _body(loaded) -> None:
    cleaned = common.text_input("moe_text", "Text", EXAMPLES[0], EXAMPLES)
    if cleaned is None:
        return
    result = cached_trace(loaded, loaded.model_id, loaded.device, cleaned.text)
    stack = result.encoder if hasattr(result, "encoder") else result
    common.notes(stack.notes)
    router = stack.router
    if hasattr(result, "encoder"):
        st.caption("Switch Transformers is an encoder-decoder: the routes below are the encoder's, over your text.")
    config = loaded.model.config
    st.markdown(
        f"**{router.num_experts} experts** per MoE layer, **top-{router.top_k}** routing, "
        f"**{len(router.layer_indices)} MoE layers** (blocks {', '.join(str(b + 1) for b in router.layer_indices)}) "
        f"of {getattr(config, 'num_hidden_layers', None) or getattr(config, 'num_layers', '?')}."
    )
    common.show_figure(
        moe_plots.route_map(stack.tokens, router), key="moe_routes",
        caption="Every token's route: which experts process it in each MoE layer (cell text), coloured by the first choice.",
        how_to_read="Read a column top to bottom to follow one token through the network. Hover a cell for the gate "
                    "weights: the token's output from that layer is the gate-weighted sum of the chosen experts' outputs. "
                    "With random weights (the embedded stand-in) the routes are arbitrary but the mechanism is the real one.",
    )
    c1, c2 = st.columns(2)
    with c1:
        common.show_figure(
            moe_plots.expert_load(router), key="moe_load",
            caption="How many of this text's token-slots each expert received, per layer; the dashed line is perfect balance.",
            how_to_read="Training adds a load-balancing loss so that no expert is idle and none is overloaded; "
                        "a short text can still be unbalanced.",
        )
    with c2:
        position = st.selectbox("Token", list(range(len(stack.tokens))), key="moe_token",
                                format_func=lambda i: f"{i}: {stack.tokens[i]}")
        layer = st.slider("MoE layer", 0, len(router.layer_indices) - 1, 0, key="moe_layer") if len(router.layer_indices) > 1 else 0
        common.show_figure(
            moe_plots.router_distribution(stack.tokens[position], router.probs[layer, position], router.chosen[layer, position], layer),
            key="moe_router",
            caption="The router's softmax over all experts for one token; only the orange ones run.",
        )
