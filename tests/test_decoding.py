"""Decoding rules, pure numpy."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as hst

from explorer.decoding import (
    SamplingSettings,
    choose_token,
    drawn_distribution,
    entropy_bits,
    filtered_distribution,
    log_softmax,
    rules_text,
    softmax,
)

LOGITS = np.log(np.array([0.5, 0.2, 0.15, 0.1, 0.05], dtype=np.float32))


def test_softmax_matches_definition():
    p = softmax(LOGITS)
    assert np.allclose(p, [0.5, 0.2, 0.15, 0.1, 0.05], atol=1e-6)


def test_log_softmax_matches_torch_and_survives_large_logits():
    import torch

    logits = np.random.default_rng(0).normal(size=(3, 7)) * 5
    assert np.allclose(log_softmax(logits), torch.log_softmax(torch.tensor(logits), -1).numpy(), atol=1e-12)
    assert log_softmax(logits).dtype == np.float64 and log_softmax(LOGITS).shape == LOGITS.shape
    assert np.allclose(log_softmax(np.array([1000.0, 1000.0])), np.log(0.5))


def test_greedy_takes_argmax_and_ignores_sampling_knobs():
    assert choose_token(LOGITS, SamplingSettings(greedy=True, top_k=2, temperature=5.0), 0) == 0


def test_top_k_keeps_k_tokens():
    probs, kept = filtered_distribution(LOGITS, SamplingSettings(greedy=False, top_k=2))
    assert kept.tolist() == [True, True, False, False, False]
    assert np.allclose(probs[:2], [0.5 / 0.7, 0.2 / 0.7], atol=1e-6)
    assert probs[2:].sum() == 0


def test_top_p_keeps_smallest_prefix_reaching_p():
    _, kept = filtered_distribution(LOGITS, SamplingSettings(greedy=False, top_p=0.65))
    assert kept.tolist() == [True, True, False, False, False]
    _, kept = filtered_distribution(LOGITS, SamplingSettings(greedy=False, top_p=0.75))
    assert kept.tolist() == [True, True, True, False, False]
    _, kept = filtered_distribution(LOGITS, SamplingSettings(greedy=False, top_p=0.05))
    assert kept.sum() == 1  # always at least one token


def test_temperature_sharpens_and_flattens():
    cold, _ = filtered_distribution(LOGITS, SamplingSettings(greedy=False, temperature=0.5))
    hot, _ = filtered_distribution(LOGITS, SamplingSettings(greedy=False, temperature=2.0))
    assert cold[0] > 0.5 > hot[0]


def test_suppressed_ids_are_never_chosen():
    settings = SamplingSettings(greedy=True, suppressed_ids=(0,))
    assert choose_token(LOGITS, settings, 0) == 1
    sampled = {
        choose_token(LOGITS, SamplingSettings(greedy=False, seed=s, suppressed_ids=(0, 1)), 0) for s in range(50)
    }
    assert sampled <= {2, 3, 4} and len(sampled) > 1


def test_sampling_is_reproducible_per_seed_and_step():
    settings = SamplingSettings(greedy=False, seed=7)
    a = [choose_token(LOGITS, settings, i) for i in range(20)]
    b = [choose_token(LOGITS, settings, i) for i in range(20)]
    assert a == b
    assert a != [choose_token(LOGITS, SamplingSettings(greedy=False, seed=8), i) for i in range(20)]


def test_sampling_frequencies_follow_the_distribution():
    settings = SamplingSettings(greedy=False, seed=1)
    draws = np.bincount(
        [choose_token(LOGITS, SamplingSettings(greedy=False, seed=s), 0) for s in range(3000)], minlength=5
    )
    assert np.allclose(draws / draws.sum(), [0.5, 0.2, 0.15, 0.1, 0.05], atol=0.03)
    assert settings.seed == 1


def test_entropy_bits():
    assert entropy_bits(np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert entropy_bits(np.array([1.0, 0.0])) == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(top_p=0), dict(top_p=1.5), dict(top_k=-1)])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        SamplingSettings(**kwargs)


# The distribution Step draws from (the decoder page's blue bars): explorer.decoding.drawn_distribution


def test_drawn_distribution_under_greedy_is_all_on_the_token_greedy_takes():
    for rules in (
        SamplingSettings(),
        SamplingSettings(greedy=True, temperature=0.1, top_k=2),
        SamplingSettings(greedy=True, suppressed_ids=(0,)),
    ):
        drawn, _ = drawn_distribution(LOGITS, rules)
        assert drawn.sum() == 1.0 and drawn[choose_token(LOGITS, rules, 0)] == 1.0


def test_drawn_distribution_when_sampling_is_the_filtered_one():
    rules = SamplingSettings(greedy=False, temperature=0.7, top_k=3, top_p=0.9)
    drawn, kept = drawn_distribution(LOGITS, rules)
    probs, kept_filtered = filtered_distribution(LOGITS, rules)
    assert np.array_equal(drawn, probs) and np.array_equal(kept, kept_filtered)


def test_rules_text_names_every_rule():
    assert rules_text(SamplingSettings()) == "greedy (always the most likely token)"
    assert rules_text(SamplingSettings(greedy=False, temperature=0.3)) == (
        "temperature T=0.3, top-k=0 (off), top-p=1 (off)"
    )
    assert rules_text(SamplingSettings(greedy=False, temperature=1.8, top_k=5, top_p=0.9)) == (
        "temperature T=1.8, top-k=5, top-p=0.9"
    )


RULES = hst.builds(
    SamplingSettings,
    greedy=hst.booleans(),
    temperature=hst.floats(0.05, 3.0),
    top_k=hst.sampled_from([0, 1, 2, 5, 40]) | hst.integers(0, 200),
    top_p=hst.sampled_from([0.05, 0.5, 0.9, 1.0]) | hst.floats(0.01, 1.0),
    seed=hst.integers(0, 2**31 - 1),
)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    rules=RULES,
    vocab=hst.integers(2, 300),
    scale=hst.floats(0.1, 30.0),
    seed=hst.integers(0, 2**32 - 1),
    step_index=hst.integers(0, 127),
)
def test_drawn_distribution_sums_to_one_over_kept_tokens_and_is_zero_elsewhere(rules, vocab, scale, seed, step_index):
    logits = (np.random.default_rng(seed).standard_normal(vocab) * scale).astype(np.float32)  # [V]
    drawn, kept = drawn_distribution(logits, rules)
    assert drawn.shape == kept.shape == (vocab,) and drawn.dtype == np.float64
    assert abs(drawn[kept].sum() - 1.0) < 1e-12 and drawn[~kept].sum() == 0 and (drawn >= 0).all()
    assert kept[choose_token(logits, rules, step_index)]  # what Step appends is a token it can draw


@pytest.mark.parametrize("vocab, scale", [(5, 1.0), (1000, 3.0), (49_152, 2.5)])
def test_temperature_sharpens_below_one_and_flattens_above(vocab, scale):
    logits = (np.random.default_rng(vocab).standard_normal(vocab) * scale).astype(np.float32)  # [V]
    top = [drawn_distribution(logits, SamplingSettings(greedy=False, temperature=t))[0].max() for t in (0.1, 1.0, 2.0)]
    assert top[0] > top[1] > top[2]
