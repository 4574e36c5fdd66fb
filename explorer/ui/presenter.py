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
    st.session_state["presenter_moves"] = st.session_state.get("presenter_moves", 0) + 1


def presenter_sidebar(pages_by_url: dict, views: Callable[[], dict]) -> None:
    """In app.py: the presenter switch and, when on, Previous / Next and what to say."""
    if not persistent_toggle("Presenter tour", "presenter", "Step through a prepared example, view by view."):
        return
    if st.session_state.pop("_presenter_start", False):  # the home page's "Start the presenter tour"
        _go(0, views)
    steps = tour()
    index = st.session_state.setdefault("presenter_index", 0)
    step = steps[index]
    with st.sidebar.container(border=True):
        c1, c2 = st.columns(2)  # above the step's text: reachable without scrolling the sidebar on a 720 px screen
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
        st.markdown(f"**Step {index + 1} of {len(steps)}: {step['title']}**")
        st.caption(step["say"])
    target = st.session_state.pop("_presenter_target", None)
    if target is not None and target in pages_by_url:
        st.switch_page(pages_by_url[target])
    if landing(step) and st.session_state.get("presenter_moves"):
        bring_into_view(landing(step), st.session_state["presenter_moves"])


def landing(step: dict) -> str | None:
    """The key the tour brings on screen: the figure the step narrates, or (a lab's question, which comes before
    its figure) the part of the page it names as its anchor; none on the home page."""
    return step.get("figure") or step.get("anchor")


# Runs in the page (st.html with JavaScript), once per move of the tour: the same body on later reruns is not run
# again, and a page reload finds the move done. The figure may draw seconds after the page switches (a model loads,
# figures above it grow as Plotly draws them), so it looks for the figure and re-centres it until it stays put,
# and stops as soon as the presenter scrolls or types. Streamlit's main area scrolls inside its own container:
# scrollIntoView scrolls every container around the figure.
_BRING_INTO_VIEW = """<script>
(() => {
  const key = __KEY__, move = __MOVE__;
  if (window.__presenterMove === move) return;
  window.__presenterMove = move;
  let touched = false;
  const stop = () => { touched = true; };
  for (const type of ["wheel", "touchmove", "keydown", "mousedown"]) {
    window.addEventListener(type, stop, {once: true, passive: true});
  }
  const start = Date.now();
  let found = 0, lastTop = null, still = 0;
  const tick = () => {
    if (touched || window.__presenterMove !== move) return;
    // a key ending in "_" names figures keyed by position (the masked words' bars): the first of them
    const el = key.endsWith("_") ? document.querySelector("[class*='st-key-" + CSS.escape(key) + "']")
                                 : document.querySelector(".st-key-" + CSS.escape(key));
    if (!el) { if (Date.now() - start < 180000) setTimeout(tick, 200); return; }
    const rect = el.getBoundingClientRect();
    if (rect.height > 0) {
      if (!found) {
        found = Date.now();
        el.style.outline = "3px solid #ff4b4b";
        el.style.outlineOffset = "6px";
        el.style.borderRadius = "4px";
        el.style.scrollMarginTop = "72px";
        setTimeout(() => { el.style.outline = ""; el.style.outlineOffset = ""; }, 4000);
      }
      const tall = rect.height > window.innerHeight - 100;
      const off = tall ? Math.abs(rect.top - 72) : Math.abs(rect.top + rect.height / 2 - window.innerHeight / 2);
      if (off > 24) el.scrollIntoView({block: tall ? "start" : "center", behavior: "auto"});
      still = lastTop !== null && Math.abs(rect.top - lastTop) < 2 ? still + 1 : 0;
      lastTop = rect.top;
    }
    if (!found || (still < 8 && Date.now() - found < 15000)) setTimeout(tick, 200);
  };
  tick();
})();
</script>"""


def bring_into_view(figure: str, move: int) -> None:
    """Scroll the main area to the figure ``figure`` (its Streamlit key, or the prefix of keys that end in a
    position) and outline it for a few seconds."""
    script = _BRING_INTO_VIEW.replace("__KEY__", json.dumps(figure)).replace("__MOVE__", str(int(move)))
    st.sidebar.html(script, unsafe_allow_javascript=True)
