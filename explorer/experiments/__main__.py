"""Print every replication card measured on a model.

python -m explorer.experiments --model embedded:SmolLM2-135M-Instruct
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

from explorer.adapters import interventions
from explorer.adapters.common import tokenize
from explorer.experiments import measure
from explorer.experiments.prompts import SENTENCES
from explorer.models.loading import load_model

DEFAULTS = ("embedded:SmolLM2-135M-Instruct", "embedded:distilbert-grammar-mlm", "embedded:moe-tiny-austen")


def held_out_halves(folder: Path, limit: int = 60) -> tuple[list[str], list[str]]:
    from explorer.train.corpus import load_corpus

    held = [doc for doc in load_corpus(folder).held_out if len(doc.split()) >= 8][:limit]
    return held[: len(held) // 2], held[len(held) // 2 :]


def patching_line(loaded) -> str:
    """One activation-patching run: the capital pair for a decoder, its masked twin for an encoder."""
    pairs = measure.patchable_pairs(loaded)
    if not pairs:
        return "patching skipped: no prompt pair fits this model's tokenizer (equal lengths, one-token answers)"
    pair = next((p for p in pairs if p.name == "capital"), pairs[0])
    setup = measure.patching_setup(loaded, pair)
    result = interventions.activation_patching(
        loaded, setup.clean, setup.corrupted, setup.clean_answer, setup.corrupted_answer, setup.position, setup.metric
    )
    changed = int(np.argmax(setup.clean != setup.corrupted))
    return (
        f"patching '{pair.name}' ({setup.metric}): clean {result.clean_metric:.2f}, "
        f"corrupted {result.corrupted_metric:.2f}; share "
        f"restored by the changed word at each depth: {np.round(result.restored[:, changed], 2).tolist()}; by the read "
        f"position: {np.round(result.restored[:, result.position], 2).tolist()}"
    )


def report(model_id: str, corpus: Path | None) -> None:
    started = time.perf_counter()
    loaded = load_model(model_id, device="cpu")
    print(f"\n== {model_id} ({loaded.arch.display}, {loaded.family}) ==")
    texts = held_out_halves(corpus) if corpus is not None and loaded.family == "moe" else None
    for card in measure.all_cards(loaded, texts):
        print(" ", card.line())
    if loaded.family != "encoder":
        tax = measure.taxonomy(loaded)
        print("  head taxonomy (sink removed, repeated random tokens):", dict(Counter(tax.labels.ravel().tolist())))
        # switch off the three heads with the highest induction score, on the same repeated tokens
        ids, _ = measure.random_token_ids(loaded, seed=0)
        top = np.argsort(-np.nan_to_num(tax.induction).ravel())[:3]
        heads = [tuple(int(x) for x in np.unravel_index(i, tax.induction.shape)) for i in top]
        print("  intervention:", interventions.head_ablation(loaded, ids, heads).summary())
    print("  intervention:", interventions.sink_removal(loaded, tokenize(loaded, SENTENCES[0])[0]).summary())
    print("  " + patching_line(loaded))
    if loaded.family == "moe":
        sweep = interventions.top_k_sweep(loaded, tokenize(loaded, " ".join(SENTENCES[:4]))[0])
        print(
            "  top-k sweep:",
            ", ".join(
                f"k={k}: loss {loss:.3f}, {a / 1e6:.2f} M active"
                for k, loss, a in zip(sweep.ks, sweep.loss, sweep.active_params)
            ),
            f"(trained k = {sweep.trained_k})",
        )
    print(f"  ({time.perf_counter() - started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", action="append", help="model id (repeatable); default: the embedded defaults")
    parser.add_argument(
        "--corpus", type=Path, default=None, help="corpus folder: token-id routing fits and tests on its held-out text"
    )
    args = parser.parse_args()
    for model_id in args.model or DEFAULTS:
        report(model_id, args.corpus)


if __name__ == "__main__":
    main()
