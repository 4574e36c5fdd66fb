"""The app's pages, defined once for st.navigation and for links between pages."""

from __future__ import annotations

import streamlit as st

from explorer.registry import FAMILIES
from explorer.ui import compare_page, gallery_page, home
from explorer.ui import experiments_page as experiments
from explorer.ui.memory import freeze_long_lived_objects
from explorer.ui.pages import experiments_page, family_page, page_module
from explorer.ui.view import View

FAMILY_MODULES = {key: page_module(family) for key, family in FAMILIES.items()}
# Every page module (torch, transformers, plotly) is imported by now and stays for the process's life.
freeze_long_lived_objects()


def all_pages() -> list:
    pages = [st.Page(home.render, title="Home", icon=":material/home:", url_path="home", default=True)]
    pages += [family_page(key) for key in FAMILIES]
    pages += [
        experiments_page(),
        st.Page(compare_page.render, title="Compare", icon=":material/view_column:", url_path="compare"),
        st.Page(gallery_page.render, title="Gallery", icon=":material/photo_library:", url_path="gallery"),
    ]
    return pages


def views_by_url() -> dict[str, View]:
    """The View of every page that declares one, by its address (the presenter tour's 'page')."""
    views = {FAMILIES[key].url_path: module.VIEW for key, module in FAMILY_MODULES.items()}
    return views | {"compare": compare_page.VIEW, "gallery": gallery_page.VIEW, "experiments": experiments.VIEW}
