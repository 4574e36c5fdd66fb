"""The family interface: what pages, experiments, interventions, lessons and benchmarks ask of a family.

Every family's adapter module (the ``adapter`` string of its ``Family`` record in explorer/registry.py)
exposes ``ADAPTER``, an object that meets ``FamilyAdapter``; ``explorer.adapters.lookup.adapter_for``
finds it from a loaded model. Code outside the registry asks these questions instead of comparing
``loaded.family`` with a family's name, so a new family answers them in one place (its adapter), and
one that does not fails in ``tests/test_family_interface.py`` rather than in three pages.

Shapes follow explorer/trace.py: T tokens, L blocks (L+1 depths, 0 = embeddings), D hidden width,
V vocabulary.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

import numpy as np

from explorer.adapters.runs import FamilyRun
from explorer.trace import ForwardTrace, Seq2SeqTrace

# What a family's predictions are about (the answer a patching or an attribution explains). The same
# words as ``explorer.adapters.attribution.Target.kind``.
MASKED = "masked"  # the word at a [MASK] (the whole text is read at once: encoder-only)
NEXT = "next"  # the token after the text (decoder-only, MoE decoders)
OUTPUT = "output"  # the next output token, written over a source the encoder read (encoder-decoder)
ANSWERS = (MASKED, NEXT, OUTPUT)

# Head ablation: what replaces a switched-off head's output (explorer.adapters.interventions.HEAD_MODES).
# "prefix" (a running mean over the positions so far) means something only in a causal model.
HEAD_MODES_CAUSAL = ("zero", "mean", "prefix")
HEAD_MODES_BIDIRECTIONAL = ("zero", "mean")

# The experiments the Experiments page offers (its tools, by slug; the page gives each a label and a body).
SINK, HEADS, PATCHING, ROUTING, CROSS_ATTENTION, ATTRIBUTION, CARDS = (
    "sink", "heads", "patching", "routing", "cross-attention", "attribution", "cards")  # fmt: skip
EXPERIMENTS = (SINK, HEADS, PATCHING, ROUTING, CROSS_ATTENTION, ATTRIBUTION, CARDS)

# The steps of the replication cards' plan (explorer.experiments.measure.card_plan): each reads one
# prompt set once and yields the cards computed from those traces.
SENTENCES = "sentences"  # everyday sentences: sink, anisotropy (+ depth by the logit lens when causal, + routing)
MASKED_SENTENCES = "masked-sentences"  # everyday sentences, every 5th ordinary token masked: depth by the MLM head
WORDS = "words"  # one word in many contexts: self-similarity
RANDOM_TOKENS = "random-tokens"  # repeated random tokens: induction, head kinds
HELD_OUT = "held-out"  # held-out corpus sentences: token-id routing
SENTENCE_PAIRS = "sentence-pairs"  # sentence pairs as two segments: [CLS], [SEP], punctuation
TRANSLATIONS = "translations"  # everyday sentences translated: depth by the decoder's lens
CARD_STEPS = (SENTENCES, MASKED_SENTENCES, WORDS, RANDOM_TOKENS, HELD_OUT, SENTENCE_PAIRS, TRANSLATIONS)


@runtime_checkable
class FamilyAdapter(Protocol):
    """What every family answers. ``loaded`` is an explorer.models.building.LoadedModel of the family."""

    key: str
    """The ``Family`` record's key (explorer/registry.py) this adapter serves."""

    causal: bool
    """Whether each prediction reads only the tokens before it (a next token, or the next output token):
    False where every position sees the whole text (encoder-only). Decides the scored positions of an
    intervention (``effects.compare``), whether a running ("prefix") mean exists, the induction tools."""

    answer: str
    """What one prediction is (``ANSWERS``): ``MASKED`` the word at a [MASK], ``NEXT`` the token after the
    text, ``OUTPUT`` the next output token over a source. The position an activation patching reads (the
    mask, or the last token) and the answer an attribution explains."""

    keep_end: bool
    """Whether a text cut to a token limit keeps its closing special token ([SEP], </s>) in its last place
    (``adapters.common.tokenize(keep_end=...)``), as an encoder expects its input to end."""

    head_modes: tuple[str, ...]
    """What may replace a switched-off head's output (``HEAD_MODES_CAUSAL`` or ``HEAD_MODES_BIDIRECTIONAL``)."""

    experiments: tuple[str, ...]
    """The Experiments page's tools for this family (slugs of ``EXPERIMENTS``); the first opens with a result."""

    def trace(self, loaded, ids: np.ndarray, notes: tuple[str, ...] = (),
              with_logits: bool = True) -> ForwardTrace | Seq2SeqTrace:  # fmt: skip
        """One prompt alone through the family's forward, every output flag on.

        ids [T] token ids. A ForwardTrace (hidden_states [L+1, T, D], attentions [L, H, T, T],
        logits [T, V] unless ``with_logits`` is False and the family can skip its head, router for a
        routed model), or for an encoder-decoder a Seq2SeqTrace: the encoder reads ``ids``, the decoder
        its start ids."""
        ...

    def lens(self, loaded, hidden: np.ndarray) -> np.ndarray | None:
        """The family's own head read at every depth of one position: hidden [L+1, D] -> logits
        [L+1, V] (the last row equals the model's own output), None where the model has no such head."""
        ...

    def routed(self, loaded) -> bool:
        """Whether the model sends tokens to experts through a router (``moe.has_router``)."""
        ...

    def encoder_decoder(self, loaded) -> bool:
        """Whether the model writes its output over a separately encoded source (T5, Marian, Switch…)."""
        ...

    def card_steps(self, loaded) -> tuple[str, ...]:
        """The replication cards' plan for this model, as ``CARD_STEPS`` names in order; ValueError with
        one sentence when no card applies to it (a speech model, an encoder-decoder mixture)."""
        ...

    def compare_run(self, loaded, text: str, new_tokens: int = 8, speech=None) -> FamilyRun:
        """One measured run on ``text`` for the Compare page: an encoder pass, or up to ``new_tokens``
        greedy steps, each timed (``speech``: explorer.audio's clip, for a model that reads speech)."""
        ...


def problems(adapter) -> list[str]:
    """What keeps ``adapter`` from meeting ``FamilyAdapter``: missing members, values outside their
    vocabularies, methods whose parameters differ from the interface's. Empty when it meets it."""
    if not isinstance(adapter, FamilyAdapter):
        missing = [name for name in _members() if not hasattr(adapter, name)]
        return [f"missing {name}" for name in missing] or ["not a FamilyAdapter"]
    out = []
    for name, expected in _methods().items():
        got = list(inspect.signature(getattr(adapter, name)).parameters)
        if got != expected:
            out.append(f"{name}{tuple(got)} instead of {name}{tuple(expected)}")
    out += [f"answer {adapter.answer!r} not in {ANSWERS}"] if adapter.answer not in ANSWERS else []
    out += [f"experiment {e!r} not in {EXPERIMENTS}" for e in adapter.experiments if e not in EXPERIMENTS]
    if not set(adapter.head_modes) <= set(HEAD_MODES_CAUSAL) or ("prefix" in adapter.head_modes and not adapter.causal):
        out.append(f"head modes {adapter.head_modes} (a running mean needs a causal model)")
    return out


def _members() -> list[str]:
    return sorted(set(FamilyAdapter.__annotations__) | set(_methods()))


def _methods() -> dict[str, list[str]]:
    """Each method of the interface and its parameters after ``self``."""
    return {
        name: list(inspect.signature(fn).parameters)[1:]
        for name, fn in vars(FamilyAdapter).items()
        if inspect.isfunction(fn) and not name.startswith("_")
    }
