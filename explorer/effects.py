"""What an intervention returns: the unmodified and the modified run side by side (pure numpy).

Below the adapters, beside the trace: ``explorer.adapters.interventions`` builds these records, the
experiments, plots and pages read them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.decoding import log_softmax
from explorer.trace import _read_only


@dataclass(frozen=True)
class InterventionResult:
    """One input read twice: as the model is (base) and with one change (modified).

    token_ids         [T]   the input
    positions         [P]   positions whose output distribution is scored
    targets           [P]   the token scored there: the observed next token for a causal
                            model (positions 0..T-2, targets ids[1:]); the input token itself
                            for an encoder (masked-LM reconstruction)
    base_logprob      [P]   log p(target) unmodified;  modified_logprob [P] with the change
    kl                [T]   KL(base || modified) of the whole output distribution, nats
    base_top1         [T]   argmax of each position's distribution;  modified_top1 [T]
    """

    description: str
    token_ids: np.ndarray
    positions: np.ndarray
    targets: np.ndarray
    base_logprob: np.ndarray
    modified_logprob: np.ndarray
    kl: np.ndarray
    base_top1: np.ndarray
    modified_top1: np.ndarray

    def __post_init__(self) -> None:
        t, p = len(self.token_ids), len(self.positions)
        for name, size in (
            ("targets", p),
            ("base_logprob", p),
            ("modified_logprob", p),
            ("kl", t),
            ("base_top1", t),
            ("modified_top1", t),
        ):
            if getattr(self, name).shape != (size,):
                raise ValueError(f"{name} {getattr(self, name).shape} != ({size},)")
        _read_only(self)

    @property
    def flipped(self) -> np.ndarray:
        """[T] True where the top-1 prediction changed."""
        return self.base_top1 != self.modified_top1

    @property
    def base_loss(self) -> float:
        return float(-self.base_logprob.mean())

    @property
    def modified_loss(self) -> float:
        return float(-self.modified_logprob.mean())

    @property
    def mean_kl(self) -> float:
        return float(self.kl.mean())

    def summary(self) -> str:
        return (
            f"{self.description}: loss {self.base_loss:.3f} -> {self.modified_loss:.3f} nats, "
            f"mean KL {self.mean_kl:.4f}, top-1 flipped at {int(self.flipped.sum())}/{len(self.flipped)} positions"
        )


def compare(
    description: str, token_ids: np.ndarray, base_logits: np.ndarray, modified_logits: np.ndarray, causal: bool
) -> InterventionResult:
    """Side-by-side result from the two runs' logits [T, V]."""
    token_ids = np.asarray(token_ids, dtype=np.int64)
    base, modified = log_softmax(base_logits), log_softmax(modified_logits)  # [T, V]
    if causal:
        positions, targets = np.arange(len(token_ids) - 1), token_ids[1:]
    else:
        positions, targets = np.arange(len(token_ids)), token_ids
    kl = (np.exp(base) * (base - modified)).sum(axis=-1)  # [T]
    return InterventionResult(
        description=description,
        token_ids=token_ids,
        positions=positions,
        targets=targets.copy(),
        base_logprob=base[positions, targets],
        modified_logprob=modified[positions, targets],
        kl=np.maximum(kl, 0.0),
        base_top1=base.argmax(-1),
        modified_top1=modified.argmax(-1),
    )


@dataclass(frozen=True)
class PatchingResult:
    """Activation patching between a clean and a corrupted prompt of equal length.

    The metric m, read at ``position`` (the last token for a decoder, the [MASK] for an
    encoder), is ``metric``: 'logit_diff' = logit(clean answer) - logit(corrupted answer), or
    'probability' = p(clean answer).

    clean_ids, corrupted_ids  [T]
    patched                   [L+1, T] m after copying the clean residual stream at depth d
                              (0 = embeddings, d = input of block d, L = output of the last
                              block before any final norm) and position t into the corrupted run
    restored                  [L+1, T] (patched - corrupted_metric) / (clean_metric - corrupted_metric):
                              1 = this single patch restores the clean answer's margin
    """

    clean_ids: np.ndarray
    corrupted_ids: np.ndarray
    clean_answer: int
    corrupted_answer: int
    position: int
    metric: str
    clean_metric: float
    corrupted_metric: float
    patched: np.ndarray

    def __post_init__(self) -> None:
        if self.patched.ndim != 2 or self.patched.shape[1] != len(self.clean_ids):
            raise ValueError(f"patched {self.patched.shape} for {len(self.clean_ids)} tokens")
        _read_only(self)

    @property
    def restored(self) -> np.ndarray:
        gap = self.clean_metric - self.corrupted_metric
        return (self.patched - self.corrupted_metric) / gap if gap else np.full(self.patched.shape, np.nan)


@dataclass(frozen=True)
class TopKSweep:
    """The same text run with top-k = each of ``ks`` instead of the trained k.

    ks             [n] experts per token;  loss [n] mean next-token loss (nats)
    active_params  [n] parameters one token passes through with that k (explorer.models.accounting)
    """

    ks: np.ndarray
    loss: np.ndarray
    active_params: np.ndarray
    total_params: int
    trained_k: int

    def __post_init__(self) -> None:
        _read_only(self)


def mean_probs_by_token(runs: list[tuple[np.ndarray, np.ndarray]], vocab_size: int) -> np.ndarray:
    """[M, V, E] mean router probabilities of each token id over reference runs, each
    (token_ids [T], probs [M, T, E]); nan rows for ids that never occur. A router that
    'sees only the token id' routes every occurrence by its id's row."""
    m, _, e = runs[0][1].shape
    sums, counts = np.zeros((m, vocab_size, e)), np.zeros(vocab_size)
    for ids, probs in runs:
        for t, token in enumerate(ids):
            sums[:, token] += probs[:, t]
            counts[token] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts[None, :, None] > 0, sums / counts[None, :, None], np.nan)
