"""What the replication cards say, in tables and words: one code for the experiments page, the
command line and the README's card block (written between README_START and README_END by
``python -m explorer.experiments --write``, from the results it stores in RESULTS_FILE; a test
checks that the README's block is what this module makes of the stored results).

A card becomes a ``summary`` (plain numbers and text, JSON-ready); every table row and the
'what reproduces' paragraph are made from summaries, so the page (live cards) and the README
(stored cards) cannot say different things about the same numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from explorer.experiments.statistics import INCONCLUSIVE, NOT_HERE, REPRODUCES, VERDICT_RULE, Card

README_START, README_END = "<!-- cards:start -->", "<!-- cards:end -->"
RESULTS_FILE = Path(__file__).with_name("measured_defaults.json")
VERDICT_ORDER = (REPRODUCES, INCONCLUSIVE, NOT_HERE)


def _number(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 3)


def by_layer_text(card: Card) -> str:
    """Per MoE layer values beside their null ('L0 0.120 (null 0.152) · L1 ...'), for the cards whose
    paper gives per-layer numbers (Mixtral's Table 5) or whose layers differ; '' otherwise."""
    if card.by_layer is None or card.layer_axis != "MoE layer (0 = the first MoE layer)":
        return ""
    values = np.asarray(card.by_layer, dtype=np.float64)
    nulls = card.null_by_layer
    parts = [
        f"L{i} {v:.3f}" + ("" if nulls is None else f" (null {nulls[i]:.3f})") for i, v in enumerate(values.tolist())
    ]
    return " · ".join(parts)


def summary(card: Card, model: str) -> dict:
    """A card as plain numbers and text (rounded to 3 decimals), as stored and shown."""
    return {
        "model": model,
        "key": card.key,
        "card": card.name,
        "quantity": card.quantity,
        "prompt_set": card.prompt_set,
        "prompts": card.prompts,
        "measured": _number(card.measured),
        "spread": _number(card.spread),
        "null_mean": _number(card.null_mean),
        "null_cut": _number(card.null_cut),
        "direction": card.direction,
        "share_beyond": _number(card.share_beyond),
        "verdict": card.verdict,
        "chance": _number(card.chance),
        "chance_note": card.chance_note,
        "null_note": card.null_note,
        "by_layer": by_layer_text(card),
        "published": card.published_text,
        "source": card.source,
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{0.0 if abs(value) < 5e-4 else value:.3f}"  # no '-0.000' for a null centred on zero


def row(s: dict) -> dict:
    """The columns of one card summary, on the page and in the README: short cells, so the table
    fits a narrow panel without scrolling sideways (the papers' words are a table of their own)."""
    side = "95th" if s["direction"] > 0 else "5th"
    return {
        "card": s["card"],
        "measured ± sd over prompts": f"{_fmt(s['measured'])} ± {_fmt(s['spread'])} ({s['prompts']})",
        "null: mean / cut": f"{_fmt(s['null_mean'])} / {_fmt(s['null_cut'])} ({side})",
        "beyond the cut": "—" if s["share_beyond"] is None else f"{s['share_beyond']:.0%}",
        "verdict": s["verdict"],
        "chance": _fmt(s["chance"]) + (" (ceiling)" if s["chance_note"].startswith("ceiling") else ""),
    }


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "/") for cell in r) + " |" for r in rows]
    return "\n".join(lines)


def what_reproduces(summaries: list[dict]) -> str:
    """One paragraph from the verdicts: for each verdict, the cards (and models) that got it."""
    models = list(dict.fromkeys(s["model"] for s in summaries))
    parts = []
    for verdict in VERDICT_ORDER:
        named = []
        for model in models:
            cards = [s["card"] for s in summaries if s["model"] == model and s["verdict"] == verdict]
            if cards:
                named.append((f"{model}: " if len(models) > 1 else "") + ", ".join(cards))
        if named:
            parts.append(f"**{verdict[0].upper() + verdict[1:]}**: " + "; ".join(named) + ".")
    return " ".join(parts)


def readme_block(summaries: list[dict]) -> str:
    """The README's card block: the rule, one row per (model, card), the papers' words once per
    card, and the paragraph of verdicts."""
    rows = []
    for s in summaries:
        cells = row(s)
        if s["by_layer"]:
            cells["measured ± sd over prompts"] += f"; by layer {s['by_layer']}"
        rows.append([s["model"], *cells.values()])
    papers = {}
    for s in summaries:
        papers.setdefault((s["card"].split(" (")[0], s["published"]), s["source"])
    return "\n\n".join(
        [
            VERDICT_RULE,
            _markdown_table(["model", *row(summaries[0])], rows),
            _markdown_table(
                ["card", "what the paper reports (its own words)", "source"],
                [[card, published, source] for (card, published), source in papers.items()],
            ),  # fmt: skip
            "What reproduces here, by that rule (written from the verdicts above by `explorer/experiments/report.py`; "
            "a verdict says whether a finding's direction stands out from its null, not whether it is as large as in "
            "the paper's model: compare the measured values with the papers' words for size): "
            + what_reproduces(summaries),
        ]
    )


def load_results(path: Path = RESULTS_FILE) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cards"]


def save_results(summaries: list[dict], note: str, path: Path = RESULTS_FILE) -> None:
    path.write_text(json.dumps({"note": note, "cards": summaries}, indent=1, ensure_ascii=False) + "\n", "utf-8")


def readme_section(readme: str) -> str:
    """The text between the card markers of a README."""
    match = re.search(re.escape(README_START) + r"\n(.*?)\n?" + re.escape(README_END), readme, re.S)
    if match is None:
        raise ValueError(f"the README has no {README_START} ... {README_END} block")
    return match.group(1)


def write_readme(path: Path, block: str) -> None:
    text = path.read_text(encoding="utf-8")
    readme_section(text)  # raises without the markers
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    path.write_text(pattern.sub(lambda _: f"{README_START}\n{block}\n{README_END}", text), encoding="utf-8")
