"""Decoding rules, pure numpy."""

import numpy as np
import pytest

from explorer.decoding import SamplingSettings, choose_token, entropy_bits, filtered_distribution, softmax

LOGITS = np.log(np.array([0.5, 0.2, 0.15, 0.1, 0.05], dtype=np.float32))


def test_softmax_matches_definition():
    p = softmax(LOGITS)
    assert np.allclose(p, [0.5, 0.2, 0.15, 0.1, 0.05], atol=1e-6)


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
    sampled = {choose_token(LOGITS, SamplingSettings(greedy=False, seed=s, suppressed_ids=(0, 1)), 0) for s in range(50)}
    assert sampled <= {2, 3, 4} and len(sampled) > 1


def test_sampling_is_reproducible_per_seed_and_step():
    settings = SamplingSettings(greedy=False, seed=7)
    a = [choose_token(LOGITS, settings, i) for i in range(20)]
    b = [choose_token(LOGITS, settings, i) for i in range(20)]
    assert a == b
    assert a != [choose_token(LOGITS, SamplingSettings(greedy=False, seed=8), i) for i in range(20)]


def test_sampling_frequencies_follow_the_distribution():
    settings = SamplingSettings(greedy=False, seed=1)
    draws = np.bincount([choose_token(LOGITS, SamplingSettings(greedy=False, seed=s), 0) for s in range(3000)], minlength=5)
    assert np.allclose(draws / draws.sum(), [0.5, 0.2, 0.15, 0.1, 0.05], atol=0.03)
    assert settings.seed == 1


def test_entropy_bits():
    assert entropy_bits(np.array([0.5, 0.5])) == pytest.approx(1.0)
    assert entropy_bits(np.array([1.0, 0.0])) == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs", [dict(temperature=0), dict(top_p=0), dict(top_p=1.5), dict(top_k=-1)])
def test_invalid_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        SamplingSettings(**kwargs)
