"""Print every replication card measured on a model; ``--write`` stores the embedded defaults'
cards and rewrites the README's card block from them.

python -m explorer.experiments --model embedded:SmolLM2-135M-Instruct
python -m explorer.experiments --write            # the defaults, stored and written into README.md
python -m explorer.experiments --held-out-from ../shared/corpus   # rebuild the shipped held-out sentences
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from explorer.adapters import family, interventions
from explorer.adapters.common import tokenize
from explorer.adapters.lookup import adapter_for
from explorer.experiments import measure, prompts, readings, report
from explorer.experiments.prompts import SENTENCES
from explorer.models.loading import load_model

# The embedded defaults the README reports, with the names its table gives them.
DEFAULTS = {
    "embedded:SmolLM2-135M-Instruct": "SmolLM2-135M",
    "embedded:distilbert-grammar-mlm": "DistilBERT fill-mask",
    "embedded:moe-tiny-austen": "tiny MoE (project)",
    "embedded:marian-en-pt-tiny": "translator (project)",
}
README = Path(__file__).resolve().parent.parent.parent / "README.md"


def patching_line(loaded) -> str:
    """One activation-patching run: the capital pair for a decoder, its masked twin for an encoder."""
    pairs = readings.patchable_pairs(loaded)
    if not pairs:
        return "patching skipped: no prompt pair fits this model's tokenizer (equal lengths, one-token answers)"
    pair = next((p for p in pairs if p.name == "capital"), pairs[0])
    setup = interventions.patching_setup(loaded, pair)
    result = interventions.patch_pair(loaded, setup)
    changed = int(np.argmax(setup.clean != setup.corrupted))
    return (
        f"patching '{pair.name}' ({setup.metric}): clean {result.clean_metric:.2f}, "
        f"corrupted {result.corrupted_metric:.2f}; share "
        f"restored by the changed word at each depth: {np.round(result.restored[:, changed], 2).tolist()}; by the read "
        f"position: {np.round(result.restored[:, result.position], 2).tolist()}"
    )


def interventions_lines(loaded, tax) -> list[str]:
    lines = []
    if tax is not None:
        kinds = dict(Counter(tax.labels.ravel().tolist()))
        lines.append(f"head taxonomy (sink removed, repeated random tokens): {kinds}")
        # switch off the three heads with the highest induction score, on the same repeated tokens
        ids, _ = readings.random_token_ids(loaded, seed=0)
        top = np.argsort(-np.nan_to_num(tax.induction).ravel())[:3]
        heads = [tuple(int(x) for x in np.unravel_index(i, tax.induction.shape)) for i in top]
        lines.append("intervention: " + interventions.head_ablation(loaded, ids, heads).summary())
    offered = adapter_for(loaded).experiments  # what the Experiments page offers this family
    if family.SINK in offered:
        lines.append("intervention: " + interventions.sink_removal(loaded, tokenize(loaded, SENTENCES[0])[0]).summary())
    if family.PATCHING in offered:
        lines.append(patching_line(loaded))
    if family.ROUTING in offered:
        sweep = interventions.top_k_sweep(loaded, tokenize(loaded, " ".join(SENTENCES[:4]))[0])
        steps = ", ".join(f"k={k}: loss {loss:.3f}, {a / 1e6:.2f} M active"
                          for k, loss, a in zip(sweep.ks, sweep.loss, sweep.active_params))  # fmt: skip
        lines.append(f"top-k sweep: {steps} (trained k = {sweep.trained_k})")
    return lines


def report_model(model_id: str, with_interventions: bool = True) -> list[dict]:
    """Print a model's cards (and interventions); return their summaries."""
    loaded = load_model(model_id, device="cpu")
    print(f"\n== {model_id} ({loaded.arch.display}, {loaded.family}) ==", flush=True)
    started = time.perf_counter()
    cards, tax = measure.measure_all(loaded)
    seconds = time.perf_counter() - started
    for card in cards:
        print(" ", card.line())
    print(f"  (cards in {seconds:.1f} s; estimated before: {measure.estimate_seconds(loaded):.0f} s)", flush=True)
    if with_interventions:
        for line in interventions_lines(loaded, tax):
            print("  " + line)
    return [report.summary(card, DEFAULTS.get(model_id, model_id)) for card in cards]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model id (repeatable); default: the embedded defaults")
    stored = report.RESULTS_FILE.name
    parser.add_argument("--write", action="store_true", help=f"store the defaults' cards in {stored}, rewrite README")
    parser.add_argument(
        "--held-out-from", type=Path, default=None, metavar="CORPUS",
        help="rebuild the shipped held-out sentences from a corpus folder, then stop",
    )  # fmt: skip
    args = parser.parse_args()
    if args.held_out_from is not None:
        data = prompts.held_out_sentences(args.held_out_from)
        prompts.HELD_OUT_FILE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{len(data['fit'])} fitting and {len(data['test'])} test sentences -> {prompts.HELD_OUT_FILE}")
        return
    models = list(DEFAULTS) if args.write or not args.model else args.model
    summaries = [s for model_id in models for s in report_model(model_id, with_interventions=not args.write)]
    if args.write:
        report.save_results(summaries, f"python -m explorer.experiments --write, {time.strftime('%Y-%m-%d')}")
        report.write_readme(README, report.readme_block(summaries))
        print(f"\nstored {report.RESULTS_FILE} and rewrote the card block of {README}")


if __name__ == "__main__":
    main()
