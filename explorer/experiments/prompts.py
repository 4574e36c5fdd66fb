"""Named prompt sets the experiments and cards run on (fixed text, fixed seeds)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Everyday sentences for attention and geometry statistics (written for this project).
SENTENCES = (
    "The old man walked slowly to the harbour, where the boats were waiting for the morning tide.",
    "She opened the letter, read it twice, and put it back in the drawer without a word.",
    "Rain had fallen all night, so the roads were flooded and the school was closed.",
    "When the music stopped, everyone in the hall turned to look at the door.",
    "He bought bread, cheese and apples at the market, then cycled home along the river.",
    "The committee will meet on Tuesday to discuss the budget for next year.",
    "A small dog barked at the postman, who laughed and threw it a biscuit.",
    "After dinner they sat by the fire and told stories until midnight.",
    "The garden was full of roses, and the air smelled of summer.",
    "Nobody knew why the clock in the tower had stopped at seven.",
    "My sister lives in a flat near the station, on the third floor.",
    "The teacher asked the class to write a short essay about their holidays.",
)

# One word in several contexts (self-similarity, Ethayarajh 2019): the word, then sentences
# that contain it exactly once as a whole word.
WORD_CONTEXTS = {
    "bank": (
        "She sat on the bank of the river and watched the water.",
        "He went to the bank to ask for a loan.",
        "The bank closed early on Friday afternoon.",
        "Grass grew thick along the bank where the children played.",
        "My bank sent me a new card last week.",
        "They robbed the bank and escaped in a stolen car.",
    ),
    "light": (
        "Turn off the light before you go to bed.",
        "The box was light enough for a child to carry.",
        "Morning light came through the curtains.",
        "She wore a light coat because the evening was warm.",
        "Could you light the candles on the table?",
        "The light in the kitchen has been flickering all day.",
    ),
}


@dataclass(frozen=True)
class Pair:
    """Clean and corrupted prompts that differ in one word, and each one's answer."""

    name: str
    clean: str
    corrupted: str
    clean_answer: str
    corrupted_answer: str


PAIRS = (
    Pair("eiffel", "The Eiffel Tower is in the city of", "The Colosseum is in the city of", " Paris", " Rome"),
    Pair("capital", "The capital of France is the city of", "The capital of Italy is the city of", " Paris", " Rome"),
    Pair(
        "ioi",
        "When Mary and John went to the shop, John gave a book to",
        "When Mary and John went to the shop, Mary gave a book to",
        " Mary",
        " John",
    ),
    Pair(
        "ioi-austen",
        "When Elizabeth and Darcy went to the house, Darcy gave a letter to",
        "When Elizabeth and Darcy went to the house, Elizabeth gave a letter to",
        " Elizabeth",
        " Darcy",
    ),
)

# Encoder pairs: the [MASK] token is written as {mask} and filled with the tokenizer's own.
MASKED_PAIRS = (
    Pair("capital-mlm", "Paris is the capital of {mask}.", "Rome is the capital of {mask}.", "France", "Italy"),
    Pair("pronoun-mlm", "The king said that {mask} was tired.", "The queen said that {mask} was tired.", "he", "she"),
)


def repeated_random_tokens(
    vocab_size: int, period: int = 24, seed: int = 0, low: int = 0, prefix: tuple[int, ...] = ()
) -> tuple[np.ndarray, int]:
    """``prefix`` + r + r with r ``period`` ids drawn without replacement from [low, vocab_size)
    by a fixed seed (Olsson et al.'s repeated random tokens). Returns (ids [len(prefix) + 2 * period],
    start of the first copy)."""
    rng = np.random.default_rng(seed)
    r = rng.choice(np.arange(low, vocab_size), size=period, replace=False)
    return np.concatenate([np.asarray(prefix, dtype=np.int64), r, r]).astype(np.int64), len(prefix)


RANDOM_SEEDS = tuple(range(10))  # repeated random tokens: one prompt per seed
RANDOM_PERIOD = 24

# Everyday sentences read as two segments ([CLS] A [SEP] B [SEP]): each sentence with the next, the
# last with the first, so the set has as many prompts as there are sentences.
SENTENCE_PAIRS = tuple((SENTENCES[i], SENTENCES[(i + 1) % len(SENTENCES)]) for i in range(len(SENTENCES)))

# Held-out text of the project's corpus (never trained on: the last 5% of each novel), shipped so
# that the token-id card is the same on the page, the command line and the README. Written by
# ``python -m explorer.experiments --held-out-from CORPUS`` (``held_out_sentences``).
HELD_OUT_FILE = Path(__file__).with_name("held_out_sentences.json")
HELD_OUT_FIT, HELD_OUT_GAP, HELD_OUT_TEST = 20, 10, 4  # sentences per novel: fit, skipped, test
_SENTENCE_END = re.compile(r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<=[.!?])\s+(?=[\"'A-Z])")


def held_out_sentences(folder: Path) -> dict:
    """From the corpus folder: each novel's held-out text cut into sentences of 8 to 40 words that
    start a sentence (a capital or a quote); the first HELD_OUT_FIT of each novel fit the table, the
    HELD_OUT_TEST after the next HELD_OUT_GAP test it (other paragraphs, and away from the end of a
    book, where an edition's notes begin). WordNet glosses are left out: they are not running text."""
    from explorer.train.corpus import split_file

    fit, test = [], []
    for path in sorted(Path(folder).glob("*.txt")):
        if path.stem.startswith("wordnet"):
            continue
        sentences = [
            sentence
            for doc in split_file(path)[1]
            for sentence in _SENTENCE_END.split(doc)
            if 8 <= len(sentence.split()) <= 40 and sentence[0] in "\"'" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        ]
        fit += sentences[:HELD_OUT_FIT]
        start = HELD_OUT_FIT + HELD_OUT_GAP
        test += sentences[start : start + HELD_OUT_TEST]
    return {"source": "held-out text (last 5% of each novel) of the project's corpus, see README", "fit": fit,
            "test": test}  # fmt: skip


def held_out() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The shipped (fit, test) sentences of the token-id card."""
    data = json.loads(HELD_OUT_FILE.read_text(encoding="utf-8"))
    return tuple(data["fit"]), tuple(data["test"])


PROMPT_SETS = {
    "everyday-sentences": "12 everyday English sentences written for this project (explorer/experiments/prompts.py)",
    "everyday-sentences-masked": "the 12 everyday sentences, every 5th ordinary token masked (an encoder's prediction "
    "depth)",
    "repeated-random-tokens": f"{len(RANDOM_SEEDS)} sequences of {RANDOM_PERIOD} random token ids repeated once, seeds "
    f"{RANDOM_SEEDS[0]}-{RANDOM_SEEDS[-1]}",
    "word-in-contexts": "'bank' and 'light', 6 sentences each (12 contexts)",
    "sentence-pairs": "each everyday sentence with the next as two segments ([CLS] A [SEP] B [SEP]), 12 pairs",
    "austen-held-out": f"held-out corpus sentences (never trained on): {HELD_OUT_FIT} per novel fit the id table, "
    f"{HELD_OUT_TEST} per novel test it (explorer/experiments/held_out_sentences.json)",
}
