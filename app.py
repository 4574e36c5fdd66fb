"""Streamlit entry point: `streamlit run app.py`."""

import logging
import os

# Before torch loads OpenMP: its threads sleep instead of spinning while they wait, so two threads of one
# visitor's forward do not burn the cores other visitors (or replicas) need (measured on the decoder's card set
# with other work on the 2 cores: 30-43 s spinning, 5-12 s passive; 7-9 s with one thread).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

from explorer.ui.boundary import run_safely, show_callback_failure
from explorer.ui.common import classroom_switch
from explorer.ui.memory import page_slot
from explorer.ui.navigation import all_pages, views_by_url
from explorer.ui.presenter import presenter_sidebar

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="LLM architecture explorer", page_icon=":material/hub:", layout="wide")
pages = all_pages()
page = st.navigation(pages)
classroom_switch()
presenter_sidebar({p.url_path or "home": p for p in pages}, views_by_url)  # called when the tour moves
show_callback_failure()  # a failed sidebar control (tour, switches); pages show theirs in View.start
with page_slot():
    run_safely(page.run)
