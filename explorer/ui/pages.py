"""The page of each registered family, built from its Family record (title, address, icon and
the module whose ``render`` draws it), the experiments and the other pages with a View: each module
imported by its name on the page's first run. The lessons page is named in explorer.ui.navigation (it
reads the Views of these pages); the doors between pages (explorer.ui.doors) name addresses only."""

from __future__ import annotations

import importlib
import importlib.util
import sys

import streamlit as st

from explorer.locks import BUILD_LOCK
from explorer.registry import FAMILIES
from explorer.ui.memory import freeze_long_lived_objects

# Libraries that other libraries import on first use, from whichever thread needs them first (plotly
# and streamlit import pandas, pyarrow and narwhals when a figure or table is first built; the PCA and
# the speech page import parts of scipy). Their imports are circular inside, and two threads importing
# them at once give one of them a half-made module ("partially initialized module 'pandas' has no
# attribute 'Series'"): so the first page import brings them in, under the same lock.
WARM_IMPORTS = (
    "pandas",
    "pyarrow",
    "narwhals",
    "plotly.graph_objects",
    "plotly.io",
    "scipy.sparse.linalg",
    "scipy.signal",
)


def import_page(module_name: str):
    """A page module, imported on first use under the build lock (with the libraries above)."""
    module = sys.modules.get(module_name)
    if module is not None and not getattr(module.__spec__, "_initializing", False):
        return module
    with BUILD_LOCK:  # two first imports at once can see each other's half-made modules (explorer/locks.py)
        for name in WARM_IMPORTS:
            if name not in sys.modules and importlib.util.find_spec(name.split(".")[0]) is not None:
                importlib.import_module(name)
        module = importlib.import_module(module_name)
        freeze_long_lived_objects()  # the modules just imported stay for the process's life
    return module


def lazy_render(module_name: str, title: str = "", lead: str = ""):
    """A page's render that imports its module on the first run: page modules bring torch,
    transformers and plotly (seconds), which the home page does not need. Until they are in, the
    page shows its title, its lead and a spinner at once, instead of a blank main area."""

    def render() -> None:
        module = sys.modules.get(module_name)
        if module is not None and not getattr(module.__spec__, "_initializing", False):
            module.render()
            return
        waiting = st.empty()
        with waiting.container():
            if title:
                st.title(title)
            if lead:
                st.caption(lead)
            with st.spinner("Loading the model libraries for this page's first visit (a few seconds, once)…"):
                module = import_page(module_name)
        waiting.empty()
        module.render()

    render.__name__ = f"render_{module_name.rsplit('.', 1)[-1]}"
    return render


def family_page(key: str) -> st.Page:
    family = FAMILIES[key]
    return st.Page(
        lazy_render(family.page, family.title, f"{family.title}: {family.blurb}"),
        title=family.title,
        icon=family.icon,
        url_path=family.url_path,
    )


EXPERIMENTS_MODULE = "explorer.ui.experiments"  # imported by name: it builds on the View
OTHER_PAGES = {  # url path -> (module, title, icon)
    "compare": ("explorer.ui.compare_page", "Compare", ":material/view_column:"),
    "gallery": ("explorer.ui.gallery_page", "Gallery", ":material/photo_library:"),
}


def lazy_page(module: str, title: str, lead: str, icon: str, url_path: str) -> st.Page:
    """A page whose module is imported on its first run (title and lead on screen before the heavy imports)."""
    return st.Page(lazy_render(module, title, lead), title=title, icon=icon, url_path=url_path)


def experiments_page() -> st.Page:
    lead = "Change the model, or test a published claim on it."
    return lazy_page(EXPERIMENTS_MODULE, "Experiments", lead, ":material/science:", "experiments")


def other_pages() -> list[st.Page]:
    return [st.Page(lazy_render(module, title), title=title, icon=icon, url_path=url)
            for url, (module, title, icon) in OTHER_PAGES.items()]  # fmt: skip


def page_modules() -> dict[str, str]:
    """Every page with a View that a lesson may open (all but the lessons' own), by its address: the module
    that declares it."""
    pages = {family.url_path: family.page for family in FAMILIES.values()}
    others = {url: spec[0] for url, spec in OTHER_PAGES.items()}
    return pages | {"experiments": EXPERIMENTS_MODULE} | others


def views_by_url() -> dict:
    """The View of each of those pages, by its address (a lesson's step names its page so). Imports every
    page module: called when a lesson moves or opens a view, not on every run."""
    return {url: import_page(module).VIEW for url, module in page_modules().items()}
