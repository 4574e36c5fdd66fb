"""Routing statistics on hand-made routes."""

import numpy as np
import pytest

from explorer import routing
from explorer.trace import RouterTrace


def router_from_first_choices(first: np.ndarray, e: int = 4) -> RouterTrace:
    m, t = first.shape
    probs = np.full((m, t, e), 0.1 / (e - 1))
    np.put_along_axis(probs, first[..., None], 0.9, axis=-1)
    chosen = first[..., None]
    return RouterTrace(
        layer_indices=np.arange(m),
        probs=probs,
        chosen=chosen,
        gates=np.ones_like(chosen, dtype=float),
        kept=np.ones_like(chosen, dtype=bool),
        top_k=1,
    )


def test_balance_is_one_when_uniform_and_high_when_collapsed():
    balanced = router_from_first_choices(np.array([[0, 1, 2, 3]]))
    collapsed = router_from_first_choices(np.array([[2, 2, 2, 2]]))
    assert routing.load_balancing_value(balanced)[0] == pytest.approx(1.0)
    assert routing.load_balancing_value(collapsed)[0] == pytest.approx(4 * 0.9)


def test_token_id_consistency():
    router = router_from_first_choices(np.array([[1, 2, 1, 3]]))
    share, repeated = routing.token_id_consistency(router, np.array([7, 8, 7, 9]))
    assert repeated == 1 and share == 1.0
    share, repeated = routing.token_id_consistency(router, np.array([7, 8, 9, 10]))
    assert repeated == 0 and np.isnan(share)


def test_consecutive_sharing_against_chance():
    router = router_from_first_choices(np.array([[0, 0, 1, 1]]))
    observed, chance = routing.consecutive_sharing(router)
    assert observed == pytest.approx(2 / 3) and chance == pytest.approx(0.5)


def test_transitions_count_each_token_once():
    router = router_from_first_choices(np.array([[0, 1, 1], [2, 2, 3]]))
    counts = routing.transitions(router, 0)
    assert counts.sum() == 3 and counts[1, 2] == 1 and counts[1, 3] == 1 and counts[0, 2] == 1


def top2_router(chosen: np.ndarray, e: int = 4) -> RouterTrace:
    """Top-2 routes [M, T, 2] with uniform router probabilities."""
    m, t, _ = chosen.shape
    probs = np.full((m, t, e), 1 / e)
    return RouterTrace(
        layer_indices=np.arange(m),
        probs=probs,
        chosen=chosen,
        gates=np.full(chosen.shape, 0.5),
        kept=np.ones_like(chosen, dtype=bool),
        top_k=2,
    )


def test_topk_value_is_k_when_balanced_and_pooling_hides_opposite_layers():
    balanced = top2_router(np.array([[[0, 1], [2, 3], [1, 0], [3, 2]]]))
    assert routing.topk_balancing_value(balanced)[0] == pytest.approx(2.0)
    assert routing.pooled_topk_balancing_value(balanced) == pytest.approx(2.0)
    # layer 0 uses only experts 0 and 1, layer 1 only 2 and 3: each layer is lopsided by its choices,
    # yet pooled over both layers every expert gets a quarter of the assignments.
    opposite = top2_router(np.array([[[0, 1]] * 4, [[2, 3]] * 4]))
    counts = [np.bincount(opposite.chosen[layer].ravel(), minlength=4) for layer in range(2)]
    assert counts[0].tolist() == [4, 4, 0, 0] and counts[1].tolist() == [0, 0, 4, 4]
    assert routing.pooled_topk_balancing_value(opposite) == pytest.approx(2.0)


def test_topk_value_counts_every_choice():
    probs = np.array([[[0.7, 0.1, 0.1, 0.1]] * 4])  # router prefers expert 0
    chosen = np.array([[[0, 1]] * 4])
    router = RouterTrace(
        layer_indices=np.arange(1),
        probs=probs,
        chosen=chosen,
        gates=np.full(chosen.shape, 0.5),
        kept=np.ones_like(chosen, dtype=bool),
        top_k=2,
    )
    # c = [1, 1, 0, 0], P = [0.7, 0.1, 0.1, 0.1]: 4 * (0.7 + 0.1) = 3.2
    assert routing.topk_balancing_value(router)[0] == pytest.approx(3.2)
