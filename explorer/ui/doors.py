"""Doors between pages: the sidebar's buttons from a family page to its experiments and to the lessons,
and the way back to a lesson under way.

A door names the page it opens by its address (``url_path``), never by the module that draws it: the
pages that use these doors (every family page through the View, the experiments, the lessons) import
nothing that imports them by name (explorer.ui.pages and explorer.ui.navigation do that), so no import
circle runs through the module names.
"""

from __future__ import annotations

import streamlit as st

from explorer.adapters.lookup import adapter_of
from explorer.ui.boundary import guarded
from explorer.ui.links import preset
from explorer.ui.presenter import bring_into_view

# Session keys the experiments page declares (explorer/ui/experiments/common.py) and a family page's door presets.
EXPERIMENTS_FAMILY, EXPERIMENTS_TOOL = "exp_family", "exp_tool"
# Session keys the lessons page owns and reads here: the lab under way, its step (from 1), whether the page
# shows its list of labs, the family that list starts with, and the figure to bring into view on landing.
LESSON_LAB, LESSON_STEP, LESSON_CHOOSING, LESSON_FAMILY, LESSON_LANDING = (
    "lessons_lab",
    "lessons_step",
    "_lessons_choosing",
    "_lessons_family",
    "_lessons_landing",
)


def _drawn_elsewhere() -> None:
    """Stands for a page's body in ``page_at``; never run (the page registered at that address runs)."""


def page_at(url_path: str) -> st.Page:
    """The app's page at ``url_path``, for ``st.switch_page`` and ``st.page_link``. st.navigation tells its
    pages apart by their address alone (a page's script hash is its url_path's), so a Page naming only the
    address reaches the one the app registered, whose module explorer.ui.pages imports."""
    return st.Page(_drawn_elsewhere, url_path=url_path)


def switch_to(url_path: str) -> None:
    st.switch_page(page_at(url_path))


def experiments_button(family_key: str) -> None:
    """One click from a family page to the experiments on its model (the family's first tool)."""
    if st.sidebar.button(
        "Experiments on this model",
        key="open_experiments",
        icon=":material/science:",
        help="Switch heads off, patch activations, change the routing, or measure published findings",
    ):
        preset(EXPERIMENTS_FAMILY, family_key)
        preset(EXPERIMENTS_TOOL, adapter_of(family_key).experiments[0])
        switch_to("experiments")


def _lessons_of(family_key: str) -> None:
    """The lessons page's list of labs, this family's first; a lab under way on this family stays open."""
    from explorer.lessons.labs import labs_of  # the labs import the adapters (torch): only a page that has them

    st.session_state[LESSON_FAMILY] = family_key
    st.session_state[LESSON_CHOOSING] = st.session_state.get(LESSON_LAB) not in {lab.id for lab in labs_of(family_key)}


def lessons_button(family_key: str) -> None:
    """From a family page (or the experiments page) to the guided labs on it, and back to a lesson under way;
    lands a lesson's "Open this view" on the figure its question is about."""
    from explorer.lessons.labs import labs_of

    landing = st.session_state.pop(LESSON_LANDING, None)
    if landing:
        bring_into_view(*landing)
    if st.session_state.get(LESSON_LAB):
        if st.sidebar.button(
            "Back to the lesson",
            key="back_to_lesson",
            icon=":material/undo:",
            help=f"Step {st.session_state.get(LESSON_STEP, 1)} of the lab you were doing",
        ):
            st.session_state[LESSON_CHOOSING] = False
            switch_to("lessons")
    labs = labs_of(family_key)
    if labs and st.sidebar.button(
        "Lessons on this family",
        key="open_lessons",
        icon=":material/school:",
        on_click=guarded(_lessons_of),
        args=(family_key,),
        help=f"{len(labs)} guided labs: predict what the model does, then check it live",
    ):
        switch_to("lessons")
