"""Streamlit entry point: `streamlit run app.py`."""

import streamlit as st

from explorer.ui import decoder_page, encoder_page, home, moe_page, seq2seq_page

st.set_page_config(page_title="LLM architecture explorer", page_icon=":material/hub:", layout="wide")

pages = [
    st.Page(home.render, title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page(encoder_page.render, title="Encoder-only", icon=":material/compare_arrows:", url_path="encoder"),
    st.Page(decoder_page.render, title="Decoder-only", icon=":material/edit_note:", url_path="decoder"),
    st.Page(seq2seq_page.render, title="Encoder-decoder", icon=":material/mic:", url_path="encoder-decoder"),
    st.Page(moe_page.render, title="Mixture of Experts", icon=":material/call_split:", url_path="moe"),
]
st.navigation(pages).run()
