"""The README's card block is what the page's code makes of the stored results, the stored results
are what the cards measure, and the shipped held-out sentences are the corpus's."""

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.experiments import prompts, report
from explorer.experiments import statistics as stats

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"


def summary(model, card, verdict, **changes):
    fields = dict(model=model, key=card, card=card, quantity="q", prompt_set="everyday-sentences", prompts=12,
                  measured=0.5, spread=0.1, null_mean=0.2, null_cut=0.3, direction=1, share_beyond=0.9,
                  verdict=verdict, chance=0.125, chance_note="uniform", null_note="shuffled", by_layer="",
                  published="'words'", source="paper")  # fmt: skip
    return {**fields, **changes}


def test_the_readme_block_is_written_from_the_stored_results_by_the_pages_code():
    stored = report.load_results()
    block = report.readme_section((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block == report.readme_block(stored)
    assert stats.VERDICT_RULE in block
    models = {s["model"] for s in stored}
    assert models == {"SmolLM2-135M", "DistilBERT fill-mask", "tiny MoE (project)", "translator (project)"}
    assert all(s["prompts"] >= 10 for s in stored)  # '±' is the spread over at least 10 prompts, on every card
    assert all(s["verdict"] in stats.VERDICTS for s in stored)


def test_the_verdict_paragraph_and_the_rows():
    rows = [
        summary("A", "sink", stats.REPRODUCES),
        summary("A", "routing", stats.NOT_HERE),
        summary("B", "sink", stats.REPRODUCES),
        summary("B", "depth", stats.INCONCLUSIVE, direction=-1),
    ]
    text = report.what_reproduces(rows)
    assert text == ("**Reproduces here**: A: sink; B: sink. **Inconclusive**: B: depth. **Not here**: A: routing.")
    assert report.what_reproduces(rows[:2]) == "**Reproduces here**: sink. **Not here**: routing."
    row = report.row(rows[3])
    assert row["measured ± sd over prompts"] == "0.500 ± 0.100 (12)"
    assert row["null: mean / cut"] == "0.200 / 0.300 (5th)" and row["beyond the cut"] == "90%"
    readme = "intro\n" + report.README_START + "\nold\n" + report.README_END + "\nrest\n"
    assert report.readme_section(readme) == "old"
    with pytest.raises(ValueError):
        report.readme_section("no markers")


def test_the_stored_routing_cards_are_what_the_tiny_moe_measures_now():
    """The headline of issue 23 (Mixtral's locality against its shuffled null), measured afresh."""
    from explorer.experiments import findings, readings
    from explorer.models.loading import load_model

    loaded = load_model("embedded:moe-tiny-austen", device="cpu")
    stored = {s["key"]: s for s in report.load_results() if s["model"] == "tiny MoE (project)"}
    fresh = findings.routing_cards(loaded, readings.sentence_traces(loaded))
    for card in fresh:
        now = report.summary(card, "tiny MoE (project)")
        for field in ("measured", "spread", "null_mean", "null_cut", "share_beyond", "verdict", "by_layer"):
            assert now[field] == stored[card.key][field], (card.key, field)
    same_first = stored["same-first"]
    assert same_first["verdict"] == stats.NOT_HERE and same_first["chance"] == 0.125
    assert abs(same_first["measured"] - same_first["null_mean"]) < 0.01  # at its null, far above 1/N


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the training corpus is not beside the checkout (see README)")
def test_the_shipped_held_out_sentences_are_the_corpus_held_out_text():
    shipped = json.loads(prompts.HELD_OUT_FILE.read_text(encoding="utf-8"))
    assert shipped == prompts.held_out_sentences(CORPUS)
    fit, test = prompts.held_out()
    assert len(test) >= 10 and not set(fit) & set(test)
    assert np.all([8 <= len(s.split()) <= 40 for s in fit + test])
