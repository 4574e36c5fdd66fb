"""Replication cards: published findings measured on the loaded model over named prompt sets, each
against a null, with a verdict by one rule (explorer.experiments.measure runs them)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from explorer.adapters import family
from explorer.experiments import measure, report
from explorer.experiments import statistics as stats
from explorer.experiments.prompts import PROMPT_SETS
from explorer.plots import experiments as plots
from explorer.text import plain
from explorer.ui.boundary import guarded
from explorer.ui.experiments.common import VIEW, Tool, ask_for_text_model, keep, restore
from explorer.ui.view import cached


@cached(max_entries=16)
def card_step(loaded, step_key: str):
    """One prompt set's cards (and head kinds), kept per (model, prompt set) for every session."""
    step = next(s for s in measure.card_plan(loaded) if s.key == step_key)
    return step.run()


@cached(max_entries=16)
def card_estimate(loaded) -> tuple[float, int]:
    """(seconds, tokens) the card set is expected to take, said before the click."""
    steps = measure.card_plan(loaded)
    return measure.estimate_seconds(loaded, steps), sum(step.tokens() for step in steps)


CARDS_LEAD = (
    "Each card measures one published finding on this model over a named prompt set of at least 10 prompts, and "
    "sets it against a **null**: the same statistic on 1,000 resampled versions of each prompt that keep what it "
    "depends on besides the finding (the experts' load, positions, lengths, token frequencies) and remove the "
    "finding itself; the table says how for each card. **±** is always the standard deviation over the set's "
    "prompts. *Chance* is the analytic value where one exists (uniform attention, uniform load); for prediction "
    "depth it is a ceiling (settled only at the output), and lower is earlier. Each prompt set is read with one "
    "forward per prompt, and every card of the set is computed from those forwards."
)


def cards_body(loaded) -> None:
    if loaded.arch.audio:
        ask_for_text_model()
        return
    st.markdown(CARDS_LEAD)
    st.markdown(stats.VERDICT_RULE)
    steps = measure.card_plan(loaded)
    flag = f"exp_cards_{loaded.model_id}"
    if not st.session_state.get(flag):
        _cards_button(loaded, steps, flag)
        return
    results = _measure_with_progress(loaded, steps)
    found = [card for result in results for card in result.cards]
    summaries = [report.summary(card, loaded.model_id) for card in found]
    # a static table wraps its cells to the panel (a data grid would hide the verdict behind a sideways scroll);
    # it renders Markdown, so every cell is shown literally
    st.table(pd.DataFrame([{k: plain(v) for k, v in report.row(s).items()} for s in summaries]), hide_index=True)
    escaped = [dict(s, card=plain(s["card"])) for s in summaries]  # a loaded model's special tokens name its sink
    st.markdown("On this model, by that rule: " + report.what_reproduces(escaped))
    VIEW.figure(
        plots.cards_overview(found),
        key="exp_cards_overview",
        caption="Each card on its own axis (its own unit). Light dots: each prompt; blue: their mean ± standard "
        "deviation; grey band: the null's 5th to 95th percentile (mean tick); open diamond: the analytic chance, or "
        "the ceiling for prediction depth. The verdict is under each card's name.",
    )
    _card_detail(found)
    _papers_table(found)
    taxonomies = [result.taxonomy for result in results if result.taxonomy is not None]
    if taxonomies:
        _taxonomy(taxonomies[0])


def _cards_button(loaded, steps, flag: str) -> None:
    seconds, tokens = card_estimate(loaded)
    st.button(
        f"Measure the {len(steps)} prompt sets on {plain(loaded.model_id)} (about {seconds:.0f} s)",
        key="exp_run_cards",
        on_click=guarded(_set_flag),
        args=(flag,),
        type="primary",
    )
    st.caption(
        f"About {seconds:.0f} s: estimated from the model's arithmetic per token and the {tokens:,} tokens the prompt "
        "sets hold, at the speed of one core of this project's 2-core machine (its SmolLM2 took 8 s there); longer "
        "while other visitors use this server. Once measured, a model's cards are kept for every visitor of this "
        "server, per prompt set: the next click shows them at once."
    )


def _card_detail(found) -> None:
    detailed = [c for c in found if c.by_layer is not None]
    if not detailed:
        return
    names = [c.name for c in detailed]
    restore("exp_card", lambda value: value in names)
    name = st.selectbox("Card to see layer by layer", names, key="exp_card")
    keep("exp_card", name)
    card = next(c for c in detailed if c.name == name)
    VIEW.figure(
        plots.card_detail(card),
        key="exp_card_detail",
        caption=plain(f"{card.quantity}. Measured: {card.method}. Null: {card.null_note}."),
    )


def _papers_table(found) -> None:
    st.markdown("**What the papers report**, in their own words (read in each paper; a number shown only in a plot "
                "is left out rather than read off it):")  # fmt: skip
    rows = {  # st.table renders Markdown: every cell shown literally (a card's name may hold a model's token)
        c.name: {"card": plain(c.name), "what the paper reports": plain(c.published_text), "source": plain(c.source)}
        for c in found
    }
    st.table(pd.DataFrame(list(rows.values())))
    used = dict.fromkeys(c.prompt_set for c in found)
    st.caption("Prompt sets: " + "; ".join(f"{name}: {PROMPT_SETS.get(name, '')}" for name in used) + ".")


def _taxonomy(tax) -> None:
    VIEW.figure(
        plots.taxonomy_map(tax),
        key="exp_taxonomy",
        caption="Each head labelled from its attention on 24 repeated random tokens (seed 0) after removing the "
        "attention to the first token and renormalising: induction (score ≥ 0.4), else previous-token (≥ 0.4 of "
        "its attention on the token before), else positional (≥ 0.4 on one other fixed offset), else broad "
        "(row entropy ≥ 0.7 of the maximum), else other.",
        how_to_read="Without removing the sink, a head that parks most of its attention on the first token "
        "looks like something it is not (a fixed pattern, or 'broad' over nothing); removing it first shows what "
        "the head does with the attention it actually spends on the text. Hover a head for its scores.",
    )


def _set_flag(flag: str) -> None:
    st.session_state[flag] = True


def _measure_with_progress(loaded, steps) -> list:
    bar = st.progress(0.0)
    results = []
    for i, step in enumerate(steps):
        bar.progress(i / len(steps), text=f"Measuring {step.label} ({i + 1} of {len(steps)})…")
        results.append(card_step(loaded, step.key))
    bar.empty()
    return results


TOOL = Tool(family.CARDS, "Replication cards", cards_body)
