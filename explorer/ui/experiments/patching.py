"""Activation patching: a clean prompt's residual stream copied into a corrupted one's run at each depth
and position, and how much of the clean answer each patch brings back."""

from __future__ import annotations

import streamlit as st

from explorer.adapters import family, interventions
from explorer.adapters.common import display_tokens
from explorer.experiments import readings
from explorer.plots import experiments as plots
from explorer.text import plain
from explorer.ui.experiments.common import VIEW, Tool, keep, restore
from explorer.ui.links import publish_to_url, restore_from_url
from explorer.ui.view import cached


@cached(max_entries=8)
def patchable_pairs(loaded):
    return readings.patchable_pairs(loaded)  # tokenises every pair: once per model, not on every rerun


@cached(max_entries=16)
def patching(loaded, pair_name: str):
    pair = next(p for p in readings.patching_pairs(loaded) if p.name == pair_name)
    setup = interventions.patching_setup(loaded, pair)
    return setup, interventions.patch_pair(loaded, setup)


def patching_body(loaded) -> None:
    pairs = patchable_pairs(loaded)
    if not pairs:
        names = ", ".join(p.name for p in readings.patching_pairs(loaded))
        st.warning(
            f"None of the prompt pairs ({names}) fits this model's tokenizer: patching needs two prompts of "
            "equal length and answers of one token each."
        )
        return
    key = VIEW.keys["pair"]
    names = [p.name for p in pairs]
    restore_from_url("pair", key)
    restore(key, lambda value: value in names)
    if st.session_state.get(key) not in names:
        st.session_state[key] = pairs[0].name
    name = st.radio("Prompt pair (those this tokenizer can patch)", names, key=key, horizontal=True)
    keep(key, name)
    publish_to_url(pair=name)
    pair = next(p for p in pairs if p.name == name)
    mask = loaded.tokenizer.mask_token or "[MASK]"
    clean, corrupted = (plain(text.format(mask=mask)) for text in (pair.clean, pair.corrupted))
    answers = [plain(a.strip()) for a in (pair.clean_answer, pair.corrupted_answer)]
    st.markdown(f"Clean: **{clean}** → *{answers[0]}*  \nCorrupted: **{corrupted}** → *{answers[1]}*")
    try:
        with st.spinner("Patching every depth and position, one patch per copy of the prompt…"):
            setup, result = patching(loaded, pair.name)
    except interventions.InterventionRefused as refusal:
        st.warning(str(refusal))
        return
    except ValueError as error:  # the pair does not tokenise as patching needs (interventions.patching_setup)
        st.warning(plain(f"This pair cannot be patched on this model: {error}."))
        return
    tokens = list(display_tokens(loaded.tokenizer, setup.corrupted))
    VIEW.figure(
        plots.patching_heatmap(result, tokens, (pair.clean_answer.strip(), pair.corrupted_answer.strip())),
        key="exp_patching_fig",
        caption="Each cell: the corrupted prompt run again with the clean prompt's residual stream copied in at one "
        "depth (row) and one position (column). 1 = that single patch brings back the clean answer's margin, 0 = no "
        "effect. Rows: the stream entering the first block (embeddings) and after each block.",
        how_to_read="Look for where the information about the changed word lives: at the changed word's column in "
        "early layers, then moving to the last position (where the answer is read) in later layers.",
    )


TOOL = Tool(family.PATCHING, "Activation patching", patching_body)
