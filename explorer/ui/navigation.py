"""The app's pages, defined once for st.navigation and for links between pages.

Page modules are imported when their page first runs, not when the app starts: they bring torch,
transformers and plotly (seconds of imports), and the home page needs none of them.
"""

from __future__ import annotations

import streamlit as st

from explorer.registry import FAMILIES
from explorer.ui import home
from explorer.ui.pages import (
    EXPERIMENTS_MODULE,
    LESSONS_MODULE,
    experiments_page,
    family_page,
    import_page,
    lazy_render,
    lessons_page,
)

OTHER_PAGES = {  # url path -> (module, title, icon)
    "compare": ("explorer.ui.compare_page", "Compare", ":material/view_column:"),
    "gallery": ("explorer.ui.gallery_page", "Gallery", ":material/photo_library:"),
}


def page_modules() -> dict[str, str]:
    """Every page with a View, by its address: the module that declares it."""
    pages = {family.url_path: family.page for family in FAMILIES.values()}
    others = {url: spec[0] for url, spec in OTHER_PAGES.items()}
    return pages | {"experiments": EXPERIMENTS_MODULE} | others | {"lessons": LESSONS_MODULE}


def all_pages() -> list:
    pages = [st.Page(home.render, title="Home", icon=":material/home:", url_path="home", default=True)]
    pages += [family_page(key) for key in FAMILIES]
    pages.append(experiments_page())
    pages += [
        st.Page(lazy_render(module, title), title=title, icon=icon, url_path=url)
        for url, (module, title, icon) in OTHER_PAGES.items()
    ]
    pages.append(lessons_page())
    return pages


def page_by_url(url: str) -> st.Page:
    """The page at this address (the lessons' "Open this view" switches to it)."""
    return {page.url_path or "home": page for page in all_pages()}[url]


def views_by_url() -> dict:
    """The View of every page that declares one, by its address (the presenter tour's 'page').
    Imports every page module: called when the tour moves, not on every run."""
    return {url: import_page(module).VIEW for url, module in page_modules().items()}
