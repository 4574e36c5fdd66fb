"""The app's pages, defined once for st.navigation and for the presenter tour.

Page modules are imported when their page first runs, not when the app starts: they bring torch,
transformers and plotly (seconds of imports), and the home page needs none of them.
"""

from __future__ import annotations

import streamlit as st

from explorer.registry import FAMILIES
from explorer.ui import home, pages
from explorer.ui.pages import experiments_page, family_page, import_page, lazy_page, other_pages

LESSONS_MODULE = "explorer.ui.lessons_page"  # imported by name: it builds on the View and the labs (torch)


def lessons_page() -> st.Page:
    lead = "Predict, then watch the model: guided labs, alone or with a class."
    return lazy_page(LESSONS_MODULE, "Lessons", lead, ":material/school:", "lessons")


def page_modules() -> dict[str, str]:
    """Every page with a View, by its address: the module that declares it."""
    return pages.page_modules() | {"lessons": LESSONS_MODULE}


def all_pages() -> list:
    out = [st.Page(home.render, title="Home", icon=":material/home:", url_path="home", default=True)]
    out += [family_page(key) for key in FAMILIES]
    out.append(experiments_page())
    out += other_pages()
    out.append(lessons_page())
    return out


def views_by_url() -> dict:
    """The View of every page that declares one, by its address (the presenter tour's 'page').
    Imports every page module: called when the tour moves, not on every run."""
    return {url: import_page(module).VIEW for url, module in page_modules().items()}
