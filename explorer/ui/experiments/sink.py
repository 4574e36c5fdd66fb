"""Remove the attention sink: every attention row's weight on the first token removed and the rest
renormalised, in every layer and head at once."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.adapters import family, interventions
from explorer.adapters.common import display_token
from explorer.text import plain
from explorer.ui.experiments.common import HOW_INTERVENTION, Tool, show_result, text_ids
from explorer.ui.view import cached


@cached(max_entries=32)
def sink_removal(loaded, ids: tuple):
    return interventions.sink_removal(loaded, np.asarray(ids))


def sink_body(loaded) -> None:
    ids = text_ids(loaded)
    if ids is None:
        return
    first = display_token(loaded.tokenizer, int(ids[0]))
    st.markdown(
        f"Every attention row's weight on the first token (**{plain(first)}**) is removed and the rest "
        "renormalised, in every layer and head at once (a custom attention mask). Many models park attention there "
        "when no other token is relevant (an *attention sink*, Xiao et al. 2023): without it they must put that "
        "weight somewhere else."
    )
    show_result(loaded, sink_removal(loaded, tuple(ids.tolist())), "exp_sink_fig", HOW_INTERVENTION)


TOOL = Tool(family.SINK, "Remove the attention sink", sink_body)
