"""What every tool of the Experiments page shares: the page's View, the text it reads, the settings
kept across runs that do not draw them, an intervention's result beside the unmodified run, and
``Tool``, what each tool module declares (explorer/ui/experiments/__init__.py assembles them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from explorer.adapters import interventions
from explorer.adapters.common import display_token, display_tokens, tokenize
from explorer.adapters.lookup import adapter_for, adapter_of
from explorer.catalogue import TRANSLATOR_ID, load_catalogue
from explorer.plots import experiments as plots
from explorer.registry import FAMILIES
from explorer.ui import picker
from explorer.ui.boundary import guarded
from explorer.ui.doors import EXPERIMENTS_FAMILY, EXPERIMENTS_TOOL
from explorer.ui.view import View

VIEW = View(
    "Experiments view",
    text_key="exp_text",
    keys={
        "family": EXPERIMENTS_FAMILY,
        "tool": EXPERIMENTS_TOOL,
        "text": "exp_text",
        "heads": "exp_heads",
        "pair": "exp_pair",
        "moe": "exp_moe_action",
        "attr_on": "exp_attr_on",
        "attr_method": "exp_attr_method",
    },
    settings={"exp_attr_on": "bool", "exp_attr_method": "choice Gradient × input|Integrated gradients|Occlusion"},
)


@dataclass(frozen=True)
class Tool:
    """One experiment of the page. ``slug``: its name in the URL (``?tool=``), in the presenter tour and the
    lessons' state, and among a family adapter's ``experiments`` (explorer.adapters.family.EXPERIMENTS);
    ``label``: its name on screen; ``body``: draws it on the loaded model."""

    slug: str
    label: str
    body: Callable

    def families(self) -> list[str]:
        """The registered families that offer this tool (their adapter's ``experiments``)."""
        return [key for key in FAMILIES if self.slug in adapter_of(key).experiments]


EXAMPLES = [
    "The cat sat on the mat. The cat sat on the mat.",
    "My sister lives in a small town near the sea.",
    "When Mary and John went to the shop, John gave a book to Mary.",
    "Paris is the capital of France, and Rome is the capital of Italy.",
]


MAX_TOKENS = 96  # interventions run the model twice or more per view: keep the text short


# The last value of every setting. Streamlit drops a widget's state after a run that does not draw it
# (an empty or too-short text stops a tool before its controls; another tool draws others): the page
# puts the value back from here when the widget is drawn again.
SAVED = "_exp_saved_settings"


def restore(key: str, valid: Callable[[object], bool] = lambda value: True) -> None:
    """Before drawing setting ``key``'s widget: its last value, if Streamlit dropped it since and it
    is still ``valid`` (one of the widget's options)."""
    saved = st.session_state.setdefault(SAVED, {})
    if key not in st.session_state and key in saved and valid(saved[key]):
        st.session_state[key] = saved[key]


def keep(key: str, value) -> None:
    """After drawing setting ``key``'s widget: remember its value for the runs that do not draw it."""
    st.session_state.setdefault(SAVED, {})[key] = value


def refused(check: Callable[[], object]) -> bool:
    """Run an intervention's check of its settings; when it refuses them, show its sentence (what is
    possible) as a warning instead of a result, and say so."""
    try:
        check()
    except interventions.InterventionRefused as refusal:
        st.warning(str(refusal))
        return True
    return False


def text_ids(loaded) -> np.ndarray | None:
    key = VIEW.text_key
    restore(key, lambda value: isinstance(value, str))
    with VIEW.side():
        cleaned = VIEW.text_input("Text the model reads", EXAMPLES[0], EXAMPLES, height=70)
    keep(key, st.session_state.get(key))
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


def ask_for_text_model() -> None:
    st.info("This experiment needs a text encoder-decoder; the model chosen for this family reads speech.")
    if any(m.id == TRANSLATOR_ID for m in load_catalogue()["seq2seq"].models):
        st.button(
            "Use the English → Portuguese translator", key="exp_use_translator", on_click=guarded(_use_translator)
        )


def _use_translator() -> None:
    picker.choose_model("seq2seq", TRANSLATOR_ID)
