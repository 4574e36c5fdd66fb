"""Sidebar switches on every page (classroom mode, the presenter tour's switch).

The rest of what pages share lives in its own module: view.py (the View a page declares),
boundary.py (error boundary), links.py (shared links), picker.py (model and device),
memory.py (computing slots and memory), stepper.py (step-by-step decoding).
"""

from __future__ import annotations

import streamlit as st

from explorer.ui.boundary import guarded
from explorer.ui.links import URL_VALUE_LIMIT  # noqa: F401 (kept importable from here: tests and old callers)

CLASSROOM_CSS = (
    "<style>\n"
    'html, body, [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"]'
    " li { font-size: 1.3rem !important; }\n"
    'h1 { font-size: 3rem !important; } [data-testid="stCaptionContainer"]'
    " { font-size: 1.1rem !important; color: #222 !important; }\n"
    "</style>"
)


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
    """In app.py, before the page runs, so the switch is on every page."""
    if persistent_toggle("Classroom mode", "classroom", "Large fonts and high-contrast figures for a projector."):
        st.html(CLASSROOM_CSS)
