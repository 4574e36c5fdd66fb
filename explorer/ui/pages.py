"""The page of each registered family, built from its Family record (title, address, icon and
the module whose ``render`` draws it)."""

from __future__ import annotations

import importlib
import sys

import streamlit as st

from explorer.registry import FAMILIES
from explorer.ui.memory import freeze_long_lived_objects


def lazy_render(module_name: str):
    """A page's render that imports its module on the first run: page modules bring torch,
    transformers and plotly (seconds), which the home page does not need."""

    def render() -> None:
        first = module_name not in sys.modules
        module = importlib.import_module(module_name)
        if first:
            freeze_long_lived_objects()  # the modules just imported stay for the process's life
        module.render()

    render.__name__ = f"render_{module_name.rsplit('.', 1)[-1]}"
    return render


def family_page(key: str) -> st.Page:
    family = FAMILIES[key]
    return st.Page(lazy_render(family.page), title=family.title, icon=family.icon, url_path=family.url_path)


EXPERIMENTS_MODULE = "explorer.ui.experiments_page"  # imported by name: it builds on the View, which links here


def experiments_page() -> st.Page:
    return st.Page(lazy_render(EXPERIMENTS_MODULE), title="Experiments", icon=":material/science:",
                   url_path="experiments")


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
