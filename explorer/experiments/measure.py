"""The replication cards' plan on a loaded model: one step per named prompt set.

A step reads its prompt set once (explorer.experiments.readings: one traced forward per prompt, and
the lens of those hidden states where the step measures prediction depth), then computes every card
of the set from that reading (explorer.experiments.findings: statistics of the traces, no model
call). Which steps a model gets is its family adapter's ``card_steps``. A page caches each step per
(model, prompt set) and shows progress between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from explorer.adapters import batched, family
from explorer.adapters.lookup import adapter_for
from explorer.experiments import findings, readings
from explorer.experiments import statistics as stats
from explorer.experiments.prompts import PROMPT_SETS, SENTENCES, held_out
from explorer.experiments.statistics import Card
from explorer.models.accounting import account


@dataclass(frozen=True)
class StepResult:
    """What one prompt set yields: its cards, and the head taxonomy where the set is the repeated
    random tokens (read from the same traces)."""

    cards: tuple[Card, ...]
    taxonomy: stats.Taxonomy | None = None


@dataclass(frozen=True)
class CardStep:
    """One part of the card run: the prompt set it reads (one forward per prompt) and what it yields."""

    key: str  # the prompt set: the cache key beside the model
    label: str
    run: Callable[[], StepResult]
    tokens: Callable[[], int]  # tokens the step's forwards read (the estimate before a click)
    name: str = ""  # the step (explorer.adapters.family.CARD_STEPS)


def _sentences_step(loaded) -> StepResult:
    adapter = adapter_for(loaded)
    traces = readings.sentence_traces(loaded)
    lens = readings.lens_from_top(loaded, traces) if adapter.causal else None  # the next token at every position
    out = [findings.sink_card(loaded, traces), findings.anisotropy_card(loaded, traces)]
    if lens is not None:
        out.append(findings.prediction_depth_card(loaded, lens))
    if adapter.routed(loaded):
        out += findings.routing_cards(loaded, traces)
    return StepResult(tuple(out))


def _masked_step(loaded) -> StepResult:
    prompts = readings.masked_sentence_prompts(loaded)
    traces = readings.read(loaded, [ids for ids, _ in prompts])
    lens = readings.masked_lens(loaded, traces, [chosen for _, chosen in prompts])
    card = findings.prediction_depth_card(loaded, lens, family.MASKED_SENTENCES, "everyday-sentences-masked")
    return StepResult((card,))


def _words_step(loaded) -> StepResult:
    prompts = readings.word_context_prompts(loaded)
    traces = readings.read(loaded, [ids for ids, _, _ in prompts])
    card = findings.self_similarity_card(loaded, traces, [p for _, p, _ in prompts], [g for _, _, g in prompts])
    return StepResult(() if card is None else (card,))


def _random_step(loaded) -> StepResult:
    prompts = readings.random_token_prompts(loaded)
    traces = readings.read(loaded, [ids for ids, _ in prompts], with_logits=True)
    cards = findings.induction_cards(loaded, traces, [s for _, s in prompts])
    return StepResult(tuple(cards), findings.taxonomy_from(traces[0]))


def _held_out_step(loaded) -> StepResult:
    fit, test = held_out()
    traces = readings.read(loaded, readings.sentence_ids(loaded, fit + test))
    return StepResult((findings.token_id_card(loaded, traces[: len(fit)], traces[len(fit) :]),))


def _pairs_step(loaded) -> StepResult:
    return StepResult(tuple(findings.clark_cards(loaded, readings.read(loaded, readings.sentence_pair_ids(loaded)))))


def _translation_step(loaded) -> StepResult:
    lens = readings.translation_lens(loaded)
    return StepResult((findings.prediction_depth_card(loaded, lens, family.TRANSLATIONS),))


def _count(loaded, prompts) -> int:
    return int(sum(len(p) for p in prompts))


def _sentences_label(loaded) -> str:
    adapter = adapter_for(loaded)
    return ("everyday sentences: sink, anisotropy" + (", depth" if adapter.causal else "")
            + (", routing" if adapter.routed(loaded) else ""))  # fmt: skip


# Each card step (family.CARD_STEPS): (its prompt set, the cache key beside the model; its label; what it
# yields; the prompts it reads, for the estimate).
STEPS: dict[str, tuple[str, Callable, Callable, Callable]] = {
    family.SENTENCES: ("everyday-sentences", _sentences_label, _sentences_step, readings.sentence_ids),
    family.MASKED_SENTENCES: ("everyday-sentences-masked", lambda loaded: "masked sentences: prediction depth",
                              _masked_step, lambda loaded: [i for i, _ in readings.masked_sentence_prompts(loaded)]),
    family.WORDS: ("word-in-contexts", lambda loaded: "one word in many contexts: self-similarity", _words_step,
                   lambda loaded: [ids for ids, _, _ in readings.word_context_prompts(loaded)]),
    family.RANDOM_TOKENS: ("repeated-random-tokens", lambda loaded: "repeated random tokens: induction, head kinds",
                           _random_step, lambda loaded: [ids for ids, _ in readings.random_token_prompts(loaded)]),
    family.HELD_OUT: ("austen-held-out", lambda loaded: "held-out corpus sentences: token-id routing", _held_out_step,
                      lambda loaded: readings.sentence_ids(loaded, sum(held_out(), ()))),
    family.SENTENCE_PAIRS: ("sentence-pairs", lambda loaded: "sentence pairs: [CLS], [SEP], punctuation",
                            _pairs_step, readings.sentence_pair_ids),
    family.TRANSLATIONS: ("everyday-sentences", lambda loaded: "everyday sentences: prediction depth",
                          _translation_step, readings.sentence_ids),
}  # fmt: skip


def card_plan(loaded) -> list[CardStep]:
    """The steps that measure every card applying to the loaded model (its family adapter's
    ``card_steps``; ValueError when none applies)."""

    def step(name: str) -> CardStep:
        key, label, run, prompts = STEPS[name]
        return CardStep(key, label(loaded), lambda: run(loaded), lambda: _count(loaded, prompts(loaded)), name)

    return [step(name) for name in adapter_for(loaded).card_steps(loaded)]


def measure_all(loaded) -> tuple[list[Card], stats.Taxonomy | None]:
    """Every card that applies to the loaded model's family, and its head taxonomy (None for an encoder-decoder)."""
    results = [step.run() for step in card_plan(loaded)]
    taxonomies = [r.taxonomy for r in results if r.taxonomy is not None]
    return [card for r in results for card in r.cards], (taxonomies[0] if taxonomies else None)


def all_cards(loaded) -> list[Card]:
    return measure_all(loaded)[0]


def taxonomy(loaded, seed: int = 0) -> stats.Taxonomy:
    """Head kinds on repeated random tokens (seed 0 of the card's prompt set)."""
    ids, _ = readings.random_token_ids(loaded, seed)
    return findings.taxonomy_from(readings.read(loaded, [ids])[0])


# The estimate a page shows before the click, fitted to the embedded defaults on one core of this project's
# 2-core machine (torch with 1 thread: SmolLM2 8.0 s, the DistilBERT 3.4 s, the tiny MoE 2.1 s, the translator
# 3.1 s, each within 25% of its estimate); two cores that nothing else uses are faster still.
SECONDS_FIXED = 1.0  # tokenising, 1,000 null draws per prompt and card, the statistics

FLOPS_PER_SECOND = 3e10

SECONDS_PER_FORWARD = 0.005  # a forward's own overhead (Python, hooks, copies), beside its arithmetic

LENS_DEPTHS = 5  # depths the lens reads per position from the top before it disagrees (SmolLM2: 4.7)

GREEDY_STEPS = 30  # an encoder-decoder's output tokens per sentence, one decoder forward each


def estimate_seconds(loaded, steps: list[CardStep] | None = None) -> float:
    """Before a click: about how long the card set takes, from the tokens its prompt sets hold and the
    model's arithmetic per token (parameters a token passes through, and the vocabulary head where
    the cards read it: every position of the repeated tokens, a few depths of the sentences' lens)."""
    steps = card_plan(loaded) if steps is None else steps
    adapter = adapter_for(loaded)
    tokens = {step.name: step.tokens() for step in steps}
    acc = account(loaded.model.config)
    per_token = acc.active - acc.by_role.get("embeddings", 0) - acc.by_role.get("head", 0)
    flops = 2 * per_token * sum(tokens.values())
    forwards = sum(-(-n // batched.BATCH_TOKENS) for n in tokens.values())
    # the vocabulary head over every repeated token, and the sentences' logit lens where it is read (causal)
    lens_rows = LENS_DEPTHS * tokens.get(family.SENTENCES, 0) if adapter.causal else 0
    rows = tokens.get(family.RANDOM_TOKENS, 0) + lens_rows
    if rows:
        vocab, width = loaded.model.get_output_embeddings().weight.shape
        flops += 2 * width * vocab * rows
    if adapter.encoder_decoder(loaded):
        forwards += len(SENTENCES) * GREEDY_STEPS
    return SECONDS_FIXED + flops / FLOPS_PER_SECOND + SECONDS_PER_FORWARD * forwards


__all__ = ["all_cards", "card_plan", "measure_all", "taxonomy", "PROMPT_SETS"]
