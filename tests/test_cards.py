"""Every card statistic on a planted case whose answer is known by construction (no model)."""

import dataclasses

import numpy as np
import pytest

from explorer.experiments import cards
from explorer.experiments.prompts import repeated_random_tokens
from explorer.experiments.results import compare


def causal_uniform(layers, heads, t):
    a = np.tril(np.ones((t, t)))
    a /= a.sum(axis=1, keepdims=True)
    return np.broadcast_to(a, (layers, heads, t, t)).copy()


def test_first_token_mass_of_a_perfect_sink_is_one_and_uniform_matches_its_baseline():
    t = 6
    sink = np.zeros((1, 1, t, t))
    sink[..., :, 0] = 1.0
    assert cards.first_token_mass(sink)[0, 0] == 1.0
    uniform = causal_uniform(2, 3, t)
    assert np.allclose(cards.first_token_mass(uniform), cards.uniform_first_token_mass(t, causal=True))
    assert cards.uniform_first_token_mass(4, causal=False) == 0.25


def test_remove_sink_renormalises_over_the_other_keys():
    a = np.zeros((1, 1, 3, 3))
    a[0, 0, 0, 0] = 1.0
    a[0, 0, 1] = [0.5, 0.5, 0.0]
    a[0, 0, 2] = [0.6, 0.1, 0.3]
    out = cards.remove_sink(a)
    assert np.allclose(out[0, 0, 1], [0, 1, 0]) and np.allclose(out[0, 0, 2], [0, 0.25, 0.75])
    assert out[0, 0, 0, 0] == 1.0  # query 0 has nothing else to attend to


def planted_induction(ids):
    """A head that, from every repeated token, attends equally to the tokens after its
    previous occurrences; other queries attend to themselves."""
    t = len(ids)
    a = np.zeros((1, 1, t, t))
    for q in range(t):
        a[0, 0, q, q] = 1.0
    for q, keys in cards.induction_targets(ids):
        a[0, 0, q] = 0.0
        a[0, 0, q, keys] = 1.0 / len(keys)
    return a


def test_a_perfect_induction_head_scores_one_and_a_previous_token_head_zero():
    ids, start = repeated_random_tokens(50, period=8, seed=3, prefix=(1,))
    assert cards.induction_scores(planted_induction(ids), ids)[0, 0] == pytest.approx(1.0)
    t = len(ids)
    previous = np.zeros((1, 1, t, t))
    previous[0, 0, 0, 0] = 1.0
    previous[0, 0, np.arange(1, t), np.arange(t - 1)] = 1.0
    assert cards.previous_token_scores(previous)[0, 0] == 1.0
    assert cards.induction_scores(previous, ids)[0, 0] == 0.0
    # uniform attention gives exactly the stated chance baseline
    assert cards.induction_scores(causal_uniform(1, 1, t), ids)[0, 0] == pytest.approx(
        cards.uniform_induction_score(ids)
    )


def test_copy_losses_of_a_model_that_copies_after_the_first_copy():
    ids, start = repeated_random_tokens(20, period=6, seed=0)
    v, t = 20, len(ids)
    logits = np.zeros((t, v))  # uniform: loss log V
    for pos in range(start + 6, t - 1):
        logits[pos, ids[pos + 1]] = 50.0  # certain of the next token in the second copy
    first, second = cards.repeated_copy_losses(logits, ids, start, 6)
    assert first == pytest.approx(np.log(v)) and second == pytest.approx(0.0, abs=1e-12)


def test_attention_to_keys_counts_the_mass_on_the_marked_keys():
    t = 5
    a = np.full((2, 2, t, t), 1.0 / t)
    mask = np.array([True, False, False, False, True])
    assert np.allclose(cards.attention_to_keys(a, mask), 0.4)
    a = np.zeros((1, 1, t, t))
    a[..., 4] = 1.0  # everything on the last ([SEP]) token
    assert cards.attention_to_keys(a, mask)[0] == 1.0


def test_cosine_statistics_on_planted_vectors():
    same = np.tile(np.array([1.0, 2.0, 3.0]), (3, 4, 1))  # [L+1=3, C=4, D]: one vector in every context
    assert np.allclose(cards.self_similarity(same), 1.0)
    orthogonal = np.eye(4)[None]  # [1, 4, 4]
    assert np.allclose(cards.mean_pairwise_cosine(orthogonal), 0.0)
    # every token of every text points the same way: random-pair cosine 1; opposite texts: -1
    texts = [np.ones((2, 3, 4)), np.ones((2, 5, 4))]
    assert np.allclose(cards.random_pair_cosine(texts, pairs=20), 1.0)
    assert np.allclose(cards.random_pair_cosine([np.ones((2, 3, 4)), -np.ones((2, 2, 4))], pairs=20), -1.0)


def test_prediction_depth_is_the_first_agreeing_depth_over_the_number_of_blocks():
    lens_top1 = np.array([[5, 1, 2], [5, 7, 2], [9, 7, 3], [5, 7, 4]])  # [L+1=4, T=3]
    assert np.allclose(cards.prediction_depth(lens_top1), [0.0, 1 / 3, 1.0])


def test_consecutive_routing_statistics_on_a_planted_router():
    chosen = np.array([[[0, 1], [0, 2], [3, 2], [4, 5]]])  # [M=1, T=4, K=2]
    assert np.allclose(cards.consecutive_same_first(chosen), [1 / 3])
    assert np.allclose(cards.consecutive_topk_overlap(chosen), [2 / 3])
    assert np.allclose(cards.consecutive_first_in_topk(chosen), [1 / 3])  # only 0 after (0, 1)
    assert cards.chance_same_first(8) == 0.125
    assert cards.chance_topk_overlap(8, 2) == pytest.approx(1 - 15 / 28)
    # the overlap chance is what independent uniform k-subsets give
    rng = np.random.default_rng(0)
    draws = np.stack([rng.permutation(8)[:2] for _ in range(20000)])[None]
    assert cards.consecutive_topk_overlap(draws)[0] == pytest.approx(cards.chance_topk_overlap(8, 2), abs=0.01)


def test_a_router_that_ignores_context_has_token_id_predictability_one():
    rng = np.random.default_rng(0)
    expert_of = rng.integers(0, 8, size=30)  # a fixed expert per token id, per layer shifted
    train, test = rng.integers(0, 30, size=400), rng.integers(0, 30, size=200)

    def first(ids):
        return np.stack([expert_of[ids], (expert_of[ids] + 1) % 8])  # [M=2, N]

    result = cards.token_id_predictability(train, first(train), test, first(test))
    assert result.coverage == 1.0
    assert np.allclose(result.by_id, 1.0) and np.allclose(result.by_bigram, 1.0)
    assert np.all(result.majority < 0.5)
    # a router that ignores the token (random experts) is predicted at about chance
    noise = cards.token_id_predictability(train, rng.integers(0, 8, (1, 400)), test, rng.integers(0, 8, (1, 200)))
    assert noise.by_id[0] < 0.3


def test_head_taxonomy_labels_planted_heads_after_removing_the_sink():
    ids, _ = repeated_random_tokens(60, period=10, seed=1, prefix=(0,))
    t = len(ids)
    heads = np.zeros((1, 4, t, t))
    # head 0: induction plus a sink that takes half the mass
    heads[0, 0] = 0.5 * planted_induction(ids)[0, 0]
    heads[0, 0, :, 0] += 0.5
    heads[0, 0, 0, 0] = 1.0
    # head 1: previous token; head 2: self (a fixed offset 0); head 3: uniform over the non-sink keys
    heads[0, 1, 0, 0] = 1.0
    heads[0, 1, np.arange(1, t), np.arange(t - 1)] = 1.0
    heads[0, 2, np.arange(t), np.arange(t)] = 1.0
    heads[0, 3] = causal_uniform(1, 1, t)[0, 0]
    tax = cards.head_taxonomy(heads, ids)
    assert list(tax.labels[0]) == ["induction", "previous-token", "positional", "broad"]
    assert tax.sink[0, 0] == pytest.approx(0.5) and tax.induction[0, 0] == pytest.approx(1.0)


def test_compare_on_hand_built_logits():
    ids = np.array([0, 1, 2])
    base = np.log(np.array([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5], [1 / 3, 1 / 3, 1 / 3]]))
    modified = base.copy()
    modified[0] = np.log([0.25, 0.5, 0.25])
    result = compare("planted", ids, base, modified, causal=True)
    assert np.allclose(result.base_logprob, np.log([0.25, 0.5]))
    assert np.allclose(result.modified_logprob, np.log([0.5, 0.5]))
    assert result.kl[0] == pytest.approx(0.5 * np.log(2) + 0.25 * np.log(0.5))
    assert np.allclose(result.kl[1:], 0.0)
    assert list(result.flipped) == [True, False, False]


def test_card_line_says_when_no_published_value_was_verified():
    card = cards.Card(
        name="x",
        quantity="q",
        method="m",
        prompt_set="p",
        measured=0.5,
        spread=0.1,
        chance=0.2,
        chance_note="uniform",
        published=None,
        source="not found in the paper",
    )
    assert "published: n/a [not found in the paper]" in card.line()
    quoted = dataclasses.replace(card, published_text="'over half' (BERT-base)")
    assert "published: 'over half' (BERT-base) [not found in the paper]" in quoted.line()
