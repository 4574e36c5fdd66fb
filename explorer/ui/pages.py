"""The page of each registered family, built from its Family record (title, address, icon and
the module whose ``render`` draws it)."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import streamlit as st

from explorer.locks import BUILD_LOCK
from explorer.registry import FAMILIES
from explorer.ui.boundary import guarded
from explorer.ui.memory import freeze_long_lived_objects
from explorer.ui.presenter import bring_into_view

# Libraries that other libraries import on first use, from whichever thread needs them first (plotly
# and streamlit import pandas, pyarrow and narwhals when a figure or table is first built; the PCA and
# the speech page import parts of scipy). Their imports are circular inside, and two threads importing
# them at once give one of them a half-made module ("partially initialized module 'pandas' has no
# attribute 'Series'"): so the first page import brings them in, under the same lock.
WARM_IMPORTS = (
    "pandas",
    "pyarrow",
    "narwhals",
    "plotly.graph_objects",
    "plotly.io",
    "scipy.sparse.linalg",
    "scipy.signal",
)


def import_page(module_name: str):
    """A page module, imported on first use under the build lock (with the libraries above)."""
    module = sys.modules.get(module_name)
    if module is not None and not getattr(module.__spec__, "_initializing", False):
        return module
    with BUILD_LOCK:  # two first imports at once can see each other's half-made modules (explorer/locks.py)
        for name in WARM_IMPORTS:
            if name not in sys.modules and importlib.util.find_spec(name.split(".")[0]) is not None:
                importlib.import_module(name)
        module = importlib.import_module(module_name)
        freeze_long_lived_objects()  # the modules just imported stay for the process's life
    return module


def lazy_render(module_name: str, title: str = "", lead: str = ""):
    """A page's render that imports its module on the first run: page modules bring torch,
    transformers and plotly (seconds), which the home page does not need. Until they are in, the
    page shows its title, its lead and a spinner at once, instead of a blank main area."""

    def render() -> None:
        module = sys.modules.get(module_name)
        if module is not None and not getattr(module.__spec__, "_initializing", False):
            module.render()
            return
        waiting = st.empty()
        with waiting.container():
            if title:
                st.title(title)
            if lead:
                st.caption(lead)
            with st.spinner("Loading the model libraries for this page's first visit (a few seconds, once)…"):
                module = import_page(module_name)
        waiting.empty()
        module.render()

    render.__name__ = f"render_{module_name.rsplit('.', 1)[-1]}"
    return render


def family_page(key: str) -> st.Page:
    family = FAMILIES[key]
    return st.Page(
        lazy_render(family.page, family.title, f"{family.title}: {family.blurb}"),
        title=family.title,
        icon=family.icon,
        url_path=family.url_path,
    )


EXPERIMENTS_MODULE = "explorer.ui.experiments"  # imported by name: it builds on the View, which links here


def lazy_page(module: str, title: str, lead: str, icon: str, url_path: str) -> st.Page:
    """A page whose module is imported on its first run (title and lead on screen before the heavy imports)."""
    return st.Page(lazy_render(module, title, lead), title=title, icon=icon, url_path=url_path)


def experiments_page() -> st.Page:
    lead = "Change the model, or test a published claim on it."
    return lazy_page(EXPERIMENTS_MODULE, "Experiments", lead, ":material/science:", "experiments")


def experiments_button(family_key: str) -> None:
    """One click from a family page to the experiments on its model."""
    if st.sidebar.button(
        "Experiments on this model",
        key="open_experiments",
        icon=":material/science:",
        help="Switch heads off, patch activations, change the routing, or measure published findings",
    ):
        import_page(EXPERIMENTS_MODULE).open_experiments(family_key)
        st.switch_page(experiments_page())


LESSONS_MODULE = "explorer.ui.lessons_page"  # imported by name: it builds on the View and the labs (torch)
# Session keys the lessons page owns and reads here: the lab under way, its step (from 1), whether the page
# shows its list of labs, the family that list starts with, and the figure to bring into view on landing.
LESSON_LAB, LESSON_STEP, LESSON_CHOOSING, LESSON_FAMILY, LESSON_LANDING = (
    "lessons_lab", "lessons_step", "_lessons_choosing", "_lessons_family", "_lessons_landing")


def lessons_page() -> st.Page:
    lead = "Predict, then watch the model: guided labs, alone or with a class."
    return lazy_page(LESSONS_MODULE, "Lessons", lead, ":material/school:", "lessons")


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
        if st.sidebar.button("Back to the lesson", key="back_to_lesson", icon=":material/undo:",
                             help=f"Step {st.session_state.get(LESSON_STEP, 1)} of the lab you were doing"):
            st.session_state[LESSON_CHOOSING] = False
            st.switch_page(lessons_page())
    labs = labs_of(family_key)
    if labs and st.sidebar.button(
        "Lessons on this family", key="open_lessons", icon=":material/school:", on_click=guarded(_lessons_of),
        args=(family_key,), help=f"{len(labs)} guided labs: predict what the model does, then check it live",
    ):
        st.switch_page(lessons_page())
