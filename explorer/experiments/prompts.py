"""Named prompt sets the experiments and cards run on (fixed text, fixed seeds)."""

from __future__ import annotations

from dataclasses import dataclass

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


PROMPT_SETS = {
    "everyday-sentences": "12 everyday English sentences written for this project (explorer/experiments/prompts.py)",
    "repeated-random-tokens": "5 sequences of 24 random token ids repeated once, seeds 0-4",
    "word-in-contexts": "'bank' and 'light', 6 sentences each",
    "sentence-pairs": "the everyday sentences joined in pairs as two segments ([CLS] A [SEP] B [SEP])",
}
