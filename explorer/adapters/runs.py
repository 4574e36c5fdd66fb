"""One measured run of a model on a text, the same record for every family (the compare page).

Each family adapter provides ``compare_run(loaded, text, new_tokens, speech) -> FamilyRun`` (explorer.adapters.family);
explorer.adapters.compare picks the adapter from the family's registry record.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FamilyRun:
    family: str
    model_id: str
    tokens: tuple[str, ...]  # what the model reads (for Whisper: the words it was told to hear)
    computes: str  # one sentence: what the output is
    output: str
    encoder_seconds: float  # one pass over the whole input (0 for decoder-only)
    step_seconds: tuple[float, ...]  # each autoregressive step (empty for encoder-only)
    total_parameters: int
    active_parameters: int
    notes: tuple[str, ...] = ()  # e.g. that the text was cut to the model's limit


def dense_parameters(loaded) -> tuple[int, int]:
    """(parameters in memory, parameters one token uses): the same for a dense model."""
    total = sum(p.numel() for p in loaded.model.parameters())
    return total, total
