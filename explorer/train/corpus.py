"""The training text: public-domain novels and WordNet glosses, with a fixed hold-out.

The last 5% of every file (cut at a line boundary) is validation text and never trained on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

HOLD_OUT = 0.05


@dataclass(frozen=True)
class Split:
    train: list[str]  # documents: a paragraph of a novel, or one WordNet synset line
    held_out: list[str]


def _documents(text: str, source: str) -> list[str]:
    if source.startswith("wordnet"):
        return [line.strip() for line in text.splitlines() if line.strip()]
    # novels: paragraphs are separated by blank lines; lines inside one are re-joined
    paragraphs = re.split(r"\n\s*\n", text)
    return [" ".join(p.split()) for p in paragraphs if len(p.split()) >= 3]


def split_file(path: Path) -> tuple[list[str], list[str]]:
    text = path.read_text(encoding="utf-8")
    cut = int(len(text) * (1 - HOLD_OUT))
    cut = text.rfind("\n", 0, cut) + 1 or cut  # a line boundary, so no line is in both halves
    return _documents(text[:cut], path.stem), _documents(text[cut:], path.stem)


def load_corpus(folder: Path) -> Split:
    files = sorted(Path(folder).glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"no .txt files in {folder} (see README: 'Training data')")
    train, held = [], []
    for path in files:
        t, h = split_file(path)
        train += t
        held += h
    return Split(train=train, held_out=held)
