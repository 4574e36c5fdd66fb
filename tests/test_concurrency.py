"""Models are shared by every session: concurrent traces must not mix their results."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from explorer.adapters import decoder, moe
from explorer.adapters.common import hook_count
from tiny_models import tiny_loaded


def _inputs(n: int):
    rng = np.random.default_rng(0)
    return [rng.integers(3, 99, size=int(rng.integers(3, 20))) for _ in range(n)]


def test_ten_threads_get_exactly_their_own_traces():
    loaded = tiny_loaded("llama")
    inputs = _inputs(10)
    serial = [decoder.trace_ids(loaded, ids) for ids in inputs]
    with ThreadPoolExecutor(max_workers=10) as pool:
        parallel = list(pool.map(lambda ids: decoder.trace_ids(loaded, ids), inputs))
    for a, b in zip(serial, parallel):
        assert np.array_equal(a.token_ids, b.token_ids)
        assert np.array_equal(a.logits, b.logits)
        assert np.array_equal(a.attentions, b.attentions)
        assert np.array_equal(a.hidden_states, b.hidden_states)
    assert hook_count(loaded.model) == 0


def test_concurrent_moe_routes_match_serial():
    loaded = tiny_loaded("mixtral")
    inputs = _inputs(10)
    serial = [moe.trace_ids(loaded, ids).router.chosen for ids in inputs]
    with ThreadPoolExecutor(max_workers=10) as pool:
        parallel = list(pool.map(lambda ids: moe.trace_ids(loaded, ids).router.chosen, inputs))
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel))
