"""Input cleaning and the model catalogue (pure Python)."""

import json

import pytest

from explorer.catalogue import ASSETS, FAMILIES, load_catalogue
from explorer.registry import ARCHITECTURES
from explorer.text import MAX_INPUT_CHARS, InputError, clean_user_text


@pytest.mark.parametrize("raw", ["", "   ", "\n\t", None, "\x00\x01"])
def test_empty_input_is_refused_with_a_message(raw):
    with pytest.raises(InputError, match="empty"):
        clean_user_text(raw)


def test_huge_input_is_cut_with_a_notice():
    cleaned = clean_user_text("a" * 20_000)
    assert len(cleaned.text) == MAX_INPUT_CHARS
    assert "20,000" in cleaned.notices[0]


def test_control_characters_removed_but_newlines_kept():
    cleaned = clean_user_text("a\x07b\nc\td\x1b")
    assert cleaned.text == "ab\nc\td"
    assert "2 control" in cleaned.notices[0]


def test_combining_marks_are_composed():
    assert clean_user_text("e\u0301").text == "\u00e9"


def test_markup_is_kept_as_text():
    text = "<script>alert(1)</script> **bold**"
    assert clean_user_text(text).text == text


def test_catalogue_lists_every_family_with_an_embedded_default():
    catalogue = load_catalogue()
    assert tuple(catalogue) == FAMILIES
    for family in catalogue.values():
        default = family.find(family.default)
        assert default.embedded and default.trained_by and default.license
        assert len(family.models) >= 4


def test_catalogue_is_a_data_file():
    raw = json.loads((ASSETS / "catalogue.json").read_text())
    ids = [m["id"] for f in raw["families"].values() for m in f["models"]]
    for wanted in [
        "bert-base-uncased",
        "gpt2",
        "t5-small",
        "openai/whisper-tiny",
        "google/switch-base-8",
        "mistralai/Mixtral-8x7B-v0.1",
        "allenai/OLMoE-1B-7B-0125",
        "Qwen/Qwen1.5-MoE-A2.7B",
    ]:
        assert wanted in ids


def test_registry_covers_the_four_families():
    assert {a.family for a in ARCHITECTURES.values()} == set(FAMILIES)
