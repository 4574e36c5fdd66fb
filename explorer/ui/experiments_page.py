"""Experiments page: the learner changes the live model (interventions) or measures a published
finding on it against chance (replication cards). Every family page links here with its model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st

from explorer.adapters import family as interface
from explorer.adapters import interventions
from explorer.adapters.common import display_token, display_tokens, tokenize
from explorer.adapters.lookup import adapter_for, adapter_of
from explorer.catalogue import TRANSLATOR_ID, load_catalogue
from explorer.experiments import measure, readings, report
from explorer.experiments import statistics as stats
from explorer.experiments.prompts import PROMPT_SETS, SENTENCES
from explorer.plots import experiments as plots
from explorer.registry import FAMILIES
from explorer.text import plain
from explorer.ui import attribution_panel, picker
from explorer.ui.boundary import guarded, run_safely
from explorer.ui.links import publish_to_url, restore_from_url
from explorer.ui.pages import lessons_button
from explorer.ui.view import View, cached

VIEW = View(
    "Experiments view",
    text_key="exp_text",
    keys={
        "family": "exp_family",
        "tool": "exp_tool",
        "text": "exp_text",
        "heads": "exp_heads",
        "pair": "exp_pair",
        "moe": "exp_moe_action",
        "attr_on": "exp_attr_on",
        "attr_method": "exp_attr_method",
    },
    settings={"exp_attr_on": "bool", "exp_attr_method": "choice Gradient × input|Integrated gradients|Occlusion"},
)

CARDS, HEADS, SINK, PATCHING, ROUTING, CROSS, ATTRIBUTION = (
    "Replication cards",
    "Switch heads off",
    "Remove the attention sink",
    "Activation patching",
    "Change the routing",
    "Remove cross-attention",
    "Which tokens mattered",
)
# Each experiment a family adapter may offer (explorer.adapters.family.EXPERIMENTS), by its label here.
LABELS = {
    interface.CARDS: CARDS,
    interface.HEADS: HEADS,
    interface.SINK: SINK,
    interface.PATCHING: PATCHING,
    interface.ROUTING: ROUTING,
    interface.CROSS_ATTENTION: CROSS,
    interface.ATTRIBUTION: ATTRIBUTION,
}
EXAMPLES = [
    "The cat sat on the mat. The cat sat on the mat.",
    "My sister lives in a small town near the sea.",
    "When Mary and John went to the shop, John gave a book to Mary.",
    "Paris is the capital of France, and Rome is the capital of Italy.",
]
# Made-up words in a fixed order, three times: a model can only predict the repeats by copying what came after the
# same word before (what induction heads do). On SmolLM2 switching off its 3 strongest induction heads raises the loss
# on this text from 5.92 to 7.41 nats (tests/test_experiments_page.py checks the rise is at least 1 nat).
INDUCTION_DEMO = " ".join(["zebra lantern copper violin meadow quartz pickle saturn."] * 3)
INDUCTION_WEAK = 0.3  # an induction score below this (from 0 to 1) is no induction head worth the name
MAX_TOKENS = 96  # interventions run the model twice or more per view: keep the text short
# The last value of every setting. Streamlit drops a widget's state after a run that does not draw it
# (an empty or too-short text stops a tool before its controls; another tool draws others): the page
# puts the value back from here when the widget is drawn again.
SAVED = "_exp_saved_settings"

HEADLINE = "Experiments: change the model, or test a published claim on it"
INTRO = (
    "The family pages show what a model computes; here you change it and watch what happens. An **intervention** "
    "runs the same text twice, unmodified and modified, and compares them: the log-probability of each observed "
    "next token, the KL divergence between the two output distributions (0 = identical), and where the top-1 "
    "prediction flips. A **replication card** measures a published finding on the loaded model, over a named prompt "
    "set, beside what chance would give."
)


def render() -> None:
    VIEW.heading(HEADLINE, INTRO)
    VIEW.start()
    with VIEW.panels():  # the choices and the text beside the tool's figure (above the fold on a projector)
        family = _family_choice()
    loaded = picker.load_for_page(family)
    if loaded is None:
        return
    lessons_button("experiments")
    with VIEW.side():
        tool = _tool_choice(family)
    with VIEW.main():
        run_safely(lambda: TOOL_BODIES[tool](loaded))
    VIEW.export()


def _family_choice() -> str:
    key = VIEW.keys["family"]
    restore_from_url("family", key)
    if st.session_state.get(key) not in FAMILIES:
        st.session_state[key] = "decoder"
    family = st.radio(
        "Family",
        list(FAMILIES),
        key=key,
        horizontal=True,
        format_func=lambda k: FAMILIES[k].title,
        help="Its model is the one chosen for that family in the sidebar (the same as on the family's page).",
    )
    if st.session_state.get("_exp_last_family", family) != family and "model" in st.query_params:
        del st.query_params["model"]  # it names the previous family's model: this family's picker must not restore it
    st.session_state["_exp_last_family"] = family
    publish_to_url(family=family)
    return family


def tools(family_key: str) -> list[str]:
    """The family's tools (its adapter's ``experiments``), labelled. The first of each family opens with a
    result on screen; the cards wait for a click (they run several prompt sets)."""
    return [LABELS[slug] for slug in adapter_of(family_key).experiments]


def _tool_choice(family: str) -> str:
    key = VIEW.keys["tool"]
    restore_from_url("tool", key)
    offered = tools(family)
    if st.session_state.get(key) not in offered:
        st.session_state[key] = offered[0]
    tool = st.radio("Experiment", offered, key=key, horizontal=True)
    publish_to_url(tool=tool)
    return tool


def open_experiments(family_key: str) -> None:
    """Callback of a family page's button: this page, on that family's model."""
    VIEW.preset(VIEW.keys["family"], family_key)
    VIEW.preset(VIEW.keys["tool"], tools(family_key)[0])


# --- cached computations (shared by every session, keyed by model and inputs) -----------------


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


@cached(max_entries=32)
def sink_removal(loaded, ids: tuple):
    return interventions.sink_removal(loaded, np.asarray(ids))


@cached(max_entries=8)
def patchable_pairs(loaded):
    return readings.patchable_pairs(loaded)  # tokenises every pair: once per model, not on every rerun


@cached(max_entries=16)
def patching(loaded, pair_name: str):
    pair = next(p for p in readings.patching_pairs(loaded) if p.name == pair_name)
    setup = interventions.patching_setup(loaded, pair)
    return setup, interventions.patch_pair(loaded, setup)


@cached(max_entries=32)
def routing(loaded, ids: tuple, top_k: int | None, drop: tuple, force: tuple, by_id: bool, weight: str = "first"):
    table = reference_token_table(loaded) if by_id else None
    return interventions.route_override(
        loaded, np.asarray(ids), top_k=top_k, drop=drop, force=force, token_table=table, force_weight=weight
    )


@cached(max_entries=8)
def reference_token_table(loaded):
    return interventions.token_table(loaded, [tokenize(loaded, s)[0] for s in SENTENCES])


@cached(max_entries=16)
def top_k_sweep(loaded, ids: tuple):
    return interventions.top_k_sweep(loaded, np.asarray(ids))


@cached(max_entries=32)
def translation(loaded, source: tuple, span: tuple | None):
    base = interventions.greedy_with_span_removed(loaded, np.asarray(source), None)
    modified = interventions.greedy_with_span_removed(loaded, np.asarray(source), span)
    scored = interventions.cross_attention_removal(loaded, np.asarray(source), base, span)
    return base, modified, scored


# --- shared pieces ---------------------------------------------------------------------------------


def _restore(key: str, valid: Callable[[object], bool] = lambda value: True) -> None:
    """Before drawing setting ``key``'s widget: its last value, if Streamlit dropped it since and it
    is still ``valid`` (one of the widget's options)."""
    saved = st.session_state.setdefault(SAVED, {})
    if key not in st.session_state and key in saved and valid(saved[key]):
        st.session_state[key] = saved[key]


def _keep(key: str, value) -> None:
    """After drawing setting ``key``'s widget: remember its value for the runs that do not draw it."""
    st.session_state.setdefault(SAVED, {})[key] = value


def _refused(check: Callable[[], object]) -> bool:
    """Run an intervention's check of its settings; when it refuses them, show its sentence (what is
    possible) as a warning instead of a result, and say so."""
    try:
        check()
    except interventions.InterventionRefused as refusal:
        st.warning(str(refusal))
        return True
    return False


def _text_ids(loaded) -> np.ndarray | None:
    key = VIEW.text_key
    _restore(key, lambda value: isinstance(value, str))
    with VIEW.side():
        cleaned = VIEW.text_input("Text the model reads", EXAMPLES[0], EXAMPLES, height=70)
    _keep(key, st.session_state.get(key))
    if cleaned is None:
        return None
    ids, notes = tokenize(loaded, cleaned.text, limit=MAX_TOKENS, keep_end=adapter_for(loaded).keep_end)
    for note in notes:
        st.info(note + " (experiments read at most this many tokens)")
    if len(ids) < 3:
        st.warning("Type a longer text: an intervention needs at least 3 tokens to compare.")
        return None
    return ids


def show_result(loaded, result, key: str, how: str) -> None:
    """The unmodified and modified run side by side: numbers, the figure and the flipped tokens."""
    cols = st.columns(4)
    cols[0].metric("Loss, unmodified", f"{result.base_loss:.3f} nats", help="mean −log p of the scored tokens")
    cols[1].metric(
        "Loss, modified",
        f"{result.modified_loss:.3f} nats",
        f"{result.modified_loss - result.base_loss:+.3f}",
        delta_color="inverse",
    )
    cols[2].metric("Mean KL", f"{result.mean_kl:.4f} nats", help="KL(unmodified ‖ modified), averaged over positions")
    cols[3].metric("Top-1 flipped", f"{int(result.flipped.sum())} of {len(result.flipped)}")
    tokens = list(display_tokens(loaded.tokenizer, result.token_ids))
    VIEW.figure(plots.intervention_figure(result, tokens), key=key, caption=result.description, how_to_read=how)
    flipped = np.flatnonzero(result.flipped)
    if flipped.size:
        rows = [
            {
                "position": int(i),
                "token": tokens[i],
                "unmodified top-1": display_token(loaded.tokenizer, int(result.base_top1[i])),
                "modified top-1": display_token(loaded.tokenizer, int(result.modified_top1[i])),
            }
            for i in flipped
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)


HOW_INTERVENTION = (
    "Each position's line is the log-probability the model gives the token that follows it in your text (for an "
    "encoder: the token itself), blue unmodified, red modified; the grey bars (right axis) are the KL divergence "
    "between the two full output distributions there; a black × marks a position whose most likely token changed."
)


# --- replication cards ------------------------------------------------------------------------------

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
        _ask_for_text_model()
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
    _restore("exp_card", lambda value: value in names)
    name = st.selectbox("Card to see layer by layer", names, key="exp_card")
    _keep("exp_card", name)
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


# --- attention interventions -------------------------------------------------------------------

MEAN_REFERENCE = "everyday-sentences"  # the named prompt set whose mean replaces a head in 'mean' mode
HEAD_MODE_LABELS = {"zero": "zero", "mean": f"mean over {MEAN_REFERENCE}", "prefix": "mean so far"}
HEAD_MODE_HELP = (
    f"zero: the head contributes nothing. Mean over {MEAN_REFERENCE}: its average output over every position of "
    "the 12 everyday sentences (a fixed reference set, not your text), the same vector at every position. Mean so "
    "far (causal models): at each position, its average output over your text's positions up to that one. Neither "
    "mean lets a position see the text after it."
)


def heads_body(loaded) -> None:
    ids = _text_ids(loaded)
    if ids is None:
        return
    layers = len(interventions.attention_output_projections(loaded.model))
    heads = interventions.num_heads(loaded.model.config)
    options = [f"L{layer}H{h}" for layer in range(layers) for h in range(heads)]
    key = VIEW.keys["heads"]
    _restore(key, lambda value: isinstance(value, list))
    st.session_state[key] = [h for h in st.session_state.get(key, []) if h in options]
    cols = st.columns([3, 1, 1])
    chosen = cols[0].multiselect(
        f"Heads to switch off ({layers} layers × {heads} heads; L0 = first block)", options, key=key
    )
    _keep(key, list(chosen))
    adapter = adapter_for(loaded)
    modes = list(adapter.head_modes)
    _restore("exp_head_mode", lambda value: value in modes)
    mode = cols[1].radio(
        "Replace the head's output by", modes, key="exp_head_mode", format_func=HEAD_MODE_LABELS.get,
        help=HEAD_MODE_HELP,
    )  # fmt: skip
    _keep("exp_head_mode", mode)
    if adapter.causal:  # induction: a repeated token attends to what followed its earlier copy
        _induction_buttons(cols[2], loaded)
    if not chosen:
        st.info("Pick one or more heads above (or ask for the induction heads, then use a text that repeats itself).")
        return
    pairs = tuple((int(n[1:].split("H")[0]), int(n.split("H")[1])) for n in chosen)
    if _refused(lambda: interventions.check_heads(loaded.model, pairs, mode, adapter.causal)):
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


def sink_body(loaded) -> None:
    ids = _text_ids(loaded)
    if ids is None:
        return
    first = display_token(loaded.tokenizer, int(ids[0]))
    st.markdown(
        f"Every attention row's weight on the first token (**{plain(first)}**) is removed and the rest "
        "renormalised, in every layer and head at once (a custom attention mask). Many models park attention there "
        "when no other token is relevant (an *attention sink*, Xiao et al. 2023): without it they must put that "
        "weight somewhere else."
    )
    show_result(loaded, sink_removal(loaded, tuple(ids.tolist())), "exp_sink_fig", HOW_INTERVENTION)


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
    _restore(key, lambda value: value in names)
    if st.session_state.get(key) not in names:
        st.session_state[key] = pairs[0].name
    name = st.radio("Prompt pair (those this tokenizer can patch)", names, key=key, horizontal=True)
    _keep(key, name)
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


# --- mixture of experts -------------------------------------------------------------------------


def routing_body(loaded) -> None:
    ids = _text_ids(loaded)
    if ids is None:
        return
    actions = ["Top-k sweep", "Drop experts", "Force an expert", "Route by token id only"]
    key = VIEW.keys["moe"]
    _restore(key, lambda value: value in actions)
    if st.session_state.get(key) not in actions:
        st.session_state[key] = actions[0]
    action = st.radio("Change", actions, key=key, horizontal=True)
    _keep(key, action)
    config = loaded.model.config
    experts = interventions.num_experts(config)
    if action == actions[0]:
        _top_k_sweep(loaded, ids)
    elif action == actions[1]:
        _restore("exp_drop", lambda value: isinstance(value, list) and all(e in range(experts) for e in value))
        dropped = st.multiselect(
            "Experts no token may use", list(range(experts)), key="exp_drop", format_func=lambda e: f"expert {e}"
        )
        _keep("exp_drop", list(dropped))
        if not dropped:
            st.info("Pick experts to drop: their tokens go to each router's next choice.")
            return
        if _refused(lambda: interventions.check_routing(config, len(ids), drop=dropped)):
            return
        show_result(
            loaded,
            routing(loaded, tuple(ids.tolist()), None, tuple(dropped), (), False),
            "exp_drop_fig",
            HOW_INTERVENTION,
        )
    elif action == actions[2]:
        _force_expert(loaded, ids, experts)
    else:
        st.caption(
            "Each token is routed by the mean router probabilities its id had over the 12 everyday sentences "
            "(context ignored); ids never seen there keep their own router's choice."
        )
        show_result(loaded, routing(loaded, tuple(ids.tolist()), None, (), (), True), "exp_by_id_fig", HOW_INTERVENTION)


def _top_k_sweep(loaded, ids) -> None:
    sweep = top_k_sweep(loaded, tuple(ids.tolist()))
    VIEW.figure(
        plots.top_k_figure(sweep),
        key="exp_topk_fig",
        caption=f"The same text with each token sent to k experts instead of the trained {sweep.trained_k}. Parameters "
        "per token as on the MoE page: everything but the experts a token does not use (embeddings included).",
    )
    st.dataframe(
        pd.DataFrame(
            {
                "top-k": sweep.ks,
                "loss (nats)": np.round(sweep.loss, 3),
                "parameters per token (M)": np.round(sweep.active_params / 1e6, 3),
            }
        ),
        hide_index=True,
    )


def _force_expert(loaded, ids, experts: int) -> None:
    tokens = display_tokens(loaded.tokenizer, ids)
    cols = st.columns(2)
    _restore("exp_force_pos", lambda value: value in range(len(ids)))
    position = cols[0].selectbox(
        "Token", list(range(len(ids))), key="exp_force_pos", format_func=lambda i: f"{i}: {tokens[i]}"
    )
    _keep("exp_force_pos", position)
    _restore("exp_force_expert", lambda value: value in range(experts))
    expert = cols[1].selectbox(
        "Its first choice in every MoE layer",
        list(range(experts)),
        key="exp_force_expert",
        format_func=lambda e: f"expert {e}",
    )
    _keep("exp_force_expert", expert)
    _restore("exp_force_weight", lambda value: value in interventions.FORCE_WEIGHTS)
    weight = st.radio(
        "The forced expert's gate weight", list(interventions.FORCE_WEIGHTS), key="exp_force_weight",
        format_func=interventions.FORCE_WEIGHTS.get, horizontal=True, help=FORCE_HELP,
    )  # fmt: skip
    _keep("exp_force_weight", weight)
    force = ((None, int(position), int(expert)),)
    if _refused(lambda: interventions.check_routing(loaded.model.config, len(ids), force=force)):
        return
    result = routing(loaded, tuple(ids.tolist()), None, (), force, False, weight)
    show_result(loaded, result, "exp_force_fig", HOW_INTERVENTION)


FORCE_HELP = (
    "The forced expert takes the token's first slot. With the weight of the original first choice, the slots keep "
    "their gate weights in order (the original first choice, moved to the second slot, takes the second's weight); "
    "with its own router probability, every slot takes the router's probability of the expert now in it. Either is "
    "then renormalised over the chosen experts where the model renormalises (Mixtral does)."
)


# --- encoder-decoder --------------------------------------------------------------------------


def cross_body(loaded) -> None:
    if loaded.arch.audio:
        _ask_for_text_model()
        return
    ids = _text_ids(loaded)
    if ids is None:
        return
    tokens = list(display_tokens(loaded.tokenizer, ids))

    def fits(value) -> bool:  # a span of this text's tokens
        return isinstance(value, (tuple, list)) and len(value) == 2 and 0 <= value[0] <= value[1] < len(ids)

    _restore("exp_span", fits)
    if "exp_span" in st.session_state and not fits(st.session_state["exp_span"]):
        del st.session_state["exp_span"]  # a span of a longer text: the slider starts again from its default
    span = st.select_slider(
        "Source tokens the decoder may not look at",
        options=list(range(len(ids))),
        value=(0, 0),
        key="exp_span",
        format_func=lambda i: f"{i}: {tokens[i]}",
    )
    _keep("exp_span", tuple(span))
    start, stop = span[0], span[1] + 1
    if stop - start >= len(ids):
        st.warning(f"Leave at least one source token visible: at most {len(ids) - 1} of the {len(ids)} can be hidden.")
        return
    base, modified, scored = translation(loaded, tuple(ids.tolist()), (start, stop))
    decode = loaded.tokenizer.decode
    st.markdown(
        f"Unmodified output: **{plain(decode(base, skip_special_tokens=True))}**  \n"
        f"Without cross-attention to *{plain(' '.join(tokens[start:stop]))}*: "
        f"**{plain(decode(modified, skip_special_tokens=True))}**"
    )
    show_result(
        loaded,
        scored,
        "exp_cross_fig",
        "The decoder re-reads the unmodified output token by token; the lines "
        "are each output token's log-probability with and without the removed source tokens (greedy, the "
        "encoder's pass unchanged). " + HOW_INTERVENTION,
    )


def attribution_body(loaded) -> None:
    if loaded.arch.audio:
        _ask_for_text_model()
        return
    ids = _text_ids(loaded)
    if ids is not None:
        attribution_panel.compare_methods(VIEW, loaded, ids)


def _ask_for_text_model() -> None:
    st.info("This experiment needs a text encoder-decoder; the model chosen for this family reads speech.")
    if any(m.id == TRANSLATOR_ID for m in load_catalogue()["seq2seq"].models):
        st.button(
            "Use the English → Portuguese translator", key="exp_use_translator", on_click=guarded(_use_translator)
        )


def _use_translator() -> None:
    picker.choose_model("seq2seq", TRANSLATOR_ID)


TOOL_BODIES = {
    CARDS: cards_body,
    HEADS: heads_body,
    SINK: sink_body,
    PATCHING: patching_body,
    ROUTING: routing_body,
    CROSS: cross_body,
    ATTRIBUTION: attribution_body,
}
