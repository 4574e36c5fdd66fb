"""Which attribution method beats the random band, on what share of 30 prompts, per family default (issue 25).

``python -m benchmarks --attribution-share`` runs every method of explorer/adapters/attribution.py on 30
prompts per embedded default and counts the maps whose deletion and insertion curves beat 20 random orders
(``Faithfulness.beats_random``: comprehensiveness at or above the random 95th percentile and sufficiency at or
below the random 5th). What is explained on each prompt: the decoder's and the MoE's next token after the
sentence's first 60% of words (the model's own top choice); the encoder's top word at a [MASK] put in place
of the sentence's last word; the translator's middle output token of its greedy translation. Baselines are the
pages' defaults (``attribution.default_baseline``), integrated gradients with 32 steps.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from explorer.adapters import attribution, seq2seq
from explorer.experiments.prompts import SENTENCES

MORE = (  # 18 more everyday sentences written for this measurement (30 with SENTENCES)
    "The train to the coast leaves every morning at half past eight.",
    "Her grandmother grew tomatoes and beans behind the little cottage.",
    "We walked along the beach until the sun went down behind the hills.",
    "The doctor told him to rest for a week and drink plenty of water.",
    "The children built a castle of sand and decorated it with shells.",
    "A strong wind blew the leaves off the trees in the park.",
    "The museum is closed on Mondays but open late on Fridays.",
    "He forgot his umbrella on the bus and arrived at work soaking wet.",
    "The baker wakes up at four to prepare the bread for the village.",
    "They painted the kitchen yellow and hung new curtains in the window.",
    "The library lends books, films and music to everyone in the town.",
    "My brother plays the guitar in a band that practises in our garage.",
    "The cat slept all afternoon on the warm stones of the terrace.",
    "Snow covered the mountains, and the skiers waited for the lifts to open.",
    "The farmer sold his apples at the market every Saturday morning.",
    "She wrote a long letter to her friend who had moved to Canada.",
    "The bridge over the river was built more than two hundred years ago.",
    "Our neighbours invited us to dinner to celebrate their new baby.",
)
PROMPTS = SENTENCES + MORE


def _words(sentence: str) -> list[str]:
    return sentence.rstrip(".").split()


def problem(loaded, sentence: str) -> tuple[np.ndarray, attribution.Target]:
    """The input ids [T] and the target explained on one prompt (module docstring)."""
    tokenizer = loaded.tokenizer
    if attribution.explains_masks(loaded):
        words = _words(sentence)
        text = " ".join(words[:-1] + [tokenizer.mask_token]) + "."
        return np.asarray(tokenizer(text)["input_ids"]), attribution.Target.masked()
    if attribution.explains_outputs(loaded):
        ids = np.asarray(tokenizer(sentence)["input_ids"])
        output = seq2seq.greedy_decode(loaded, seq2seq.encode_ids(loaded, ids), 48)
        return ids, attribution.Target.output(output, len(output) // 2)
    words = _words(sentence)
    prefix = " ".join(words[: max(2, int(0.6 * len(words)))])
    return np.asarray(tokenizer(prefix)["input_ids"]), attribution.Target.next_token()


def shares(loaded, prompts=PROMPTS, orders: int = 20) -> list[dict]:
    """One row per method: the share of prompts whose map beats random on both curves, on each curve, and the
    median completeness error (integrated gradients)."""
    rows = {m: {"both": 0, "deletion": 0, "insertion": 0, "errors": [], "seconds": 0.0} for m in attribution.METHODS}
    for n, sentence in enumerate(prompts):
        ids, target = problem(loaded, sentence)
        baseline = attribution.default_baseline(loaded, target)
        for method in attribution.METHODS:
            mapped = attribution.explain(loaded, ids, target, method, steps=32, baseline=baseline)
            faithful = attribution.faithfulness(loaded, mapped, orders=orders)
            row = rows[method]
            row["both"] += faithful.beats_random
            row["deletion"] += faithful.beats_deletion
            row["insertion"] += faithful.beats_insertion
            row["seconds"] += mapped.seconds + faithful.seconds
            if mapped.completeness_error is not None:
                row["errors"].append(mapped.completeness_error)
        print(f"  {loaded.model_id}: prompt {n + 1}/{len(prompts)}", file=sys.stderr, flush=True)
    return [
        dict(
            method=m,
            prompts=len(prompts),
            both=r["both"],
            deletion=r["deletion"],
            insertion=r["insertion"],
            completeness=statistics.median(r["errors"]) if r["errors"] else None,
            seconds=r["seconds"],
        )
        for m, r in rows.items()
    ]


def attribution_share_section(table, defaults: dict[str, str]) -> None:
    from explorer.models.loading import load_model

    for family, model_id in defaults.items():
        loaded = load_model(model_id, device="cpu", family=family)
        began = time.perf_counter()
        for row in shares(loaded):
            n = row["prompts"]
            error = "" if row["completeness"] is None else f"; median completeness error {row['completeness']:.1%}"
            name = f"Attribution beats 20 random orders, {family} ({model_id}), {row['method']}"
            value = (
                f"{row['both']}/{n} prompts on both curves (deletion {row['deletion']}/{n}, insertion "
                f"{row['insertion']}/{n}){error}"
            )
            table.add(name, value)
            print(f"  | {name} | {value} |", file=sys.stderr, flush=True)  # kept if a later family is interrupted
        print(f"  {family}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
