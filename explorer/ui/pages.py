"""The page of each registered family, built from its Family record (title, address, icon and
the module whose ``render`` draws it)."""

from __future__ import annotations

import importlib
from types import ModuleType

import streamlit as st

from explorer.registry import FAMILIES, Family


def page_module(family: Family) -> ModuleType:
    # By name: the registry below the UI names its page bodies without importing them.
    return importlib.import_module(family.page)


def family_page(key: str) -> st.Page:
    family = FAMILIES[key]
    return st.Page(page_module(family).render, title=family.title, icon=family.icon, url_path=family.url_path)


EXPERIMENTS_MODULE = "explorer.ui.experiments_page"  # imported by name: it builds on the View, which links here


def experiments_page() -> st.Page:
    module = importlib.import_module(EXPERIMENTS_MODULE)
    return st.Page(module.render, title="Experiments", icon=":material/science:", url_path="experiments")


def experiments_button(family_key: str) -> None:
    """One click from a family page to the experiments on its model."""
    if st.button(
        "Experiments on this model",
        key="open_experiments",
        icon=":material/science:",
        help="Switch heads off, patch activations, change the routing, or measure published findings",
    ):
        importlib.import_module(EXPERIMENTS_MODULE).open_experiments(family_key)
        st.switch_page(experiments_page())
