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
