"""A lab's step put to a class (pure Python, no Streamlit, no torch): the ``Question`` the class votes on,
built from the ``Answer`` of the view as set up, and what the votes say once the model's answer is known.

``class_question(answer)`` gives the question its id (the lab, the step and a digest of what is asked, so a
teacher who changes the text asks a new question, and the same view asked again after a reload is the same
one), its choices or the numbers a student may type, and its words. ``step_of(question_id)`` reads the lab
and the step back. ``bins`` groups the answers of one or more rounds into bars that share their labels
(numbers into ranges when there are many), ``right_count`` and ``shift_kinds`` count who was right.
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from explorer.lessons.core import CHOICE, Answer
from explorer.lessons.questions import MAX_QUESTION_CHARS, Question

# The numbers a class may type, by the answer's unit: wide enough for any view a teacher sets up (a share is
# 0-100 %; a loss change may be negative), narrow enough to refuse a typo of ten digits.
NUMBER_BOUNDS = {"%": (0.0, 100.0)}
DEFAULT_BOUNDS = (-1e6, 1e6)
MAX_BARS = 12


def whole_number(answer: Answer) -> bool:
    """Whether a number question takes whole numbers only (shown without decimals and not a share)."""
    return answer.digits == 0 and answer.unit != "%"


def _printable(text: str) -> str:
    """The question's words on one line without control or invisible characters (a teacher's text may hold
    newlines and zero-width spaces; a stored question may not)."""
    kept = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    return " ".join(kept.split())[:MAX_QUESTION_CHARS]


def question_id(lab_id: str, step_id: str, spec: str) -> str:
    """``lab/step.digest``: the digest of what is asked (words, choices, bounds) tells versions apart."""
    return f"{lab_id}/{step_id}.{zlib.crc32(spec.encode()):08x}"


def class_question(answer: Answer) -> Question:
    """The question a class votes on for this answer's view."""
    text = _printable(answer.question)
    if answer.kind == CHOICE:
        asked = Question.choice("draft", answer.choices, text=text)
    else:
        low, high = NUMBER_BOUNDS.get(answer.unit, DEFAULT_BOUNDS)
        asked = Question.number("draft", low, high, integer=whole_number(answer), text=text)
    return replace(asked, id=question_id(answer.lab_id, answer.step_id, asked.to_json())).validated()


def step_of(question_id_: str) -> tuple[str, str] | None:
    """(lab id, step id) of a question made by ``class_question``; None for any other id."""
    lab_id, slash, rest = question_id_.partition("/")
    step_id, dot, digest = rest.rpartition(".")
    if not (slash and dot and lab_id and step_id and len(digest) == 8):
        return None
    return lab_id, step_id


@dataclass(frozen=True)
class Bin:
    """One bar: its label and the stored answers it counts (one choice, one number, or a range of numbers)."""

    label: str
    members: tuple[str, ...]

    def count(self, counts: Mapping[str, int]) -> int:
        return sum(counts.get(m, 0) for m in self.members)

    def right(self, counts: Mapping[str, int], answer: Answer) -> int:
        return sum(counts.get(m, 0) for m in self.members if answer.accepts(m))


def _number(value: float) -> str:
    return f"{value:,.4g}"


def bins(question: Question, rounds: Sequence[Mapping[str, int]], max_bars: int = MAX_BARS) -> list[Bin]:
    """Bars shared by every round: each choice in its order, or the numbers answered (ascending), grouped
    into ``max_bars`` equal ranges when there are more."""
    if question.choices:
        return [Bin(c, (c,)) for c in question.choices]
    answered = sorted({a for counts in rounds for a, n in counts.items() if n}, key=float)
    if len(answered) <= max_bars:
        return [Bin(_number(float(a)), (a,)) for a in answered]
    low, high = float(answered[0]), float(answered[-1])
    width = (high - low) / max_bars
    groups: list[list[str]] = [[] for _ in range(max_bars)]
    for a in answered:
        groups[min(int((float(a) - low) / width), max_bars - 1)].append(a)
    edges = [low + i * width for i in range(max_bars + 1)]
    return [Bin(f"{_number(edges[i])} to {_number(edges[i + 1])}", tuple(g)) for i, g in enumerate(groups)]


def right_count(counts: Mapping[str, int], answer: Answer) -> int:
    """How many of these votes the model's answer accepts."""
    return sum(n for a, n in counts.items() if answer.accepts(a))


SHIFT_KINDS = ("wrong → right", "right → right", "wrong → wrong", "right → wrong")


def shift_kinds(transitions: Mapping[tuple[str, str], int], answer: Answer) -> dict[str, int]:
    """Students who voted twice, by whether each vote was right (Crouch & Mazur's measure of discussion)."""
    kinds = dict.fromkeys(SHIFT_KINDS, 0)
    word = {True: "right", False: "wrong"}
    for (first, second), n in transitions.items():
        kinds[f"{word[answer.accepts(first)]} → {word[answer.accepts(second)]}"] += n
    return kinds


def tolerance_note(answer: Answer) -> str:
    """' (within 5 % counts as right)' for a number with a tolerance, else ''."""
    if answer.kind == CHOICE or not answer.tolerance:
        return ""
    unit = f" {answer.unit}" if answer.unit else ""
    return f" (within {answer.tolerance:g}{unit} counts as right)"


def percent_of(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "no votes"
