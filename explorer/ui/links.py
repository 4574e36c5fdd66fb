"""Shared links: the URL carries a view's state (?text=, ?model=, ?tokens=) and a fresh session
opened on it restores that state once. The View declares which state keys take part."""

from __future__ import annotations

import streamlit as st

URL_VALUE_LIMIT = 2000  # characters of one value a shared link carries; browsers and proxies cut long URLs


def _flag(state_key: str) -> str:
    return f"_restored_{state_key}"


def take_once(param: str, state_key: str) -> str | None:
    """Once per session and state key: the value a shared link carries for ``param`` (None when
    the link does not carry it, or when this key was restored, or preset, before)."""
    if st.session_state.get(_flag(state_key)):
        return None
    st.session_state[_flag(state_key)] = True
    return st.query_params.get(param)


def restore_from_url(param: str, state_key: str) -> str | None:
    """Once per session: a shared link's query parameter becomes the widget's state.
    Returns the value restored (None when the link did not carry it)."""
    value = take_once(param, state_key)
    if value is not None:
        st.session_state[state_key] = value
    return value


def preset(state_key: str, value) -> None:
    """Set a state key as if a link had restored it: a stale URL no longer overrides it."""
    st.session_state[state_key] = value
    st.session_state[_flag(state_key)] = True


def publish_to_url(**values: str) -> bool:
    """Keep the URL in step with the state, so copying it shares this exact view. A value too
    long for a link is taken out of the URL (a stale one would restore another view); returns
    False when that happened."""
    fits = True
    for param, value in values.items():
        if value is None:
            continue
        if len(value) > URL_VALUE_LIMIT:
            fits = False
            if param in st.query_params:
                del st.query_params[param]
        elif st.query_params.get(param) != value:
            st.query_params[param] = value
    return fits
