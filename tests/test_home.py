"""The home page's way in (issue 21): a picture per family, the tour's start, a path for a student alone."""

import xml.etree.ElementTree as ElementTree

from streamlit.testing.v1 import AppTest

from explorer.diagrams import picture
from explorer.registry import FAMILIES


def test_every_family_has_a_well_formed_picture_that_names_itself():
    for key in FAMILIES:
        svg = picture(key)
        root = ElementTree.fromstring(svg)  # well-formed
        assert root.get("aria-label") and FAMILIES[key].title.split("-")[0].lower() in root.get("aria-label").lower()


def test_home_starts_the_tour_and_lists_a_path():
    at = AppTest.from_file("../app.py", default_timeout=300).run()
    assert not at.exception
    assert any(b.label == "Start the presenter tour" for b in at.button)
    assert any("path in five stops" in s.value for s in at.subheader)
    at.button[[b.label for b in at.button].index("Start the presenter tour")].click().run()
    assert not at.exception
    assert at.session_state["presenter_on"] is True
    assert at.session_state["presenter_index"] == 0
