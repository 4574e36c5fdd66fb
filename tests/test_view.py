"""The decoding session without Streamlit, and the declarations the UI layer is built from: the
Family records, each page's View, and the presenter tour's keys checked against those Views."""

import importlib
from types import SimpleNamespace

import numpy as np
import pytest

from explorer.decoding import SamplingSettings, softmax
from explorer.registry import ARCHITECTURES, FAMILIES
from explorer.session import DecodingSession, history, kept_mask
from explorer.ui.navigation import views_by_url
from explorer.ui.presenter import tour
from explorer.ui.view import View

VOCAB = 7
EOS = 6


def counting_step(context: tuple[int, ...]):
    """A fake model: after token t it prefers t + 1 (so greedy counts up to EOS)."""
    logits = np.full(VOCAB, -5.0, dtype=np.float32)  # [V]
    logits[min((context[-1] + 1) if context else 0, VOCAB - 1)] = 5.0
    return SimpleNamespace(context_ids=np.asarray(context), logits=logits, probs=softmax(logits))


def session(max_tokens: int = 128, start=(2,)) -> DecodingSession:
    return DecodingSession(
        np.asarray(start, dtype=np.int64),
        step_fn=counting_step,
        settings_for=lambda i: SamplingSettings(),
        eos_ids={EOS},
        max_tokens=max_tokens,
    )


def test_advance_back_force_reset():
    s = session()
    s.advance(2)
    assert s.generated == [3, 4]
    s.back()
    assert s.generated == [3]
    s.force(0)
    assert s.generated == [3, 0]
    s.advance()
    assert s.generated == [3, 0, 1]
    s.reset()
    assert s.generated == []
    s.back()  # nothing to remove: no error
    assert s.generated == []


def test_decoding_stops_at_eos_and_at_the_limit():
    s = session()
    s.advance(100)
    assert s.generated == [3, 4, 5, 6] and s.finished() and s.ended_by_model()
    s.force(1)  # finished: forcing is ignored
    assert s.generated == [3, 4, 5, 6]
    limited = session(max_tokens=2)
    limited.advance(10)
    assert limited.generated == [3, 4] and limited.finished() and not limited.ended_by_model()


def test_the_session_mutates_the_list_it_was_given():
    tokens: list[int] = []
    s = session()
    s.generated = tokens  # the UI hands in the list kept in its session state
    s.advance(1)
    assert tokens == [3]


def test_snapshot_has_one_step_more_than_tokens():
    s = session()
    s.advance(3)
    result = s.snapshot()
    assert len(result.steps) == len(result.settings) == len(result.generated) + 1 == 4
    assert [tuple(step.context_ids) for step in result.steps] == [(2,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]
    entropies, chosen = history(result)
    assert len(entropies) == len(chosen) == 3 and all(p > 0.99 for p in chosen)
    assert kept_mask(result.steps[0], result.settings[0]).all()


def test_a_finished_session_has_no_step_after_its_last_token():
    limited = session(max_tokens=2)
    limited.advance(10)
    result = limited.snapshot()
    assert limited.finished() and len(result.steps) == len(result.generated) == len(result.settings) == 2
    assert [tuple(step.context_ids) for step in result.steps] == [(2,), (2, 3)]


def test_every_family_has_its_adapter_and_a_page_with_a_view():
    assert set(FAMILIES) == {a.family for a in ARCHITECTURES.values()}
    assert len({f.url_path for f in FAMILIES.values()}) == len(FAMILIES)
    for key, module in ((key, importlib.import_module(family.page)) for key, family in FAMILIES.items()):
        assert callable(module.render)
        assert module.VIEW.family is FAMILIES[key]
        assert module.VIEW.declares(module.VIEW.text_key)
        __import__(FAMILIES[key].adapter)


def test_every_tour_step_goes_to_a_page_and_sets_a_key_that_page_declares():
    views = views_by_url()
    for step in tour():
        assert step["page"] in views or step["page"] == "home", step
        if step.get("text_key"):
            assert views[step["page"]].declares(step["text_key"]), step
        for key in step.get("state", {}):
            assert views[step["page"]].declares(key), (step, key)


def test_a_view_refuses_a_key_it_does_not_declare():
    view = View.of_family("encoder", text_key="encoder_text")
    with pytest.raises(KeyError, match="encoder_input"):
        view.preset("encoder_input", "renamed?")
    assert view.param_of("encoder_text") == "text" and view.param_of("encoder_model_custom") == "model"
