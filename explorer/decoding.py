"""Choosing the next token from a next-token distribution (pure numpy).

The rules follow the usual order of Hugging Face's logits processors: suppressed ids,
then temperature, then top-k, then top-p (nucleus), then greedy argmax or sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingSettings:
    greedy: bool = True
    temperature: float = 1.0
    top_k: int = 0  # 0 keeps every token
    top_p: float = 1.0  # 1.0 keeps every token
    seed: int = 0
    suppressed_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log p over the last axis, in float64 (differences of nearly equal runs stay exact); the maximum
    is subtracted before exp, so large logits do not overflow."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Stable softmax over the last axis; -inf entries get probability 0."""
    z = logits.astype(np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class DepthReadout:
    """What a logit lens reads at every depth of one position, from its logits [L+1, V]; kept
    instead of the [L+1, V] probabilities (6 MB for SmolLM2) in the pages' shared caches.

    top_ids [L+1]      the most likely token at each depth
    top_probs [L+1]    its probability
    final_id           the token the last depth ranks first (the model's answer)
    final_probs [L+1]  that token's probability at each depth
    """

    top_ids: np.ndarray
    top_probs: np.ndarray
    final_id: int
    final_probs: np.ndarray


def depth_readout(logits: np.ndarray) -> DepthReadout:
    probs = softmax(logits)  # [L+1, V]
    top_ids = probs.argmax(-1)
    final_id = int(top_ids[-1])
    return DepthReadout(top_ids, probs.max(-1), final_id, probs[:, final_id].copy())


def entropy_bits(probs: np.ndarray) -> float:
    p = probs[probs > 0].astype(np.float64)
    return float(-(p * np.log2(p)).sum())


def filtered_distribution(logits: np.ndarray, settings: SamplingSettings) -> tuple[np.ndarray, np.ndarray]:
    """Apply the decoding rules to one step's logits [V].

    Returns (probs [V] float64, kept [V] bool): the distribution the choice is drawn from
    (zero outside ``kept``, summing to 1 in float64) and which tokens survived suppression,
    top-k and top-p. The kept set is the one of transformers' TemperatureLogitsWarper ->
    TopKLogitsWarper -> TopPLogitsWarper on the same logits; everything runs in float64
    because a float32 sum misses 1 by ~1e-7 on a 49k vocabulary, more than a sampler allows.
    """
    scaled = logits.astype(np.float64)  # [V], a copy
    if settings.suppressed_ids:
        scaled[list(settings.suppressed_ids)] = -np.inf
    if not settings.greedy:
        scaled /= settings.temperature
    kept = np.isfinite(scaled)
    if not settings.greedy:
        if settings.top_k and settings.top_k < kept.sum():
            # TopKLogitsWarper removes what is strictly below the k-th largest: ties at the k-th stay
            kth = np.sort(scaled[kept])[-settings.top_k]
            kept &= scaled >= kth
        if settings.top_p < 1.0:
            kept &= _nucleus(np.where(kept, scaled, -np.inf), settings.top_p)
    probs = _softmax64(np.where(kept, scaled, -np.inf))
    return probs, kept


def _softmax64(logits: np.ndarray) -> np.ndarray:
    z = logits - np.max(logits)
    e = np.exp(z)
    return e / e.sum()


def _nucleus(logits: np.ndarray, top_p: float) -> np.ndarray:
    """[V] bool: TopPLogitsWarper's rule. Sort ascending, accumulate probability from the
    least likely token, drop tokens while the mass accumulated so far is <= 1 - top_p,
    and always keep the most likely token."""
    order = np.argsort(logits, kind="stable")  # ascending, like torch.sort(descending=False)
    cumulative = np.cumsum(_softmax64(logits)[order])  # [V] float64
    remove = cumulative <= 1 - top_p
    remove[-1] = False
    keep = np.ones(logits.shape, dtype=bool)
    keep[order[remove]] = False
    return keep


def choose_token(logits: np.ndarray, settings: SamplingSettings, step_index: int) -> int:
    """The next token id under ``settings``; sampling is reproducible per (seed, step).

    Sampling inverts the float64 cumulative distribution of the kept tokens at one uniform
    draw, so no rounding of the probabilities can make it fail."""
    probs, kept = filtered_distribution(logits, settings)
    if settings.greedy:
        return int(np.argmax(np.where(kept, logits, -np.inf)))
    candidates = np.flatnonzero(kept)  # [K] ascending ids
    cumulative = np.cumsum(probs[candidates])  # [K] float64
    u = np.random.default_rng([settings.seed, step_index]).random() * cumulative[-1]
    return int(candidates[min(int(np.searchsorted(cumulative, u, side="right")), len(candidates) - 1)])


def drawn_distribution(logits: np.ndarray, settings: SamplingSettings) -> tuple[np.ndarray, np.ndarray]:
    """The distribution ``choose_token`` actually draws from at one step's logits [V].

    Returns (probs [V] float64, kept [V] bool). Sampling: ``filtered_distribution``'s (after
    temperature, top-k and top-p; zero outside ``kept``, summing to 1). Greedy: all the mass on
    the one token greedy takes (the most likely kept token); ``kept`` is then what suppression
    left, since greedy ignores temperature, top-k and top-p."""
    probs, kept = filtered_distribution(logits, settings)
    if not settings.greedy:
        return probs, kept
    certain = np.zeros_like(probs)
    certain[int(np.argmax(np.where(kept, logits, -np.inf)))] = 1.0
    return certain, kept


def rules_text(settings: SamplingSettings) -> str:
    """The decoding rules in a few words, for figure titles: 'temperature T=0.3, top-k=0 (off),
    top-p=0.9' or 'greedy (always the most likely token)'."""
    if settings.greedy:
        return "greedy (always the most likely token)"
    top_k = f"top-k={settings.top_k}" if settings.top_k else "top-k=0 (off)"
    top_p = f"top-p={settings.top_p:g}" if settings.top_p < 1 else "top-p=1 (off)"
    return f"temperature T={settings.temperature:g}, {top_k}, {top_p}"
