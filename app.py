"""Streamlit entry point: `streamlit run app.py`."""

import streamlit as st

from explorer.ui.common import classroom_switch
from explorer.ui.navigation import all_pages

st.set_page_config(page_title="LLM architecture explorer", page_icon=":material/hub:", layout="wide")
page = st.navigation(all_pages())
classroom_switch()
page.run()
