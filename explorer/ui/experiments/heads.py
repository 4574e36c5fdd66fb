"""Switch heads off: replace chosen attention heads' output (zero, a reference mean, a running mean)
and compare the runs; on a causal model, the strongest induction heads one click away."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.adapters import family, interventions
from explorer.adapters.common import tokenize
from explorer.adapters.lookup import adapter_for
from explorer.experiments import measure
from explorer.experiments.prompts import SENTENCES
from explorer.ui.boundary import guarded
from explorer.ui.experiments.common import HOW_INTERVENTION, VIEW, Tool, keep, refused, restore, show_result, text_ids
from explorer.ui.view import cached

# Made-up words in a fixed order, three times: a model can only predict the repeats by copying what came after the
# same word before (what induction heads do). On SmolLM2 switching off its 3 strongest induction heads raises the loss
# on this text from 5.92 to 7.41 nats (tests/test_experiments_page.py checks the rise is at least 1 nat).
INDUCTION_DEMO = " ".join(["zebra lantern copper violin meadow quartz pickle saturn."] * 3)


INDUCTION_WEAK = 0.3  # an induction score below this (from 0 to 1) is no induction head worth the name


MEAN_REFERENCE = "everyday-sentences"  # the named prompt set whose mean replaces a head in 'mean' mode


HEAD_MODE_LABELS = {"zero": "zero", "mean": f"mean over {MEAN_REFERENCE}", "prefix": "mean so far"}


HEAD_MODE_HELP = (
    f"zero: the head contributes nothing. Mean over {MEAN_REFERENCE}: its average output over every position of "
    "the 12 everyday sentences (a fixed reference set, not your text), the same vector at every position. Mean so "
    "far (causal models): at each position, its average output over your text's positions up to that one. Neither "
    "mean lets a position see the text after it."
)


@cached(max_entries=8)
def head_taxonomy(loaded):
    return measure.taxonomy(loaded)


@cached(max_entries=32)
def head_ablation(loaded, ids: tuple, heads: tuple, mode: str):
    reference = reference_means(loaded) if mode == "mean" else None
    return interventions.head_ablation(loaded, np.asarray(ids), heads, mode, reference, MEAN_REFERENCE)


@cached(max_entries=8)
def reference_means(loaded):
    return interventions.reference_head_means(loaded, [tokenize(loaded, s)[0] for s in SENTENCES])


def heads_body(loaded) -> None:
    ids = text_ids(loaded)
    if ids is None:
        return
    layers = len(interventions.attention_output_projections(loaded.model))
    heads = interventions.num_heads(loaded.model.config)
    options = [f"L{layer}H{h}" for layer in range(layers) for h in range(heads)]
    key = VIEW.keys["heads"]
    restore(key, lambda value: isinstance(value, list))
    st.session_state[key] = [h for h in st.session_state.get(key, []) if h in options]
    cols = st.columns([3, 1, 1])
    chosen = cols[0].multiselect(
        f"Heads to switch off ({layers} layers × {heads} heads; L0 = first block)", options, key=key
    )
    keep(key, list(chosen))
    adapter = adapter_for(loaded)
    modes = list(adapter.head_modes)
    restore("exp_head_mode", lambda value: value in modes)
    mode = cols[1].radio(
        "Replace the head's output by", modes, key="exp_head_mode", format_func=HEAD_MODE_LABELS.get,
        help=HEAD_MODE_HELP,
    )  # fmt: skip
    keep("exp_head_mode", mode)
    if adapter.causal:  # induction: a repeated token attends to what followed its earlier copy
        _induction_buttons(cols[2], loaded)
    if not chosen:
        st.info("Pick one or more heads above (or ask for the induction heads, then use a text that repeats itself).")
        return
    pairs = tuple((int(n[1:].split("H")[0]), int(n.split("H")[1])) for n in chosen)
    if refused(lambda: interventions.check_heads(loaded.model, pairs, mode, adapter.causal)):
        return
    show_result(loaded, head_ablation(loaded, tuple(ids.tolist()), pairs, mode), "exp_heads_fig", HOW_INTERVENTION)


def _induction_buttons(column, loaded) -> None:
    column.button(
        "Suggest: the 3 strongest induction heads",
        key="exp_suggest",
        on_click=guarded(_suggest_induction_heads),
        args=(loaded,),
        help="Heads ranked by their induction score on repeated random tokens (from 0 to 1: attention from a "
        "repeated token to the token after its earlier copy).",
    )
    column.button(
        "Demo: repeated words, induction heads off",
        key="exp_induction_demo",
        on_click=guarded(_induction_demo),
        args=(loaded,),
        help="Sets the text to made-up words repeated three times and switches off the 3 strongest induction "
        "heads. On SmolLM2 the loss rises by about 1.5 nats: the repeats can no longer be copied.",
    )
    scores = np.nan_to_num(head_taxonomy(loaded).induction)  # [L, H]
    if scores.max() < INDUCTION_WEAK:
        column.caption(
            f"This model has no induction head: its strongest induction score is {scores.max():.2f} "
            f"(1 = always attends to the token after the earlier copy; below {INDUCTION_WEAK} the suggestion "
            "switches off heads that do something else)."
        )


def _suggest_induction_heads(loaded) -> None:
    scores = np.nan_to_num(head_taxonomy(loaded).induction)  # [L, H]
    top = np.argsort(-scores.ravel())[:3]
    st.session_state[VIEW.keys["heads"]] = [f"L{i // scores.shape[1]}H{i % scores.shape[1]}" for i in top]


def _induction_demo(loaded) -> None:
    st.session_state[VIEW.text_key] = INDUCTION_DEMO
    st.session_state["exp_head_mode"] = "zero"
    _suggest_induction_heads(loaded)


TOOL = Tool(family.HEADS, "Switch heads off", heads_body)
