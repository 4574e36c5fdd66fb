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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Stable softmax over the last axis; -inf entries get probability 0."""
    z = logits.astype(np.float64)
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def entropy_bits(probs: np.ndarray) -> float:
    p = probs[probs > 0].astype(np.float64)
    return float(-(p * np.log2(p)).sum())


def filtered_distribution(logits: np.ndarray, settings: SamplingSettings) -> tuple[np.ndarray, np.ndarray]:
    """Apply the decoding rules to one step's logits [V].

    Returns (probs [V], kept [V] bool): the distribution the choice is drawn from
    (zero outside ``kept``) and which tokens survived suppression, top-k and top-p.
    """
    scaled = logits.astype(np.float64).copy()
    if settings.suppressed_ids:
        scaled[list(settings.suppressed_ids)] = -np.inf
    if not settings.greedy:
        scaled = scaled / settings.temperature
    kept = np.isfinite(scaled)
    if not settings.greedy:
        if settings.top_k and settings.top_k < kept.sum():
            kth = np.sort(scaled[kept])[-settings.top_k]
            kept &= scaled >= kth
        if settings.top_p < 1.0:
            probs = softmax(np.where(kept, scaled, -np.inf))
            order = np.argsort(-probs, kind="stable")
            cumulative = np.cumsum(probs[order])
            # keep the smallest prefix whose mass reaches top_p (always at least one token)
            cut = int(np.searchsorted(cumulative, settings.top_p) + 1)
            nucleus = np.zeros_like(kept)
            nucleus[order[:cut]] = True
            kept &= nucleus
    probs = softmax(np.where(kept, scaled, -np.inf))
    return probs, kept


def choose_token(logits: np.ndarray, settings: SamplingSettings, step_index: int) -> int:
    """The next token id under ``settings``; sampling is reproducible per (seed, step)."""
    probs, kept = filtered_distribution(logits, settings)
    if settings.greedy:
        masked = np.where(kept, logits, -np.inf)
        return int(np.argmax(masked))
    rng = np.random.default_rng([settings.seed, step_index])
    return int(rng.choice(probs.shape[0], p=probs.astype(np.float64) / probs.sum()))
