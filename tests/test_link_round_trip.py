"""Links restore the whole view (issue 21): on every family page, each setting the page's View declares
is moved off its default, the URL the page wrote is opened in a fresh session, and every setting (and
the text) comes back. Plus the value rules of explorer/linkvalues.py."""

import pytest
from streamlit.testing.v1 import AppTest

from explorer.linkvalues import format_value, parse_value

TIMEOUT = 300


def _attribution(prefix: str, target: int) -> dict:
    """The attribution panel's settings away from their defaults (explained, so the link reruns it)."""
    values = {"method": "Occlusion", "baseline": "padding token", "steps": 16, "words": False, "on": True}
    return {f"{prefix}_attr_{name}": value for name, value in {**values, "target": target}.items()}


CHANGES = {  # page -> (state key, value away from its default) for every setting its View declares
    "decoder_page": {
        "decoder_greedy": False,
        "decoder_temperature": 0.7,
        "decoder_top_k": 5,
        "decoder_top_p": 0.9,
        "decoder_seed": 7,
        "decoder_inspect": 3,
        "decoder_layer": 2,
        "decoder_chat": True,
        **_attribution("decoder", 1),
    },
    "seq2seq_page": {
        "s2s_greedy": False,
        "s2s_temperature": 1.3,
        "s2s_top_k": 4,
        "s2s_top_p": 0.8,
        "s2s_seed": 11,
        "s2s_inspect": 2,
        "s2s_cross_layer": 2,
        **_attribution("s2s", 2),
    },
    "encoder_page": {
        "encoder_dims": 3,
        "encoder_sim_layer": 2,
        "encoder_attn_layer": 3,
        **_attribution("encoder", 1),
    },
    "moe_page": {
        "moe_layer": 2,
        **_attribution("moe", 1),
    },
}


SPEECH_ONLY = {"s2s_source_kind"}  # drawn for Whisper only; its round trip is the same code path


def _page(module: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_string(f"from explorer.ui import {module}\n{module}.render()\n", default_timeout=TIMEOUT)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    return at


@pytest.mark.parametrize("module", list(CHANGES))
def test_every_declared_setting_round_trips_through_the_link(module):
    view = __import__(f"explorer.ui.{module}", fromlist=["VIEW"]).VIEW
    drawn = set(view.settings) - SPEECH_ONLY  # the test moves every setting the page draws for its default
    assert set(CHANGES[module]) == drawn
    at = _page(module).run()
    for key, value in CHANGES[module].items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    query = {name: values[-1] if isinstance(values, list) else values for name, values in at.query_params.items()}
    fresh = _page(module, query).run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    for key, value in CHANGES[module].items():
        assert fresh.session_state[key] == value, (key, query)
    if view.text_key:
        assert fresh.session_state[view.text_key] == at.session_state[view.text_key]


@pytest.mark.parametrize(
    "spec,raw,value",
    [
        ("bool", "1", True),
        ("bool", "0", False),
        ("float 0.1 2.0", "0.7", 0.7),
        ("int 0 10", "7", 7),
        ("choice 2|3", "3", 3),
        ("choice Example clip|Microphone", "Microphone", "Microphone"),
        ("block 1 6", "mean", "mean"),
        ("block 1 6", "4", 4),
    ],
)
def test_values_parse_and_format_back(spec, raw, value):
    assert parse_value(spec, raw) == value
    assert format_value(spec, value) == raw


@pytest.mark.parametrize(
    "spec,raw",
    [
        ("bool", "yes"),
        ("float 0.1 2.0", "5"),
        ("float 0.1 2.0", "nan"),
        ("int 0 10", "-1"),
        ("int 0 10", "1.5"),
        ("choice 2|3", "4"),
        ("block 1 6", "7"),
        ("int 0 10", "9" * 300),
    ],
)
def test_bad_link_values_are_refused(spec, raw):
    with pytest.raises(ValueError):
        parse_value(spec, raw)


def test_a_bad_link_value_is_ignored_and_the_page_opens():
    at = _page("decoder_page", {"temperature": "9", "greedy": "maybe", "layer": "999"}).run()
    assert not at.exception and not at.error
    assert at.session_state["decoder_temperature"] == 1.0 and at.session_state["decoder_greedy"] is True
