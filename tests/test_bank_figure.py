"""The encoder page's river-bank against money-bank figure (issue 21): the same word in different
sentences, the cosine similarity of its vectors at every depth, computed by the real default encoder.

Depth 0 is DistilBERT's embedding output: the word's embedding PLUS its position's (then LayerNorm).
So 'bank' starts from one vector only where it sits at the same position: the page's sentences put it
at token 5 in all three; at another position (token 9 in "He deposited the cheque at the bank.") it
already differs at depth 0."""

from __future__ import annotations

import inspect
import json

import numpy as np
import plotly.io as pio
import pytest
from streamlit.testing.v1 import AppTest

from explorer.adapters import encoder
from explorer.models.loading import load_model
from explorer.plots.common import VALIDATE_ENV
from explorer.plots.encoder import same_word_by_depth
from explorer.ui import encoder_page

DEFAULTS = {k: p.default for k, p in inspect.signature(encoder_page._same_word).parameters.items() if k != "loaded"}


@pytest.fixture(scope="module")
def loaded():
    return load_model("embedded:distilbert-grammar-mlm", device="cpu")


def _lines(loaded, sentences, word="bank") -> list[np.ndarray]:
    traces = {s: encoder.trace_text(loaded, s, with_logits=False) for s in sentences}
    return [np.asarray(line.y, dtype=float) for line in same_word_by_depth(traces, word).data]


def test_bank_starts_as_one_vector_and_the_two_senses_drift_apart(loaded):
    money, stream = _lines(loaded, DEFAULTS["sentences"])
    assert len(money) == loaded.model.config.num_hidden_layers + 1  # depth 0 and one point after each block
    assert money[0] == pytest.approx(1.0, abs=1e-6) and stream[0] == pytest.approx(1.0, abs=1e-6)
    assert money[-1] < money[0] - 0.3  # river 'bank' and money 'bank' end far apart (0.61)...
    assert stream[-1] > money[-1] + 0.2  # ...while two river banks stay alike (0.94)
    assert (money[1:] < stream[1:]).all()  # after every block


def test_at_another_position_depth_0_already_differs(loaded):
    (line,) = _lines(loaded, ("She sat on the bank of the river.", "He deposited the cheque at the bank."))
    assert 0.9 < line[0] < 0.999  # the position embedding of token 9 instead of token 5
    assert line[-1] < line[0]


def test_a_word_the_tokenizer_cuts_is_refused(loaded):
    traces = {s: encoder.trace_text(loaded, s, with_logits=False) for s in DEFAULTS["sentences"][:2]}
    with pytest.raises(ValueError, match="not one token"):
        same_word_by_depth(traces, "riverbank")


def test_the_encoder_page_draws_it_and_says_what_depth_0_is():
    at = AppTest.from_string("from explorer.ui import encoder_page\nencoder_page.render()\n", default_timeout=300).run()
    assert not at.exception and not at.error
    assert any(c.proto.id.endswith("-encoder_bank") for c in at.get("plotly_chart"))
    said = "'bank' is token 5 in every sentence, so depth 0 is one vector (cosine 1)"
    assert any(said in c.value for c in at.caption)


def test_unvalidated_figure_serialises_exactly_as_the_validated_one(loaded, monkeypatch):
    """The app builds it without Plotly's validation (dict_figure), as test_plots checks for the others."""
    traces = {s: encoder.trace_text(loaded, s, with_logits=False) for s in DEFAULTS["sentences"]}
    monkeypatch.setenv(VALIDATE_ENV, "1")
    checked = json.loads(pio.to_json(same_word_by_depth(traces, "bank"), validate=False))
    monkeypatch.setenv(VALIDATE_ENV, "0")
    assert json.loads(pio.to_json(same_word_by_depth(traces, "bank"), validate=False)) == checked
