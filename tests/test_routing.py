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
    return RouterTrace(layer_indices=np.arange(m), probs=probs, chosen=chosen, gates=np.ones_like(chosen, dtype=float),
                       kept=np.ones_like(chosen, dtype=bool), top_k=1)


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
