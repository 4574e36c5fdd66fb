"""Statistics of MoE routes (pure numpy, from a RouterTrace)."""

from __future__ import annotations

import numpy as np

from explorer.trace import RouterTrace


def load_balancing_value(router: RouterTrace) -> np.ndarray:
    """[M] Switch Transformer auxiliary loss N * sum_i f_i * P_i per MoE layer, where f_i is
    the share of tokens whose first choice is expert i and P_i the mean router probability
    of expert i. It is 1.0 for a perfectly balanced router and N when one expert takes all."""
    m, t, e = router.probs.shape
    first = router.chosen[..., 0]  # [M, T]
    f = np.stack([np.bincount(first[layer], minlength=e) / t for layer in range(m)])  # [M, E]
    p = router.probs.mean(axis=1)  # [M, E]
    return e * (f * p).sum(axis=1)


def topk_balancing_value(router: RouterTrace) -> np.ndarray:
    """[M] transformers' load-balancing value, per MoE layer: N * sum_i c_i * P_i with c_i the
    share of tokens that have expert i among their top-k choices (every choice counted, so
    sum_i c_i = k). Balanced is k (2.0 for top-2), not 1.0. transformers' Mixtral/OLMoE/Qwen2-MoE
    loss computes this over all layers' tokens pooled together (pooled_topk_balancing_value)."""
    m, t, e = router.probs.shape
    counts = np.stack([np.bincount(router.chosen[layer].ravel(), minlength=e) / t for layer in range(m)])  # [M, E]
    return e * (counts * router.probs.mean(axis=1)).sum(axis=1)


def pooled_topk_balancing_value(router: RouterTrace) -> float:
    """The same value with every layer's tokens pooled, as transformers' auxiliary loss sees them:
    layers can be unbalanced in opposite directions and still give the balanced value k."""
    m, t, e = router.probs.shape
    counts = np.bincount(router.chosen.ravel(), minlength=e) / (m * t)  # [E]
    return float(e * (counts * router.probs.reshape(m * t, e).mean(axis=0)).sum())


def coactivation(router: RouterTrace) -> np.ndarray:
    """[E, E] how often two experts are chosen for the same token in the same layer
    (diagonal: how often each expert is chosen), summed over layers and tokens."""
    e = router.num_experts
    counts = np.zeros((e, e))
    for choice in router.chosen.reshape(-1, router.top_k):
        for a in choice:
            for b in choice:
                counts[a, b] += 1
    return counts


def token_id_consistency(router: RouterTrace, token_ids: np.ndarray) -> tuple[float, int]:
    """For token ids that occur more than once: the mean share of their occurrences that go
    to that id's most common first-choice expert, over layers. Returns (share, ids counted);
    share is nan when no id repeats. Chance level is about 1/E for a random router."""
    shares = []
    ids, counts = np.unique(token_ids, return_counts=True)
    repeated = ids[counts > 1]
    for token in repeated:
        where = token_ids == token
        for layer in range(router.chosen.shape[0]):
            experts = router.chosen[layer, where, 0]
            shares.append(np.bincount(experts).max() / len(experts))
    return (float(np.mean(shares)) if shares else float("nan")), int(len(repeated))


def consecutive_sharing(router: RouterTrace) -> tuple[float, float]:
    """(observed, chance): how often two neighbouring tokens share their first-choice expert,
    against what independent tokens with this layer's expert frequencies would give."""
    m, t, _ = router.chosen.shape
    if t < 2:
        return float("nan"), float("nan")
    first = router.chosen[..., 0]
    observed = float((first[:, 1:] == first[:, :-1]).mean())
    e = router.num_experts
    freq = np.stack([np.bincount(first[layer], minlength=e) / t for layer in range(m)])
    chance = float((freq**2).sum(axis=1).mean())
    return observed, chance


def transitions(router: RouterTrace, layer: int) -> np.ndarray:
    """[E, E] count of tokens whose first choice is expert a at MoE layer ``layer`` and expert
    b at layer ``layer + 1`` (the flows of a Sankey diagram)."""
    e = router.num_experts
    counts = np.zeros((e, e), dtype=np.int64)
    np.add.at(counts, (router.chosen[layer, :, 0], router.chosen[layer + 1, :, 0]), 1)
    return counts
