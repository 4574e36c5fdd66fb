"""The attribution panel of every family page and of the experiments page: which input tokens mattered for
one prediction, and how faithful that map was on this very input (explorer/adapters/attribution.py computes,
explorer/plots/attribution.py draws; this module is the widgets).

A page hands over the token ids the prediction reads, the predictions a learner may pick (label, Target), and
a state-key prefix; the panel owns the method, baseline, steps and word/token settings (declared through
``link_settings`` so that a link restores them) and runs only on a click (seconds of work), then from a cache.
"""

from __future__ import annotations

import logging

import numpy as np
import streamlit as st

from explorer.adapters import attribution, seq2seq
from explorer.adapters.attribution import Target
from explorer.plots import attribution as attribution_plots
from explorer.text import InputError, plain
from explorer.ui.view import View, cached

log = logging.getLogger(__name__)

LABELS = {  # method -> its name on screen and in links (a select box shows these names: no format_func)
    "integrated_gradients": "Integrated gradients",
    "gradient_x_input": "Gradient × input",
    "occlusion": "Occlusion",
    "attention_rollout": "Attention rollout",
}
METHOD_OF = {label: method for method, label in LABELS.items()}
BASELINE_LABELS = {"zero": "zero vector", "pad": "padding token", "mask": "mask token", "unk": "unknown-word token"}
BASELINE_OF = {label: baseline for baseline, label in BASELINE_LABELS.items()}
ORDERS = 20  # random orders of the faithfulness band
STEPS = 32  # integrated gradients' default integration points


def link_settings(prefix: str) -> dict[str, str]:
    """The panel's settings as a link carries them (explorer/linkvalues.py specs)."""
    return {
        f"{prefix}_attr_method": "choice " + "|".join(LABELS.values()),
        f"{prefix}_attr_baseline": "choice " + "|".join(BASELINE_LABELS.values()),
        f"{prefix}_attr_steps": "int 4 256",
        f"{prefix}_attr_words": "bool",
        f"{prefix}_attr_on": "bool",
        f"{prefix}_attr_target": "int 0 100000",
    }


@cached(max_entries=32)
def explained(loaded, ids: tuple[int, ...], target: Target, method: str, steps: int, baseline: str):
    return attribution.explain(loaded, np.asarray(ids, dtype=np.int64), target, method, steps=steps, baseline=baseline)


@cached(max_entries=32)
def tested(loaded, ids: tuple[int, ...], target: Target, method: str, steps: int, baseline: str):
    """The faithfulness curves of ``explained``'s map (about 2 x 21 x 10 batched forwards: the slow part)."""
    return attribution.faithfulness(loaded, explained(loaded, ids, target, method, steps, baseline), orders=ORDERS)


def panel(view: View, loaded, prefix: str, targets: list[tuple[str, np.ndarray, Target]], text: str | None = None):
    """An expander: pick a prediction and a method, click Explain, see the map and its faithfulness.
    ``targets``: (label, input ids [T] the prediction reads, Target) a learner may pick, the first the default;
    ``text``: the typed text the ids came from (word boundaries), or None."""
    on = bool(st.session_state.get(f"{prefix}_attr_on"))
    with st.expander("Which input tokens mattered? Attribution, with how faithful it was", expanded=on):
        if not targets:
            st.info("There is no prediction to explain here yet.")
            return
        ids, target, method, baseline, steps, words = _controls(loaded, prefix, targets)
        if not on:
            st.button(
                "Explain this prediction",
                key=f"{prefix}_attr_run",
                on_click=lambda: st.session_state.update({f"{prefix}_attr_on": True}),
                help="Runs the method, then the deletion and insertion curves against 20 random orders (seconds).",
            )
            return
        run = (loaded, tuple(int(i) for i in ids), target, method, steps, baseline)
        try:
            with st.spinner(f"{LABELS[method]} over {len(ids)} tokens…"):
                mapped = explained(*run)
            _show_map(view, loaded, prefix, mapped, words, text)
            with st.spinner(f"Testing the map: deletion and insertion curves, and {ORDERS} random orders…"):
                faithful = tested(*run)
        except InputError as refusal:
            st.warning(plain(refusal))
            return
        _show_curves(view, prefix, mapped, faithful)


def _controls(loaded, prefix: str, targets):
    labels = [label for label, _, _ in targets]
    View.within(f"{prefix}_attr_target", 0, len(targets) - 1)
    if len(targets) > 1:
        index = st.selectbox(
            "Prediction to explain", range(len(targets)), key=f"{prefix}_attr_target", format_func=lambda i: labels[i]
        )
    else:
        index = 0
        st.markdown(f"Explained: **{plain(labels[0])}**")
    _, ids, target = targets[index]
    c1, c2, c3 = st.columns([3, 2, 2])
    method_key, baseline_key = f"{prefix}_attr_method", f"{prefix}_attr_baseline"
    if st.session_state.get(method_key) not in METHOD_OF:
        st.session_state[method_key] = LABELS[attribution.default_method(loaded)]
    method = METHOD_OF[c1.selectbox("Method", list(LABELS.values()), key=method_key)]
    options = [BASELINE_LABELS[b] for b in attribution.baselines(loaded)]
    if st.session_state.get(baseline_key) not in options:
        st.session_state[baseline_key] = BASELINE_LABELS[attribution.default_baseline(loaded, target)]
    baseline = BASELINE_OF[c2.selectbox("Baseline (a removed token becomes a…)", options, key=baseline_key)]
    steps = c3.number_input(
        "Integration steps", 4, 256, STEPS, key=f"{prefix}_attr_steps", disabled=method != "integrated_gradients"
    )
    words = st.toggle("Whole words (sum of their pieces)", value=True, key=f"{prefix}_attr_words")
    return ids, target, method, baseline, int(steps), words


def _show_map(view: View, loaded, prefix: str, mapped, words: bool, text: str | None) -> None:
    tokens, scores = (
        attribution.word_scores(mapped, loaded.tokenizer, text) if words else (mapped.tokens, mapped.scores)
    )
    _map_metrics(mapped)
    view.figure(
        attribution_plots.token_strip(
            tokens,
            scores,
            title=f"Why {_target_token(loaded, mapped)} (p = {mapped.target_prob:.3f}): {LABELS[mapped.method]}",
            movable=None if words else mapped.movable,
        ),
        key=f"{prefix}_attr_strip",
        caption=_strip_caption(mapped),
        how_to_read=HOW_TO_READ_MAP,
    )
    for note in mapped.notes:
        st.info(plain(note))


def _show_curves(view: View, prefix: str, mapped, faithful) -> None:
    _curve_metrics(faithful)
    view.figure(
        attribution_plots.faithfulness_figure(
            faithful.removed,
            faithful.deletion,
            faithful.insertion,
            faithful.random_deletion,
            faithful.random_insertion,
            method=LABELS[mapped.method],
        ),
        key=f"{prefix}_attr_curves",
        caption=faithful.verdict().replace(mapped.method, LABELS[mapped.method], 1)
        + f" Computed in {faithful.seconds:.1f} s.",
        how_to_read=HOW_TO_READ_CURVES,
    )


def _target_token(loaded, mapped) -> str:
    target = mapped.target
    if target.kind == "router":
        return f"expert {target.expert} (layer {target.layer}'s router, token {target.position})"
    return repr(loaded.tokenizer.decode([int(target.token_id)]))


def _map_metrics(mapped) -> None:
    cols = st.columns(2)
    cols[0].metric(
        "Target probability", f"{mapped.target_prob:.3f}", help=f"On the baseline input: {mapped.baseline_prob:.3f}"
    )
    if mapped.completeness_error is not None:
        cols[1].metric(
            "Completeness error",
            f"{mapped.completeness_error:.1%}",
            help="|sum of scores − (p(input) − p(baseline))| / |p(input) − p(baseline)|: 0% means the scores "
            f"account exactly for the change; above {attribution.COMPLETENESS_TOLERANCE:.0%} the steps were too few.",
        )


def _curve_metrics(faithful) -> None:
    top = np.percentile(faithful.random_comprehensiveness, 95)
    bottom = np.percentile(faithful.random_sufficiency, 5)
    cols = st.columns(2)
    cols[0].metric(
        "Comprehensiveness (AOPC)",
        f"{faithful.comprehensiveness:.3f}",
        f"{faithful.comprehensiveness - top:+.3f} vs random 95th pct",
        help="Mean drop of the target's probability while the top tokens are removed (higher: they mattered).",
    )
    cols[1].metric(
        "Sufficiency",
        f"{faithful.sufficiency:.3f}",
        f"{faithful.sufficiency - bottom:+.3f} vs random 5th pct",
        delta_color="inverse",
        help="Mean gap below the full probability while only the top tokens are kept (lower: they suffice).",
    )


def _strip_caption(mapped) -> str:
    unit = {"prob": "the target's probability", "logprob": "its log-probability", "logit": "its logit"}[mapped.measure]
    base = {"pad": "the padding token", "mask": "the mask token", "zero": "a zero vector"}[mapped.baseline]
    what = {
        "integrated_gradients": f"add up to p(input) − p(baseline) = {mapped.target_score - mapped.baseline_score:+.4f}"
        f" ({mapped.steps} steps)",
        "gradient_x_input": "are the first-order change (gradient times embedding)",
        "occlusion": "are p(input) minus p(input with that token replaced), one re-run per token",
        "attention_rollout": "are attention weights rolled up through the layers: not about this target",
    }[mapped.method]
    return f"Scores in units of {unit}; a removed token becomes {base}. The scores {what}. Took {mapped.seconds:.1f} s."


HOW_TO_READ_MAP = (
    "**Red** tokens raised the explained prediction, **blue** ones lowered it, white ones did little. Methods "
    "disagree, and no method is right everywhere: that is why the curves below test this map on this input. "
    "Attention rollout ignores which token is explained; it is shown as the contrast (what attention alone "
    "would suggest). Grey-outlined special tokens are never removed."
)
HOW_TO_READ_CURVES = (
    "Left: the tokens are replaced by the baseline one by one, most important first (by this map); a faithful "
    "map makes the probability fall faster than the grey band of 20 random orders (5th–95th percentile). Right: "
    "starting from the baseline, the tokens are restored most important first; a faithful map makes it rise "
    "faster. Comprehensiveness and sufficiency are the areas (AOPC); the map **beats random** when it lies outside "
    "the band on both sides."
)


# --- the experiments page's tool: every method on one prediction, each map tested ---------------------------


@cached(max_entries=8)
def translated(loaded, ids: tuple[int, ...]) -> np.ndarray:
    """The greedy output ids [T_out] of a source (after the decoder's start tokens)."""
    return seq2seq.greedy_decode(loaded, seq2seq.encode_ids(loaded, np.asarray(ids, dtype=np.int64)), 48)


@cached(max_entries=8)
def matrix(loaded, ids: tuple[int, ...], output: tuple[int, ...], method: str):
    return attribution.seq2seq_matrix(loaded, np.asarray(ids), np.asarray(output), method, baseline="zero")


def compare_methods(view: View, loaded, ids) -> None:
    """Every method on the model's own next (or masked) token of ``ids`` [T], a heatmap of the maps and a table of
    their faithfulness; for an encoder-decoder, every output token's map beside the cross-attention."""
    if attribution.explains_outputs(loaded):
        _matrix_tool(view, loaded, ids)
        return
    if not st.session_state.get("exp_attr_on"):
        st.button(
            "Compare the four methods",
            key="exp_attr_run",
            on_click=lambda: st.session_state.update({"exp_attr_on": True}),
            help="Each method's map, then its deletion and insertion curves against 20 random orders (a minute).",
        )
        return
    key = tuple(int(i) for i in ids)
    rows, maps = [], {}
    progress = st.progress(0.0, text="Explaining…")
    try:
        for n, method in enumerate(attribution.METHODS):
            progress.progress(n / len(attribution.METHODS), text=f"{LABELS[method]}: map and curves…")
            run = (loaded, key, None, method, STEPS, attribution.default_baseline(loaded, _kind_target(loaded)))
            mapped, faithful = explained(*run), tested(*run)
            maps[LABELS[method]] = mapped.scores
            rows.append(_row(mapped, faithful))
    except InputError as refusal:
        progress.empty()
        st.warning(plain(refusal))
        return
    progress.empty()
    _compare_figures(view, loaded, mapped, maps, rows)


def _kind_target(loaded) -> Target:
    return Target.masked() if attribution.explains_masks(loaded) else Target.next_token()


def _row(mapped, faithful) -> dict:
    return {
        "method": LABELS[mapped.method],
        "comprehensiveness": round(faithful.comprehensiveness, 4),
        "random 95th pct": round(float(np.percentile(faithful.random_comprehensiveness, 95)), 4),
        "sufficiency": round(faithful.sufficiency, 4),
        "random 5th pct": round(float(np.percentile(faithful.random_sufficiency, 5)), 4),
        "beats random": "yes"
        if faithful.beats_random
        else "partly"
        if faithful.beats_deletion or faithful.beats_insertion
        else "no",
        "completeness error": "" if mapped.completeness_error is None else f"{mapped.completeness_error:.1%}",
        "seconds": round(mapped.seconds + faithful.seconds, 1),
    }


def _compare_figures(view: View, loaded, mapped, maps: dict, rows: list[dict]) -> None:
    view.figure(
        attribution_plots.attribution_heatmap(
            mapped.tokens,
            maps,
            title=f"Why {_target_token(loaded, mapped)} (p = {mapped.target_prob:.3f}): four methods",
        ),
        key="exp_attr_heatmap",
        caption=(
            "Each row one method's map, divided by its largest absolute score (methods differ in scale; hover for the "
            f"raw value). Baseline: {mapped.baseline}; integrated gradients with {STEPS} steps."
        ),
        how_to_read=HOW_TO_READ_MAP,
    )
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(
        "A map beats random when its comprehensiveness is at or above the 95th percentile of 20 random orders and its "
        "sufficiency at or below their 5th percentile (the same rule on every page)."
    )


def _matrix_tool(view: View, loaded, ids) -> None:
    method = st.selectbox(
        "Method",
        ("gradient_x_input", "integrated_gradients", "occlusion"),
        key="exp_attr_method",
        format_func=LABELS.get,
    )
    output = tuple(int(i) for i in translated(loaded, tuple(int(i) for i in ids)))
    if not output:
        st.info("The model wrote nothing for this source.")
        return
    with st.spinner(f"{LABELS[method]} for each of the {len(output)} output tokens…"):
        result = matrix(loaded, tuple(int(i) for i in ids), output, method)
    view.figure(
        attribution_plots.seq2seq_matrix_figure(
            result.source_tokens, result.output_tokens, result.scores, result.cross_attention, method=LABELS[method]
        ),
        key="exp_attr_matrix",
        caption=(
            "Left: each output token's attribution over the source (its probability, zero-vector baseline). Right: "
            "the cross-attention of the step that wrote it, mean over layers and heads."
        ),
        how_to_read=(
            "Where the two agree, attention is a fair guide to what the decoder used; where they differ, the "
            "attribution (a measured effect on the output) is the one to trust. " + HOW_TO_READ_MAP
        ),
    )
