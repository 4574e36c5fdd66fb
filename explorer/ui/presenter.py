"""Presenter flow: step through a prepared classroom tour, one view at a time."""

from __future__ import annotations

import json
from collections.abc import Callable

import streamlit as st

from explorer.catalogue import ASSETS
from explorer.ui.boundary import guarded
from explorer.ui.common import persistent_toggle


def tour() -> list[dict]:
    return json.loads((ASSETS / "presenter.json").read_text())["steps"]


def _go(index: int, views: Callable[[], dict]) -> None:
    steps = tour()
    index = max(0, min(index, len(steps) - 1))
    step = steps[index]
    st.session_state["presenter_index"] = index
    presets = dict(step.get("state", {}))
    if step.get("text_key"):
        presets[step["text_key"]] = step["text"]
    view = views()[step["page"]] if presets else None
    for key, value in presets.items():
        # through the page's View: a key the page does not declare fails here (and in the tour's test)
        view.preset(key, value)  # the tour's state wins over a stale URL
    st.session_state["_presenter_target"] = step["page"]


def presenter_sidebar(pages_by_url: dict, views: Callable[[], dict]) -> None:
    """In app.py: the presenter switch and, when on, Previous / Next and what to say."""
    if not persistent_toggle("Presenter tour", "presenter", "Step through a prepared example, view by view."):
        return
    steps = tour()
    index = st.session_state.setdefault("presenter_index", 0)
    step = steps[index]
    with st.sidebar.container(border=True):
        st.markdown(f"**Step {index + 1} of {len(steps)}: {step['title']}**")
        st.caption(step["say"])
        c1, c2 = st.columns(2)
        c1.button(
            "◀ Previous",
            key="presenter_prev",
            on_click=guarded(_go),
            args=(index - 1, views),
            disabled=index == 0,
            width="stretch",
        )
        c2.button(
            "Next ▶",
            key="presenter_next",
            on_click=guarded(_go),
            args=(index + 1, views),
            disabled=index == len(steps) - 1,
            width="stretch",
        )
    target = st.session_state.pop("_presenter_target", None)
    if target is not None and target in pages_by_url:
        st.switch_page(pages_by_url[target])
