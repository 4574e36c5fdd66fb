"""Every card statistic on a planted case whose answer is known by construction (no model)."""

import dataclasses

import numpy as np
import pytest

from explorer.effects import compare
from explorer.experiments import statistics as stats
from explorer.experiments.prompts import repeated_random_tokens


def causal_uniform(layers, heads, t):
    a = np.tril(np.ones((t, t)))
    a /= a.sum(axis=1, keepdims=True)
    return np.broadcast_to(a, (layers, heads, t, t)).copy()


def test_first_token_mass_of_a_perfect_sink_is_one_and_uniform_matches_its_baseline():
    t = 6
    sink = np.zeros((1, 1, t, t))
    sink[..., :, 0] = 1.0
    assert stats.first_token_mass(sink)[0, 0] == 1.0
    uniform = causal_uniform(2, 3, t)
    assert np.allclose(stats.first_token_mass(uniform), stats.uniform_first_token_mass(t, causal=True))
    assert stats.uniform_first_token_mass(4, causal=False) == 0.25


def test_remove_sink_renormalises_over_the_other_keys():
    a = np.zeros((1, 1, 3, 3))
    a[0, 0, 0, 0] = 1.0
    a[0, 0, 1] = [0.5, 0.5, 0.0]
    a[0, 0, 2] = [0.6, 0.1, 0.3]
    out = stats.remove_sink(a)
    assert np.allclose(out[0, 0, 1], [0, 1, 0]) and np.allclose(out[0, 0, 2], [0, 0.25, 0.75])
    assert out[0, 0, 0, 0] == 1.0  # query 0 has nothing else to attend to


def planted_induction(ids):
    """A head that, from every repeated token, attends equally to the tokens after its
    previous occurrences; other queries attend to themselves."""
    t = len(ids)
    a = np.zeros((1, 1, t, t))
    for q in range(t):
        a[0, 0, q, q] = 1.0
    for q, keys in stats.induction_targets(ids):
        a[0, 0, q] = 0.0
        a[0, 0, q, keys] = 1.0 / len(keys)
    return a


def test_a_perfect_induction_head_scores_one_and_a_previous_token_head_zero():
    ids, start = repeated_random_tokens(50, period=8, seed=3, prefix=(1,))
    assert stats.induction_scores(planted_induction(ids), ids)[0, 0] == pytest.approx(1.0)
    t = len(ids)
    previous = np.zeros((1, 1, t, t))
    previous[0, 0, 0, 0] = 1.0
    previous[0, 0, np.arange(1, t), np.arange(t - 1)] = 1.0
    assert stats.previous_token_scores(previous)[0, 0] == 1.0
    assert stats.induction_scores(previous, ids)[0, 0] == 0.0
    # uniform attention gives exactly the stated chance baseline
    assert stats.induction_scores(causal_uniform(1, 1, t), ids)[0, 0] == pytest.approx(
        stats.uniform_induction_score(ids)
    )


def test_copy_losses_of_a_model_that_copies_after_the_first_copy():
    ids, start = repeated_random_tokens(20, period=6, seed=0)
    v, t = 20, len(ids)
    logits = np.zeros((t, v))  # uniform: loss log V
    for pos in range(start + 6, t - 1):
        logits[pos, ids[pos + 1]] = 50.0  # certain of the next token in the second copy
    first, second = stats.repeated_copy_losses(logits, ids, start, 6)
    assert first == pytest.approx(np.log(v)) and second == pytest.approx(0.0, abs=1e-12)


def test_attention_to_keys_counts_the_mass_on_the_marked_keys():
    t = 5
    a = np.full((2, 2, t, t), 1.0 / t)
    mask = np.array([True, False, False, False, True])
    assert np.allclose(stats.attention_to_keys(a, mask), 0.4)
    a = np.zeros((1, 1, t, t))
    a[..., 4] = 1.0  # everything on the last ([SEP]) token
    assert stats.attention_to_keys(a, mask)[0] == 1.0


def test_cosine_statistics_on_planted_vectors():
    same = np.tile(np.array([1.0, 2.0, 3.0]), (3, 4, 1))  # [L+1=3, C=4, D]: one vector in every context
    assert np.allclose(stats.self_similarity(same), 1.0)
    orthogonal = np.eye(4)[None]  # [1, 4, 4]
    assert np.allclose(stats.mean_pairwise_cosine(orthogonal), 0.0)
    # every token of every prompt points the same way: cross-prompt cosine 1; one prompt opposite: -1 for it
    prompts = [np.ones((2, 3, 4)), np.ones((2, 5, 4)), -np.ones((2, 2, 4))]
    cosine = stats.cross_prompt_cosine(prompts)  # [P, L+1]
    assert cosine.shape == (3, 2)
    assert np.allclose(cosine[2], -1.0)
    assert np.allclose(cosine[0], (5 - 2) / 7) and np.allclose(cosine[1], (3 - 2) / 5)
    # against the pair-by-pair definition on random vectors
    rng = np.random.default_rng(0)
    vectors = [rng.normal(size=(2, n, 6)) + 0.5 for n in (3, 4, 5)]
    pairwise = stats.cross_cosines(vectors[1][1], np.concatenate([vectors[0][1], vectors[2][1]])).mean()
    assert stats.cross_prompt_cosine(vectors)[1, 1] == pytest.approx(pairwise)


def test_prediction_depth_settled_and_first_agreement():
    lens_top1 = np.array([[5, 1, 2], [5, 7, 2], [9, 7, 3], [5, 7, 4]])  # [L+1=4, T=3], finals 5, 7, 4
    assert np.allclose(stats.first_agreement_depth(lens_top1), [0.0, 1 / 3, 1.0])
    # position 0 agrees at depth 0, disagrees at depth 2, agrees again at 3: settled only at the output
    assert np.allclose(stats.settled_depth(lens_top1), [1.0, 1 / 3, 1.0])
    # entries below the first disagreement from the top may be unknown (-1): the same answer
    partial = np.array([[-1, -1, -1], [-1, 7, -1], [9, 7, 3], [5, 7, 4]])
    assert np.allclose(stats.settled_depth(partial), [1.0, 1 / 3, 1.0])
    assert np.allclose(stats.settled_depth(np.array([[3], [3]])), [0.0])  # agrees from the embeddings on


def test_consecutive_routing_statistics_on_a_planted_router():
    chosen = np.array([[[0, 1], [0, 2], [3, 2], [4, 5]]])  # [M=1, T=4, K=2]
    assert np.allclose(stats.consecutive_same_first(chosen), [1 / 3])
    assert np.allclose(stats.consecutive_topk_overlap(chosen), [2 / 3])
    assert np.allclose(stats.consecutive_first_in_topk(chosen), [1 / 3])  # only 0 after (0, 1)
    assert stats.chance_same_first(8) == 0.125
    assert stats.chance_topk_overlap(8, 2) == pytest.approx(1 - 15 / 28)
    # the overlap chance is what independent uniform k-subsets give
    rng = np.random.default_rng(0)
    draws = np.stack([rng.permutation(8)[:2] for _ in range(20000)])[None]
    assert stats.consecutive_topk_overlap(draws)[0] == pytest.approx(stats.chance_topk_overlap(8, 2), abs=0.01)


def test_a_router_that_ignores_context_is_predicted_from_the_token_id_and_beats_its_null():
    rng = np.random.default_rng(0)
    expert_of = rng.integers(0, 8, size=30)  # a fixed expert per token id, per layer shifted

    def first(ids):
        return np.stack([expert_of[ids], (expert_of[ids] + 1) % 8])  # [M=2, N]

    fit = rng.integers(0, 30, size=400)
    tests = [rng.integers(0, 30, size=20) for _ in range(12)]
    result = stats.token_id_routing(fit, first(fit), [(ids, first(ids)) for ids in tests], 8, 200, rng)
    assert result.coverage == 1.0
    assert np.allclose(result.per_prompt, 1.0) and np.allclose(result.by_layer, 1.0)
    assert np.all(result.majority < 0.5)
    assert stats.verdict(result.per_prompt, result.null, +1) == stats.REPRODUCES
    # a router that ignores the token, with uneven load: at its null, not above it
    load = np.array([0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05])
    noise = stats.token_id_routing(
        fit, rng.choice(8, size=(1, 400), p=load), [(ids, rng.choice(8, size=(1, 20), p=load)) for ids in tests],
        8, 200, rng,
    )  # fmt: skip
    assert stats.verdict(noise.per_prompt, noise.null, +1) != stats.REPRODUCES
    assert abs(noise.per_prompt.mean() - noise.null.mean()) < 0.05


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
    tax = stats.head_taxonomy(heads, ids)
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
    card = stats.Card(
        name="x",
        quantity="q",
        method="m",
        prompt_set="p",
        measured=0.5,
        spread=0.1,
        chance=0.2,
        chance_note="uniform",
        source="not found in the paper",
    )
    assert "published: n/a [not found in the paper]" in card.line()
    quoted = dataclasses.replace(card, published_text="'over half' (BERT-base)")
    assert "published: 'over half' (BERT-base) [not found in the paper]" in quoted.line()


# --- nulls that keep the confounds, and the verdict rule ---------------------------------------------


def test_the_verdict_rule_on_planted_prompts():
    rng = np.random.default_rng(0)
    null = rng.normal(size=(10, 1000))  # [P, D]: each prompt's null, standard normal
    assert stats.verdict(np.full(10, 3.0), null, +1) == stats.REPRODUCES  # beyond the 95th percentile in all
    assert stats.verdict(np.r_[np.full(8, 3.0), np.zeros(2)], null, +1) == stats.REPRODUCES  # in 80%
    assert stats.verdict(np.r_[np.full(7, 3.0), np.full(3, -1.0)], null, +1) == stats.INCONCLUSIVE  # 70%
    assert stats.verdict(np.full(10, 1.0), null, +1) == stats.INCONCLUSIVE  # shifted, below the 95th percentile
    assert stats.verdict(rng.normal(size=10) - 1.0, null, +1) == stats.NOT_HERE  # looks like the null
    assert stats.verdict(np.full(10, -3.0), null, +1) == stats.NOT_HERE  # the wrong way
    # a finding that is a lower value (prediction depth): mirrored
    assert stats.verdict(np.full(10, -3.0), null, -1) == stats.REPRODUCES
    assert stats.verdict(np.full(10, 3.0), null, -1) == stats.NOT_HERE
    # prompts that could not be measured do not count; none at all is inconclusive
    assert stats.verdict(np.r_[np.full(8, 3.0), np.full(2, np.nan)], null, +1) == stats.REPRODUCES
    assert stats.verdict(np.full(10, np.nan), null, +1) == stats.INCONCLUSIVE
    for verdict in stats.VERDICTS:
        assert verdict in stats.VERDICT_RULE.replace("**", "").lower()


def planted_routes(rng, load, prompts=20, tokens=30, layers=2, keep=0.0, k=2):
    """[M, T, K] routes per prompt: each token's experts drawn from ``load`` without replacement;
    with probability ``keep`` a token takes its predecessor's experts (order), else none (no order)."""
    out = []
    for _ in range(prompts):
        chosen = np.zeros((layers, tokens, k), dtype=np.int64)
        for m in range(layers):
            for t in range(tokens):
                if t and rng.random() < keep:
                    chosen[m, t] = chosen[m, t - 1]
                else:
                    chosen[m, t] = rng.choice(len(load), size=k, replace=False, p=load)
        out.append(chosen)
    return out


def routing_null(routes, statistic, rng, draws=300):
    measured = np.array([statistic(c).mean() for c in routes])  # [P]
    null = np.stack([stats.shuffled_positions_null(c, statistic, draws, rng).mean(axis=1) for c in routes])  # [P, D]
    return measured, null


def test_an_uneven_router_without_order_scores_at_its_shuffled_null_not_above_it():
    rng = np.random.default_rng(1)
    load = np.array([0.4, 0.25, 0.1, 0.1, 0.05, 0.04, 0.03, 0.03])
    routes = planted_routes(rng, load, prompts=60, tokens=40)
    for statistic, analytic in (
        (stats.consecutive_same_first, stats.chance_same_first(8)),
        (stats.consecutive_topk_overlap, stats.chance_topk_overlap(8, 2)),
    ):
        measured, null = routing_null(routes, statistic, rng)
        assert measured.mean() > analytic + 0.05  # above the uniform-load chance: the old baseline was fooled
        # the shuffled null keeps the load: it matches the measured mean within sampling error (the difference
        # of the two means has a standard deviation of about 0.007 over seeds for 60 prompts of 40 tokens)
        assert abs(measured.mean() - null.mean()) < 0.025
        assert stats.verdict(measured, null, +1) != stats.REPRODUCES
    # the same load with order (a token often keeps its predecessor's experts) reproduces
    measured, null = routing_null(planted_routes(rng, load, keep=0.6), stats.consecutive_same_first, rng)
    assert stats.verdict(measured, null, +1) == stats.REPRODUCES


def test_with_uniform_load_the_shuffled_null_is_the_analytic_chance():
    rng = np.random.default_rng(2)
    routes = planted_routes(rng, np.full(8, 1 / 8), prompts=40, tokens=40)
    for statistic, analytic in (
        (stats.consecutive_same_first, stats.chance_same_first(8)),
        (stats.consecutive_topk_overlap, stats.chance_topk_overlap(8, 2)),
        (stats.consecutive_first_in_topk, 2 / 8),
    ):
        _, null = routing_null(routes, statistic, rng, draws=200)
        # the prompts' own loads vary around uniform: allow 3 standard errors of their mean
        error = null.mean(axis=1).std() / np.sqrt(len(routes))
        assert abs(null.mean() - analytic) < 3 * error + 0.005, (statistic.__name__, null.mean(), analytic)


def test_the_sink_null_takes_random_visible_keys():
    rng = np.random.default_rng(3)
    t = 12
    first = np.zeros(t, dtype=bool)
    first[0] = True
    uniform = causal_uniform(2, 2, t)
    null = stats.key_mass_null(uniform, first, True, 4000, rng)
    # uniform attention: the null is the analytic chance on average, and the measured value sits in it
    assert null.mean() == pytest.approx(stats.uniform_key_mass(first, True), abs=0.01)
    assert stats.uniform_key_mass(first, True) == pytest.approx(stats.uniform_first_token_mass(t, True))
    assert stats.key_mass(uniform, first, True) == pytest.approx(stats.uniform_first_token_mass(t, True))
    sink = 0.5 * uniform
    sink[..., 1:, 0] += 0.5
    sink[..., 0, 0] = 1.0
    prompts = [sink] * 10
    measured = [stats.key_mass(a, first, True) for a in prompts]
    nulls = np.stack([stats.key_mass_null(a, first, True, 500, rng) for a in prompts])
    assert stats.verdict(measured, nulls, +1) == stats.REPRODUCES
    nulls = np.stack([stats.key_mass_null(uniform, first, True, 500, rng) for _ in range(10)])
    assert stats.verdict([stats.key_mass(uniform, first, True)] * 10, nulls, +1) != stats.REPRODUCES
    # several marked keys (an encoder's two [SEP]): as many random keys, all visible
    marks = np.zeros(t, dtype=bool)
    marks[[4, 11]] = True
    flat = np.full((1, 1, t, t), 1 / t)
    assert stats.key_mass_null(flat, marks, False, 50, rng) == pytest.approx(np.full(50, 2 / t))


def test_induction_nulls_on_planted_heads():
    rng = np.random.default_rng(4)
    ids, start = repeated_random_tokens(60, period=8, seed=5, prefix=(1,))
    induction = planted_induction(ids)
    uniform = causal_uniform(1, 1, len(ids))
    both = np.concatenate([induction, uniform], axis=1)  # [L=1, H=2, T, T]
    null = stats.induction_head_null(both, ids, 500, rng)
    assert stats.induction_scores(both, ids).max() == pytest.approx(1.0)
    assert null.max() < 0.5  # a random earlier key is rarely the induction target
    assert stats.verdict(np.ones(10), np.tile(null, (10, 1)), +1) == stats.REPRODUCES
    uniform_null = stats.induction_head_null(uniform, ids, 500, rng)
    uniform_score = stats.induction_scores(uniform, ids)[0, 0]
    assert uniform_score == pytest.approx(uniform_null.mean(), abs=0.02)
    # the copy-label null: equal losses drop nothing; a real drop is beyond it
    same = rng.normal(5.0, 0.5, size=(2, 23))
    assert abs(stats.copy_label_null(same[0], same[1], 1000, rng).mean()) < 0.05
    assert np.percentile(stats.copy_label_null(same[0], same[1] - 3.0, 1000, rng), 95) < 3.0


def test_the_sign_flip_null_of_anisotropy():
    rng = np.random.default_rng(6)
    isotropic = rng.normal(size=(40, 64))
    cos = stats.cross_cosines(isotropic[:20], isotropic[20:])
    null = stats.sign_flip_null(cos, 1000, rng)
    assert abs(null.mean()) < 0.01 and np.percentile(null, 95) > cos.mean()
    shared = isotropic + 3.0  # a common direction: every cosine near 1, far beyond the flipped signs
    cos = stats.cross_cosines(shared[:20], shared[20:])
    assert cos.mean() > 0.8 and np.percentile(stats.sign_flip_null(cos, 1000, rng), 95) < 0.3


def test_the_self_similarity_null_replaces_the_word_by_random_tokens_of_its_sentences():
    rng = np.random.default_rng(7)
    direction = rng.normal(size=16)
    word = np.stack([direction + 0.1 * rng.normal(size=16) for _ in range(6)])  # one word, 6 contexts
    others = [rng.normal(size=(8, 16)) for _ in range(6)]
    measured, null, baseline = stats.self_similarity_by_context(word, others, np.zeros(6, int), 300, rng)
    assert abs(baseline) < 0.1 and np.all(measured > 0.8)
    assert stats.verdict(measured, null, +1) == stats.REPRODUCES
    unrelated = np.stack([o[0] for o in others])  # 'the word' is just one of the sentence's tokens
    rest = [o[1:] for o in others]
    measured, null, _ = stats.self_similarity_by_context(unrelated, rest, np.zeros(6, int), 300, rng)
    assert stats.verdict(measured, null, +1) != stats.REPRODUCES


def test_the_settled_depth_null_keeps_the_frequency_of_the_predictions():
    rng = np.random.default_rng(8)
    depths = np.array([0.2, 0.4, 0.3, 0.5, 0.1, 0.2])
    distinct = np.arange(6)  # every position predicts its own token: another position's answer never settles
    assert np.allclose(stats.settled_depth_null(depths, distinct, 100, rng), 1.0)
    frequent = np.zeros(6, dtype=int)  # every position predicts the same frequent token: the null is the measure
    assert np.allclose(stats.settled_depth_null(depths, frequent, 100, rng), depths.mean())
    null = np.stack([stats.settled_depth_null(depths, frequent, 100, rng)] * 10)
    assert stats.verdict(np.full(10, depths.mean()), null, -1) == stats.NOT_HERE
