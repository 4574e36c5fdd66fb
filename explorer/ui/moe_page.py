"""Mixture-of-Experts page: the router's choice for every token, layer by layer."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer import routing
from explorer.adapters import moe
from explorer.adapters.attribution import Target
from explorer.catalogue import load_catalogue, training_logs
from explorer.experiments import statistics as stats
from explorer.models.accounting import account, explain_moe, gallery
from explorer.plots import moe as moe_plots
from explorer.plots import training as training_plots
from explorer.ui import attribution_panel
from explorer.ui.view import View, cached, notes

VIEW = View.of_family(
    "moe",
    text_key="moe_text",
    keep=("moe_token",),
    settings={"moe_layer": "int 0 1000", **attribution_panel.link_settings("moe")},
)

EXAMPLES = [
    "The cat sat on the mat and the dog slept by the door.",
    "def add(a, b): return a + b",
    "Paris, London, Berlin and Rome are capital cities.",
]
# What each example shows, measured on the embedded default (tests/test_example_notes.py checks every claim).
EXAMPLE_NOTES = {
    "The cat sat on the mat and the dog slept by the door.": (
        "Everyday prose: the three 'the's mostly share their first expert (the 'Same token id' metric); neighbouring "
        "tokens share theirs about as often as the same tokens in shuffled order: the uneven load, not the order."
    ),
    "def add(a, b): return a + b": (
        "Where it fails: code, which this Austen-trained model never read. Neighbouring tokens share their first "
        "expert about half as often as the same tokens in shuffled order."
    ),
    "Paris, London, Berlin and Rome are capital cities.": (
        "Words the model's vocabulary lacks are cut into pieces ('Paris' into 3, 'Berlin' into 4; 'London' is one "
        "token): each piece gets its own route."
    ),
}


# frozen trace with read-only arrays, shared by every session (no copies)
@cached(max_entries=32)
def cached_trace(loaded, text: str):
    return moe.trace_text(loaded, text)


HEADLINE = "Mixture of Experts: a router sends each token to a few experts"
INTRO = (
    "In a sparse MoE layer the single feed-forward network (FFN) of a block is replaced by several expert FFNs "
    "and a small learned **router**. For each token the router scores every expert, keeps the top-k (often 2), "
    "and mixes their outputs weighted by the router's scores (the gate weights). Every expert must sit in memory, but "
    "each token only pays for k of them: that is why Mixtral 8x7B holds about 47 B parameters (only the FFNs "
    "are replicated, attention is shared) yet uses about 13 B per token. "
    "**Pros:** pre-training is compute-efficient (more parameters for the same compute per token) and inference is "
    "fast for the model's size. **Cons:** every expert must sit in memory, and MoE models are harder to fine-tune "
    "without overfitting."
)


def render() -> None:
    VIEW.text_page(HEADLINE, INTRO, "Text", EXAMPLES, _body, example_notes=EXAMPLE_NOTES)


def _body(loaded, text: str) -> None:
    result = cached_trace(loaded, text)
    stack = result.encoder if hasattr(result, "encoder") else result
    router = stack.router
    with VIEW.side():
        notes(stack.notes)
        if hasattr(result, "encoder"):
            st.caption("Switch Transformers is an encoder-decoder: the routes are the encoder's, over your text.")
        config = loaded.model.config
        st.markdown(
            f"**{router.num_experts} experts** per MoE layer, **top-{router.top_k}** routing, "
            f"**{len(router.layer_indices)} MoE layers** "
            f"(blocks {', '.join(str(b + 1) for b in router.layer_indices)}) "
            f"of {getattr(config, 'num_hidden_layers', None) or getattr(config, 'num_layers', '?')}. "
            + moe.gate_rule(config)
        )
    with VIEW.main():
        _route_map(loaded, stack, router)
    _routes(loaded, stack, router)
    _attribution(loaded, result, stack, router, text)
    _statistics(loaded, stack, router)
    _training_curves(loaded)
    _cost(loaded)


def _attribution(loaded, result, stack, router, text: str) -> None:
    """The next token, or the first expert of the token and layer chosen above (what in the input sent it there)."""
    if hasattr(result, "encoder"):  # Switch Transformers: an encoder-decoder, its attribution lives on that page
        return
    ids = np.asarray(stack.token_ids)
    position = int(st.session_state.get("moe_token") or 0)
    layer = int(st.session_state.get("moe_layer") or 0) if len(router.layer_indices) > 1 else 0
    expert = int(router.chosen[layer, position][0])
    targets = [
        ("The next token after the text", ids, Target.next_token()),
        (
            f"Token {position} ({stack.tokens[position]!r}) sent to expert {expert} in MoE layer {layer}",
            ids[: position + 1],
            Target.router(position, int(router.layer_indices[layer])),
        ),
    ]
    attribution_panel.panel(VIEW, loaded, "moe", targets, text=text)


def weights_sentence(loaded) -> str:
    """What the routes on screen can show, from how the loaded model's weights came about: its load note
    marks random weights (the picker shows that note as a warning), the catalogue says who trained it."""
    if "random weights" in loaded.note.lower():
        return (
            "This model has random weights (never trained): its routes are arbitrary, but the mechanism "
            "is the real one."
        )
    entry = load_catalogue()["moe"].find(loaded.model_id)
    if entry is not None and entry.trained_by:
        return f"Trained by {entry.trained_by}: the routes are what its router learned."
    return "These are the weights published under this model id: the routes are what its router does with them."


def _route_map(loaded, stack, router) -> None:
    VIEW.figure(
        moe_plots.route_map(stack.tokens, router),
        key="moe_routes",
        caption=(
            "Every token's route: which experts process it in each MoE layer (cell text), coloured by the first "
            "choice. " + weights_sentence(loaded)
        ),
        how_to_read=(
            "Read a column top to bottom to follow one token through the network. Hover a cell for the gate "
            "weights: the token's output from that layer is the gate-weighted sum of the chosen experts' outputs."
        ),
    )


def _routes(loaded, stack, router) -> None:
    c1, c2 = st.columns(2)
    with c1:
        VIEW.figure(
            moe_plots.expert_load(router),
            key="moe_load",
            caption=(
                "How many of this text's token-slots each expert received, per layer; the dashed line is "
                "perfect balance."
            ),
            how_to_read=(
                "Training adds a load-balancing loss so that no expert is idle and none is overloaded; "
                "a short text can still be unbalanced."
            ),
        )
    with c2:
        position = st.selectbox(
            "Token", list(range(len(stack.tokens))), key="moe_token", format_func=lambda i: f"{i}: {stack.tokens[i]}"
        )
        VIEW.within("moe_layer", 0, len(router.layer_indices) - 1)
        layer = (
            st.slider("MoE layer", 0, len(router.layer_indices) - 1, 0, key="moe_layer")
            if len(router.layer_indices) > 1
            else 0
        )
        VIEW.figure(
            moe_plots.router_distribution(
                stack.tokens[position], router.probs[layer, position], router.chosen[layer, position], layer
            ),
            key="moe_router",
            caption="The router's softmax over all experts for one token; only the orange ones run.",
        )


@st.cache_data(show_spinner=False)
def _gallery_rows() -> list[tuple]:
    return [_breakdown_row(a) for a in gallery() if a.num_experts]


@cached(max_entries=8)
def _accounting(loaded):
    return account(loaded.model.config, name=loaded.model_id)


def _breakdown_row(acc) -> tuple:
    experts = acc.by_role.get("experts", 0)
    used = experts * acc.experts_per_token // max(acc.num_experts, 1)
    return (acc.name, acc.total - experts, used, experts - used, acc.total, acc.active, acc.memory_gib("float16"))


def _cost(loaded) -> None:
    st.subheader("The cost: every expert in memory, a few per token")
    mine = _accounting(loaded)
    rows = [_breakdown_row(mine)] + _gallery_rows()
    c1, c2, c3 = st.columns(3)
    c1.metric("Parameters in memory", f"{mine.total / 1e6:,.1f} M")
    c2.metric(
        "Used per token",
        f"{mine.active / 1e6:,.1f} M",
        delta=f"{mine.active / mine.total:.0%} of the total",
        delta_color="off",
    )
    c3.metric("float16 memory", f"{mine.memory_gib('float16') * 1024:,.0f} MiB")
    VIEW.figure(
        moe_plots.parameter_breakdown([r[:4] for r in rows]),
        key="moe_cost",
        caption="Counted from each configuration on PyTorch's meta device (no weights allocated), never typed in.",
        how_to_read=(
            "Blue parameters are used by every token. Of the expert parameters, each token runs only its top-k "
            "experts (orange); the grey ones sit idle for that token but must still be loaded."
        ),
    )
    mixtral = next(a for a in gallery() if a.name == "mixtral-8x7b")
    st.markdown(explain_moe(mixtral))


def _balance(loaded, router) -> None:
    """The two load-balancing conventions side by side, each with what 'balanced' equals."""
    n, k = router.num_experts, router.top_k
    switch, topk = routing.load_balancing_value(router), routing.topk_balancing_value(router)
    b1, b2 = st.columns(2)
    b1.metric(
        f"Switch value, first choices: per layer {', '.join(f'{v:.2f}' for v in switch)}",
        f"{switch.mean():.2f}  (balanced = 1.0)",
        help=(
            f"Fedus et al. 2021 (Switch Transformers), eq. 4: N·Σᵢ fᵢ·Pᵢ with fᵢ the share of tokens whose FIRST "
            f"choice is expert i and Pᵢ its mean router probability, per MoE layer (mean shown large). "
            f"1.0 = perfectly balanced, {n} = one expert takes everything."
        ),
    )
    b2.metric(
        f"transformers' top-{k} value, every choice, layers pooled",
        f"{routing.pooled_topk_balancing_value(router):.2f}  (balanced = {k}.0)",
        help=(
            f"The auxiliary loss transformers computes for Mixtral, OLMoE and Qwen2-MoE: N·Σᵢ cᵢ·Pᵢ with cᵢ the "
            f"share of tokens that have expert i among their top-{k}, over all layers' tokens pooled. Balanced = "
            f"k = {k}. Per layer: {', '.join(f'{v:.2f}' for v in topk)}. Pooling lets layers unbalanced in opposite "
            "directions still look balanced."
        ),
    )
    trained_with = training_logs(loaded.model_id).get("moe", {}).get("config", {}).get("balancing")
    if trained_with:
        st.caption(f"This model was trained with: {trained_with}.")


def _training_curves(loaded) -> None:
    """For the project's own MoE: its training curves against the dense twin."""
    logs = training_logs(loaded.model_id)
    if not logs:
        return
    st.subheader("Training: the MoE against its dense twin")
    x = st.segmented_control("Against", ["step", "tokens", "seconds"], default="step", key="moe_curve_x") or "step"
    VIEW.figure(
        training_plots.loss_curves(logs, x=x),
        key="moe_curves",
        caption=(
            "Both models saw the same tokens in the same order with the same seed; per token, both spend the same "
            "compute (the MoE runs 2 of its 8 experts, the twin one FFN as wide as two experts)."
        ),
        how_to_read=(
            "Held-out loss is measured on text neither model trained on. If the MoE's curve lies below the twin's "
            "at the same step, its extra (inactive) parameters bought quality at equal compute per token: the "
            "'compute-efficient pre-training' claim. Against wall-clock, the MoE's routing overhead on a CPU "
            "counts too."
        ),
    )
    rows = []
    for kind, log in logs.items():
        rows.append(
            {
                "model": training_plots.NAMES.get(kind, kind),
                "parameters": f"{log['parameters']:,}",
                "held-out perplexity": round(log["held_out_perplexity"], 1),
                "training minutes": round(log["seconds"] / 60, 1),
            }
        )
    st.table(rows)


def neighbour_sharing(router) -> tuple[np.ndarray, float, float, float]:
    """(per MoE layer, mean over layers, 1/N, shuffled null): the replication card's 'same first expert for
    consecutive tokens' on this text, computed by the card's own functions; the null is its mean with this
    text's token positions shuffled (1,000 seeded draws): the same load on every expert, no order."""
    chance = stats.chance_same_first(router.num_experts)
    if router.chosen.shape[1] < 2:
        return np.zeros(0), float("nan"), chance, float("nan")
    per_layer = stats.consecutive_same_first(router.chosen)  # [M]
    null = stats.shuffled_positions_null(router.chosen, stats.consecutive_same_first, 1000, np.random.default_rng(0))
    return per_layer, float(per_layer.mean()), chance, float(null.mean())


def _statistics(loaded, stack, router) -> None:
    st.subheader("Patterns in the routes")
    _balance(loaded, router)
    _pattern_metrics(stack, router)
    _flows(router)


def _pattern_metrics(stack, router) -> None:
    same_id, repeated = routing.token_id_consistency(router, stack.token_ids)
    per_layer, shared, chance, null = neighbour_sharing(router)
    m2, m3 = st.columns(2)
    m2.metric(
        "Same token id → same first expert",
        "n/a" if repeated == 0 else f"{same_id:.0%}",
        help=f"Over the {repeated} token id(s) that occur more than once; chance is about 1/{router.num_experts}.",
    )
    m3.metric(
        "Neighbouring tokens share their first expert",
        "n/a" if per_layer.size == 0 else f"{shared:.1%}",
        delta=None if per_layer.size == 0 else f"{(shared - null) * 100:+.1f} points vs shuffled order ({null:.1%})",
        delta_color="off",
        help=(
            "The share of consecutive token pairs (t, t+1) whose first-choice expert is the same, per MoE layer "
            f"({', '.join(f'{v:.1%}' for v in per_layer)}), averaged over the layers. The baseline shuffles this "
            "text's token positions (1,000 draws): every expert keeps its load, only the order is gone. 1/N = "
            f"1/{router.num_experts} = {chance:.1%} would hold only if every expert got the same load. The "
            "replication card 'Mixtral: same first expert' on the Experiments page computes the same statistic and "
            "null over its prompt set. Mixtral's paper (Jiang et al. 2024, section 5) reports it per layer."
        ),
    )
    st.caption(
        "Neighbour sharing: of the consecutive token pairs, the share whose first-choice experts are the same, per "
        "MoE layer, averaged over the layers, beside the same share with the tokens in shuffled order (the same "
        f"load on each expert, no order; 1/{router.num_experts} only if the load were even). Same definition and "
        "null as the Experiments page's card 'Mixtral: same first expert'."
    )


def _flows(router) -> None:
    c1, c2 = st.columns(2)
    with c1:
        if len(router.layer_indices) >= 2:
            VIEW.figure(
                moe_plots.expert_flow_sankey(router),
                key="moe_sankey",
                caption=(
                    "Each band is a group of tokens that went from one first-choice expert to another "
                    "in the next MoE layer."
                ),
            )
    with c2:
        VIEW.figure(
            moe_plots.coactivation_matrix(router),
            key="moe_coactivation",
            caption=(
                "Pairs of experts that the router combines for the same token; the diagonal counts each expert's picks."
            ),
        )
