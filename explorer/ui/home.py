"""Start page: a way in for a class and for a student alone."""

from __future__ import annotations

import streamlit as st

from explorer.catalogue import load_catalogue
from explorer.diagrams import picture
from explorer.registry import FAMILIES
from explorer.ui.boundary import guarded
from explorer.ui.doors import page_at

TOUR_START = "_presenter_start"  # read by the presenter sidebar (app.py), which knows every page's View
PATH = (  # a student alone: (family key or page, what to look at there)
    ("decoder", "type a prompt, press Step, and move the temperature: the blue bars are what Step draws from."),
    ("encoder", "put [MASK] in a sentence, and watch 'bank' drift apart in two contexts."),
    ("seq2seq", "translate a sentence and read the alignment matrix: which English word each Portuguese word used."),
    ("moe", "follow a token's route through the experts, and see why every expert sits in memory."),
    ("experiments", "switch heads off, remove the attention sink, and test a published claim on the live model."),
)


def _start_tour() -> None:
    st.session_state["presenter_on"] = True
    st.session_state[TOUR_START] = True


def render() -> None:
    st.title("LLM architecture explorer")
    st.markdown(
        "Watch small, real language models work: pick a family, type some text, and every figure is computed "
        "live by a real model on this computer. The defaults are embedded and work offline."
    )
    c1, c2, c3 = st.columns([4, 4, 6], vertical_alignment="center")
    c1.button(
        "Start the presenter tour",
        icon=":material/co_present:",
        type="primary",
        on_click=guarded(_start_tour),
        help="A prepared walk through the four families, one view at a time, with what to say.",
    )
    c2.page_link(
        page_at("lessons"),
        label="**Lessons: predict, then check**",
        icon=":material/school:",
        help="Guided labs on every family: commit a prediction, then see the live model's own answer and why. "
        "Alone, or with a class that votes from its own browsers (a code, a live histogram, discuss and vote "
        "again, the reveal).",
    )
    c3.caption(
        "Teaching a class? Turn on **Classroom mode** in the sidebar: large text for a projector. Links keep it. "
        "**Lessons** ask your students to predict, then vote from their own browsers."
    )
    _families()
    _student_path()
    st.caption(
        "Attention weights show where information flows, not why a model decided. Every number on these pages "
        "comes from the model's own forward pass."
    )


def _families() -> None:
    catalogue = load_catalogue()
    columns = st.columns(len(FAMILIES))
    for column, family in zip(columns, FAMILIES.values()):
        entry = catalogue[family.key].find(catalogue[family.key].default)
        with column.container(border=True):
            st.page_link(page_at(family.url_path), label=f"**{family.title}**")
            svg = picture(family.key)
            if svg:
                st.image(svg, width="stretch")
            st.markdown(family.blurb)
            st.caption(f"Default model: {entry.label}.")


def _student_path() -> None:
    st.subheader("On your own? A path in five stops")
    for n, (where, what) in enumerate(PATH, start=1):
        page = page_at("experiments" if where == "experiments" else FAMILIES[where].url_path)
        title = "Experiments" if where == "experiments" else FAMILIES[where].title
        st.page_link(page, label=f"{n}. **{title}**: {what}")
