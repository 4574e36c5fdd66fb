"""A decoding session without Streamlit: the generated tokens and the four things a student
does to them (advance, back, force, reset), over steps computed by a model's step function.

The state is one list of token ids (``generated``); the UI keeps that list in its session
state and binds its buttons to these methods. Every step is a call of ``step_fn`` on a
context, so a cached ``step_fn`` makes moving back and forth free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from explorer.decoding import SamplingSettings, choose_token, entropy_bits, filtered_distribution
from explorer.text import InputError
from explorer.trace import DecodingStep


@dataclass
class Decoding:
    """What one run of the session shows: steps[i] produced generated[i]; while decoding can go on,
    steps[-1] is the frontier (the distribution the next token will come from)."""

    start_ids: np.ndarray  # [P] prompt (decoder-only) or start tokens (encoder-decoder)
    generated: list[int]
    steps: list[DecodingStep]  # len(generated) + 1, or len(generated) once finished (nothing comes next)
    settings: list[SamplingSettings]  # the rules in force at each step (suppression can vary)


@dataclass
class DecodingSession:
    start_ids: np.ndarray  # [P]
    step_fn: Callable[[tuple[int, ...]], DecodingStep]  # context ids -> the step after them
    settings_for: Callable[[int], SamplingSettings]  # index of the token to choose -> its rules
    eos_ids: set[int]
    max_tokens: int = 128
    generated: list[int] = field(default_factory=list)  # mutated in place: the caller owns the list
    vocab_size: int | None = None  # ids a link may carry are 0 .. vocab_size - 1 (None: not checked)

    @property
    def prompt(self) -> tuple[int, ...]:
        return tuple(int(i) for i in self.start_ids)

    def finished(self) -> bool:
        ids = self.generated
        return (bool(ids) and ids[-1] in self.eos_ids) or len(ids) >= self.max_tokens

    def ended_by_model(self) -> bool:
        """The last token is the model's end-of-sequence token (not the length limit)."""
        return bool(self.generated) and self.generated[-1] in self.eos_ids

    def advance(self, n: int = 1) -> None:
        """Choose up to ``n`` more tokens with the decoding rules (stops at EOS or the limit)."""
        ids = self.generated
        for _ in range(n):
            if self.finished():
                break
            current = self.step_fn(self.prompt + tuple(ids))
            ids.append(choose_token(current.logits, self.settings_for(len(ids)), len(ids)))

    def back(self) -> None:
        if self.generated:
            self.generated.pop()

    def force(self, token: int | None) -> None:
        """Append ``token`` instead of the rules' choice (ignored once decoding has finished)."""
        if token is not None and not self.finished():
            self.generated.append(int(token))

    def reset(self) -> None:
        self.generated.clear()

    def snapshot(self) -> Decoding:
        """Every step so far (each a cached forward), and the rules in force at each."""
        ids = list(self.generated)
        # No frontier after the end-of-sequence token or at the length limit: nothing is decoded after
        # either. (With no token at all the frontier stays: at the model's length limit its forward
        # refuses with a message the page shows.)
        count = len(ids) if self.finished() and ids else len(ids) + 1
        steps = [self.step_fn(self.prompt + tuple(ids[:i])) for i in range(count)]
        return Decoding(
            start_ids=self.start_ids,
            generated=ids,
            steps=steps,
            settings=[self.settings_for(i) for i in range(len(steps))],
        )


def parse_token_ids(raw: str, vocab_size: int | None, limit: int) -> list[int]:
    """The generated ids a shared link carries ("1,2,3"), checked against the vocabulary and the
    length limit before any model sees them; InputError (one sentence) otherwise."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    top = f"{vocab_size - 1:,}" if vocab_size else "the vocabulary's last id"
    problem = (
        f"This link's generated tokens were not used: they must be whole numbers from 0 to {top}, separated by "
        f"commas, at most {limit} of them. The page starts from the prompt instead."
    )
    if len(parts) > limit or any(not p.isascii() or not p.isdigit() or len(p) > 9 for p in parts):
        raise InputError(problem)
    ids = [int(p) for p in parts]
    if vocab_size is not None and any(i >= vocab_size for i in ids):
        raise InputError(problem)
    return ids


def history(decoding: Decoding) -> tuple[list[float], list[float]]:
    """Entropy (bits) of each step's full distribution and the chosen token's probability."""
    entropies = [entropy_bits(s.probs) for s in decoding.steps[: len(decoding.generated)]]
    chosen = [float(s.probs[t]) for s, t in zip(decoding.steps, decoding.generated)]
    return entropies, chosen


def kept_mask(step: DecodingStep, settings: SamplingSettings) -> np.ndarray:
    """[V] True where the decoding rules still allow the token."""
    return filtered_distribution(step.logits, settings)[1]
