"""The error boundary: a failure becomes one logged sentence on the page, never a traceback.

Page bodies run inside ``run_safely``; widget callbacks (which Streamlit runs before the script,
outside every page) are wrapped by ``guarded`` and their failure is shown on the next run.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import streamlit as st

from explorer.models.errors import ModelLoadError
from explorer.text import InputError, plain

log = logging.getLogger(__name__)

CALLBACK_FAILURE = "_callback_failure"


def explain_failure(error: Exception) -> tuple[str, str]:
    """Log ``error`` with its traceback on the server; return (kind, one sentence) for the visitor,
    kind being 'warning' (the input) or 'error' (a model or the app)."""
    if isinstance(error, InputError):  # a routine refusal: one line, no traceback
        log.info("input refused: %s", error)
        return "warning", str(error)
    if isinstance(error, ModelLoadError):  # logged where it was raised (models.loading), once
        log.info("model not loaded: %s", error)
        return "error", str(error)
    log.error("unexpected failure while computing a view", exc_info=error)
    detail = str(error).splitlines()[0][:200] if str(error) else "no details"
    return "error", (
        f"Something went wrong while computing this view ({type(error).__name__}: {detail}). "
        "Try another input or model; the rest of the page and your settings are kept."
    )


def _show_failure(kind: str, message: str) -> None:
    (st.warning if kind == "warning" else st.error)(plain(message))  # messages quote input: never Markdown


def run_safely(action: Callable[[], None]) -> None:
    """Run a page body; unexpected errors become one readable message, never a traceback
    (which goes to the server log). Streamlit's rerun/stop signals are BaseExceptions and pass."""
    try:
        action()
    except Exception as error:  # last line of defence for the classroom
        _show_failure(*explain_failure(error))


def guarded(callback: Callable) -> Callable:
    """A widget callback that cannot take the page down: callbacks run before the script,
    outside every page's boundary, so a failure is logged and kept for show_callback_failure()."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        try:
            return callback(*args, **kwargs)
        except Exception as error:
            st.session_state[CALLBACK_FAILURE] = explain_failure(error)

    return run


def show_callback_failure() -> None:
    """Show (once) the sentence of a callback that failed before this run."""
    failure = st.session_state.pop(CALLBACK_FAILURE, None)
    if failure is not None:
        _show_failure(*failure)
