"""Start page: what the four families are, and where to go."""

from __future__ import annotations

import streamlit as st

from explorer.catalogue import load_catalogue


def render() -> None:
    st.title("LLM architecture explorer")
    st.markdown(
        "Watch small, real language models work. Pick a family on the left, type some text, and every figure is "
        "computed live by a real model on this computer's "
        "CPU (or GPU). The defaults are embedded and work offline; with internet, any Hugging Face model of a supported "
        "architecture loads too."
    )
    families = load_catalogue()
    blurbs = {
        "encoder": "reads the whole text at once, in both directions: contextual vectors, attention, masked words.",
        "decoder": "writes one token at a time, each seeing only the past: next-token probabilities, sampling, causal attention.",
        "seq2seq": "an encoder reads the input once, then a decoder writes while cross-attending to it (speech to text with Whisper).",
        "moe": "a router sends each token to a few expert feed-forward networks: routes, gate weights, expert load.",
    }
    from explorer.ui.navigation import family_page

    columns = st.columns(2)
    for n, (key, family) in enumerate(families.items()):
        entry = family.find(family.default)
        with columns[n % 2].container(border=True):
            st.page_link(family_page(key), label=f"**{family.title}**")
            st.markdown(blurbs[key])
            st.caption(f"Default model: {entry.label}. Trained by {entry.trained_by}.")
    st.caption("Attention weights show where information flows, not why a model decided. Every number on these pages "
               "comes from the model's own forward pass.")
