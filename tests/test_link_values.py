"""Every value a link carries is checked before a model sees it (issue 26): generated token ids
against the vocabulary and the length limit, with one sentence on the page instead of an error."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from explorer.session import parse_token_ids
from explorer.text import InputError, code_span, plain

TIMEOUT = 300


def test_good_ids_pass_through():
    assert parse_token_ids("1, 2,3,", vocab_size=10, limit=5) == [1, 2, 3]
    assert parse_token_ids("", vocab_size=10, limit=5) == []


@pytest.mark.parametrize("raw", ["-1", "99999999", "9" * 40, "1,10", "a", "1.5", "1e3", "٣", "1,2,3,4,5,6", "0x1"])
def test_bad_ids_are_one_sentence(raw):
    with pytest.raises(InputError) as refusal:
        parse_token_ids(raw, vocab_size=10, limit=5)
    assert "from 0 to 9" in str(refusal.value) and "\n" not in str(refusal.value)


@given(st.text(max_size=60))
def test_any_link_value_is_ids_in_range_or_a_refusal(raw):
    try:
        ids = parse_token_ids(raw, vocab_size=100, limit=8)
    except InputError:
        return
    assert len(ids) <= 8 and all(0 <= i < 100 for i in ids)


@given(st.text(max_size=80))
def test_plain_text_has_no_markdown_left(raw):
    escaped = plain(raw)
    for ch in "[]()<>!`*_:$":
        assert escaped.count(ch) == escaped.count("\\" + ch) or ch not in raw.replace("\\", "")


def test_code_span_cannot_be_closed_from_inside():
    assert code_span("bank") == "`bank`"
    assert code_span("a``b") == "```a``b```"
    assert code_span("`x") == "`` `x ``"


def _page(module: str) -> AppTest:
    return AppTest.from_string(f"from explorer.ui import {module}\n{module}.render()\n", default_timeout=TIMEOUT)


@pytest.mark.parametrize(
    "module,param,value",
    [
        ("decoder_page", "tokens", "-1"),
        ("decoder_page", "tokens", "99999999"),
        ("decoder_page", "tokens", "49151,49152"),
        ("decoder_page", "tokens", "9" * 40),
        ("seq2seq_page", "s2s_tokens", "7999,8000"),
    ],
)
def test_a_link_with_impossible_tokens_opens_the_page_with_a_sentence(module, param, value):
    at = _page(module)
    at.query_params[param] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("generated tokens were not used" in w.value for w in at.warning)
    generated = at.session_state["decoder_generated" if module == "decoder_page" else "s2s_generated"]
    assert len(generated) > 0  # the page generated from the prompt instead
