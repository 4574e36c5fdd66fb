"""Remove cross-attention: the decoder of an encoder-decoder may not look at chosen source tokens; its
output and each output token's log-probability with and without them."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.adapters import family, interventions
from explorer.adapters.common import display_tokens
from explorer.text import plain
from explorer.ui.experiments.common import (
    HOW_INTERVENTION,
    Tool,
    ask_for_text_model,
    keep,
    restore,
    show_result,
    text_ids,
)
from explorer.ui.view import cached


@cached(max_entries=32)
def translation(loaded, source: tuple, span: tuple | None):
    base = interventions.greedy_with_span_removed(loaded, np.asarray(source), None)
    modified = interventions.greedy_with_span_removed(loaded, np.asarray(source), span)
    scored = interventions.cross_attention_removal(loaded, np.asarray(source), base, span)
    return base, modified, scored


def cross_body(loaded) -> None:
    if loaded.arch.audio:
        ask_for_text_model()
        return
    ids = text_ids(loaded)
    if ids is None:
        return
    tokens = list(display_tokens(loaded.tokenizer, ids))

    def fits(value) -> bool:  # a span of this text's tokens
        return isinstance(value, (tuple, list)) and len(value) == 2 and 0 <= value[0] <= value[1] < len(ids)

    restore("exp_span", fits)
    if "exp_span" in st.session_state and not fits(st.session_state["exp_span"]):
        del st.session_state["exp_span"]  # a span of a longer text: the slider starts again from its default
    span = st.select_slider(
        "Source tokens the decoder may not look at",
        options=list(range(len(ids))),
        value=(0, 0),
        key="exp_span",
        format_func=lambda i: f"{i}: {tokens[i]}",
    )
    keep("exp_span", tuple(span))
    start, stop = span[0], span[1] + 1
    if stop - start >= len(ids):
        st.warning(f"Leave at least one source token visible: at most {len(ids) - 1} of the {len(ids)} can be hidden.")
        return
    base, modified, scored = translation(loaded, tuple(ids.tolist()), (start, stop))
    decode = loaded.tokenizer.decode
    st.markdown(
        f"Unmodified output: **{plain(decode(base, skip_special_tokens=True))}**  \n"
        f"Without cross-attention to *{plain(' '.join(tokens[start:stop]))}*: "
        f"**{plain(decode(modified, skip_special_tokens=True))}**"
    )
    show_result(
        loaded,
        scored,
        "exp_cross_fig",
        "The decoder re-reads the unmodified output token by token; the lines "
        "are each output token's log-probability with and without the removed source tokens (greedy, the "
        "encoder's pass unchanged). " + HOW_INTERVENTION,
    )


TOOL = Tool(family.CROSS_ATTENTION, "Remove cross-attention", cross_body)
