"""Streamlit entry point: `streamlit run app.py`."""

import streamlit as st

from explorer.ui.common import classroom_switch, page_slot
from explorer.ui.navigation import all_pages
from explorer.ui.presenter import presenter_sidebar

st.set_page_config(page_title="LLM architecture explorer", page_icon=":material/hub:", layout="wide")
pages = all_pages()
page = st.navigation(pages)
classroom_switch()
presenter_sidebar({p.url_path or "home": p for p in pages})
with page_slot():
    page.run()
