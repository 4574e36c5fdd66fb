"""Experiments page: the learner changes the live model (interventions) or measures a published
finding on it against chance (replication cards). Every family page links here with its model.

One module per tool (``TOOL``: its slug, label and body, with its own cached calls); this module
assembles them behind the family and tool choices and draws the page through ``View.page``. A
family offers the tools its adapter names (``experiments``); the URL and the presenter tour name a
tool by its slug (``?tool=heads``), and a link that names it by its label still opens it.
"""

from __future__ import annotations

import streamlit as st

from explorer.adapters.lookup import adapter_of
from explorer.registry import FAMILIES
from explorer.ui.boundary import run_safely
from explorer.ui.experiments import attribution, cards, cross_attention, heads, patching, routing, sink
from explorer.ui.experiments.common import VIEW, Tool
from explorer.ui.links import publish_to_url, restore_from_url

TOOLS: dict[str, Tool] = {
    tool.slug: tool
    for tool in (cards.TOOL, heads.TOOL, sink.TOOL, patching.TOOL, routing.TOOL, cross_attention.TOOL, attribution.TOOL)
}
SLUG_OF_LABEL = {tool.label: tool.slug for tool in TOOLS.values()}  # links made before the slugs named the label

HEADLINE = "Experiments: change the model, or test a published claim on it"
INTRO = (
    "The family pages show what a model computes; here you change it and watch what happens. An **intervention** "
    "runs the same text twice, unmodified and modified, and compares them: the log-probability of each observed "
    "next token, the KL divergence between the two output distributions (0 = identical), and where the top-1 "
    "prediction flips. A **replication card** measures a published finding on the loaded model, over a named prompt "
    "set, beside what chance would give."
)


def render() -> None:
    VIEW.page(HEADLINE, INTRO, _body, choose_family=_family_choice, lessons="experiments")


def _body(loaded) -> None:
    with VIEW.side():
        tool = _tool_choice(st.session_state[VIEW.keys["family"]])
    with VIEW.main():
        run_safely(lambda: TOOLS[tool].body(loaded))


def _family_choice() -> str:
    """The family radio, in the left panel (the choices and the text beside the tool's figure, above the fold)."""
    with VIEW.panels():
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
    """The family's tools by slug (its adapter's ``experiments``). The first of each family opens with a
    result on screen; the cards wait for a click (they run several prompt sets)."""
    return [TOOLS[slug].slug for slug in adapter_of(family_key).experiments]


def _tool_choice(family: str) -> str:
    key = VIEW.keys["tool"]
    restore_from_url("tool", key)
    offered = tools(family)
    chosen = st.session_state.get(key)
    chosen = SLUG_OF_LABEL.get(chosen, chosen) if isinstance(chosen, str) else chosen
    st.session_state[key] = chosen if chosen in offered else offered[0]
    tool = st.radio("Experiment", offered, key=key, horizontal=True, format_func=lambda slug: TOOLS[slug].label)
    publish_to_url(tool=tool)
    return tool
