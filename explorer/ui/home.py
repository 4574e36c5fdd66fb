"""Start page: what the families are, and where to go."""

from __future__ import annotations

import streamlit as st

from explorer.catalogue import load_catalogue
from explorer.registry import FAMILIES
from explorer.ui.pages import family_page


def render() -> None:
    st.title("LLM architecture explorer")
    st.markdown(
        "Watch small, real language models work. Pick a family on the left, type some text, and every figure is "
        "computed live by a real model on this computer's "
        "CPU (or GPU). The defaults are embedded and work offline; with internet, any Hugging Face model of a "
        "supported architecture loads too."
    )
    catalogue = load_catalogue()
    columns = st.columns(2)
    for n, family in enumerate(FAMILIES.values()):
        entry = catalogue[family.key].find(catalogue[family.key].default)
        with columns[n % 2].container(border=True):
            st.page_link(family_page(family.key), label=f"**{family.title}**")
            st.markdown(family.blurb)
            st.caption(f"Default model: {entry.label}. Trained by {entry.trained_by}.")
    st.caption(
        "Attention weights show where information flows, not why a model decided. Every number on these pages "
        "comes from the model's own forward pass."
    )
