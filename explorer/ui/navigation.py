"""The app's pages, defined once for st.navigation and for links between pages."""

from __future__ import annotations

import streamlit as st

from explorer.ui import common, compare_page, decoder_page, encoder_page, gallery_page, home, moe_page, seq2seq_page

# Every page module (torch, transformers, plotly) is imported by now and stays for the process's life.
common.freeze_long_lived_objects()

FAMILY_PAGES = {
    "encoder": (encoder_page.render, "Encoder-only", ":material/compare_arrows:", "encoder"),
    "decoder": (decoder_page.render, "Decoder-only", ":material/edit_note:", "decoder"),
    "seq2seq": (seq2seq_page.render, "Encoder-decoder", ":material/mic:", "encoder-decoder"),
    "moe": (moe_page.render, "Mixture of Experts", ":material/call_split:", "moe"),
}


def family_page(key: str) -> st.Page:
    render, title, icon, url = FAMILY_PAGES[key]
    return st.Page(render, title=title, icon=icon, url_path=url)


def all_pages() -> list:
    return [st.Page(home.render, title="Home", icon=":material/home:", url_path="home", default=True)] + [
        family_page(k) for k in FAMILY_PAGES
    ] + [st.Page(compare_page.render, title="Compare", icon=":material/view_column:", url_path="compare"),
         st.Page(gallery_page.render, title="Gallery", icon=":material/photo_library:", url_path="gallery")]
