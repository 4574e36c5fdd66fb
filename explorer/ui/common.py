"""Sidebar switches on every page (classroom mode, the presenter tour's switch).

The rest of what pages share lives in its own module: view.py (the View a page declares),
boundary.py (error boundary), links.py (shared links), picker.py (model and device),
memory.py (computing slots and memory), stepper.py (step-by-step decoding).
"""

from __future__ import annotations

import streamlit as st

from explorer.ui.boundary import guarded
from explorer.ui.links import URL_VALUE_LIMIT  # noqa: F401 (kept importable from here: tests and old callers)

# Every page, both modes: a compact top (the first figure above the fold on a 1280x720 projector) and
# sidebar labels that wrap instead of being cut ("Encoder-deco…").
LAYOUT_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding: 2.5rem 2rem 2rem 2rem !important; max-width: none !important; }
h1 { font-size: 2rem !important; padding-top: 0 !important; padding-bottom: 0.2rem !important; }
[data-testid="stSidebarNavLink"] span, [data-testid="stSidebar"] label p, [data-testid="stSidebar"] button p,
[data-testid="stWidgetLabel"] p, button[kind="secondary"] p, [data-testid="stPageLink"] p,
[data-testid="stMetricLabel"] p
  { white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
</style>"""
# Classroom mode: text read from the back of a room (typed text and model outputs at least 24 px,
# captions dark). Sizes in px, not a larger root font: rem-based spacing stays as it is, so the
# bigger text does not also push the figures down.
CLASSROOM_CSS = """<style>
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 21px !important; }
h1 { font-size: 2.2rem !important; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p
  { font-size: 18px !important; color: #1a1a1a !important; }
textarea, input, [data-testid="stCode"] code, [data-testid="stCode"] pre, .explorer-output
  { font-size: 24px !important; line-height: 1.35 !important; }
[data-testid="stWidgetLabel"] p, button p, [data-testid="stExpander"] summary p,
[data-testid="stSidebarNavLink"] span { font-size: 19px !important; }
section[data-testid="stSidebar"] { width: 17rem !important; min-width: 17rem !important; }
</style>"""
CLASSROOM_PARAM = "classroom"  # ?classroom=1: a reload or a shared link keeps the mode


def persistent_toggle(label: str, key: str, help: str) -> bool:
    """A sidebar toggle whose value survives page switches: widget state is dropped when
    the page changes, so the value also lives under a plain session key ('<key>_on')."""
    store = f"{key}_on"

    def remember() -> None:  # runs before the script, right after the user flips the switch
        st.session_state[store] = st.session_state[key]

    st.session_state[key] = st.session_state.get(store, False)
    st.sidebar.toggle(label, key=key, help=help, on_change=guarded(remember))
    return st.session_state.get(store, False)


def classroom_switch() -> None:
    """In app.py, before the page runs, so the switch is on every page. The mode lives in the URL
    too (?classroom=1), so a reload or a shared link opens it the same way."""
    st.html(LAYOUT_CSS)
    if not st.session_state.get("_classroom_read"):  # once per session: the link decides, then the switch
        st.session_state["_classroom_read"] = True
        if st.query_params.get(CLASSROOM_PARAM) == "1":
            st.session_state["classroom_on"] = True
    on = persistent_toggle("Classroom mode", "classroom", "Large fonts and high-contrast figures for a projector.")
    if on:
        st.query_params[CLASSROOM_PARAM] = "1"
        st.html(CLASSROOM_CSS)
    elif CLASSROOM_PARAM in st.query_params:
        del st.query_params[CLASSROOM_PARAM]


def classroom_on() -> bool:
    return bool(st.session_state.get("classroom_on"))
