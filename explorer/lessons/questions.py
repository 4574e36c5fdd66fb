"""A question as a class votes on it, and the one check every answer passes before it is stored.

``Question.choice("sink-top1", ["yes", "no"])`` or ``Question.number("lens-layer", 0, 30, integer=True)``
declares what may be answered (the lab that asks the question builds it; its answer key lives with
the lab, not here); ``text=`` optionally carries the question as the teacher's screen asks it, so that a
student's screen shows the same words (stored with the choices; never anything a student typed).
``question.check(answer)`` returns the answer as it is stored (a choice exactly as declared, a number in
one canonical spelling) or raises ``AnswerError`` with one sentence. The check never repeats what was
typed in its sentence, so a hostile string goes nowhere.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass

from explorer.text import InputError

MAX_ANSWER_CHARS = 200  # a choice label or a typed number; anything longer is refused, not cut
MAX_CHOICES = 12
MAX_QUESTION_CHARS = 8000  # the question as asked: a lab's sentence quoting the teacher's text (5,000 at most)
# Lab, question and request ids: chosen by code, yet they arrive through URLs and websockets.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")
# A typed number: optional sign, ASCII digits with one optional decimal point, optional exponent. No
# thousands separators: "0,5" means a half in much of Europe and 5 to this pattern, so it is refused.
NUMBER_PATTERN = re.compile(r"[+-]?(\d{1,30}(\.\d{0,12})?|\.\d{1,12})([eE][+-]?\d{1,3})?", re.ASCII)


class AnswerError(InputError):
    """An answer that cannot be stored; the message is one sentence for the student."""


def check_id(value: object, what: str) -> str:
    """``value`` when it is a plain id (letters, digits, ``_.:/-``, at most 64), else AnswerError."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise AnswerError(f"The {what} is not a valid id (letters, digits and _.:/- only, at most 64).")
    return value


def _has_control(text: str) -> bool:
    # Cc: control characters (NUL, ESC...); Cf: invisible format characters (bidi overrides, zero widths)
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _bounded_text(answer: object) -> str:
    if not isinstance(answer, str):
        raise AnswerError("The answer must be text.")
    if len(answer) > MAX_ANSWER_CHARS:
        raise AnswerError(f"The answer is too long ({len(answer):,} characters; at most {MAX_ANSWER_CHARS}).")
    if _has_control(answer):
        raise AnswerError("The answer contains control or invisible characters.")
    text = unicodedata.normalize("NFC", answer).strip()
    if not text:
        raise AnswerError("The answer is empty.")
    return text


def canonical_number(value: float, integer: bool) -> str:
    """One spelling per number: "12" for 12.0 and "+12", "0.25" for ".25" (repr of the float)."""
    if integer or (value.is_integer() and abs(value) < 1e16):
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class Question:
    """``choices`` for multiple choice; otherwise a number between ``low`` and ``high`` inclusive.
    ``text``: the question in words, as the teacher's screen asks it ('' when the caller has none)."""

    id: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    integer: bool = False
    text: str = ""

    @classmethod
    def choice(cls, question_id: str, choices, text: str = "") -> Question:
        return cls(question_id, tuple(choices), text=text).validated()

    @classmethod
    def number(cls, question_id: str, low: float, high: float, integer: bool = False, text: str = "") -> Question:
        return cls(question_id, (), float(low), float(high), integer, text).validated()

    @property
    def kind(self) -> str:
        return "choice" if self.choices else "number"

    def validated(self) -> Question:
        """Itself when well declared (a lab's bug is refused before any student sees it)."""
        check_id(self.id, "question")
        if not isinstance(self.text, str) or len(self.text) > MAX_QUESTION_CHARS or _has_control(self.text):
            raise ValueError(f"question {self.id}: its text is at most {MAX_QUESTION_CHARS} printable characters")
        if self.choices:
            labels = [unicodedata.normalize("NFC", c) if isinstance(c, str) else c for c in self.choices]
            bad = [
                c
                for c in labels
                if not isinstance(c, str)
                or not c.strip()
                or c != c.strip()
                or len(c) > MAX_ANSWER_CHARS
                or _has_control(c)
            ]
            if bad or len(set(labels)) != len(labels) or not 2 <= len(labels) <= MAX_CHOICES:
                raise ValueError(f"question {self.id}: 2 to {MAX_CHOICES} distinct, trimmed, printable choices")
            return Question(self.id, tuple(labels), text=self.text)
        finite = all(isinstance(v, float) and math.isfinite(v) for v in (self.low, self.high))
        if not finite or self.low > self.high:
            raise ValueError(f"question {self.id}: a number question needs finite bounds low <= high")
        return self

    def check(self, answer: object) -> str:
        """The answer as stored, or AnswerError with one sentence."""
        if isinstance(answer, bool):
            raise AnswerError("The answer must be one of the choices or a number, not true/false.")
        if self.choices:
            text = _bounded_text(answer)
            if text not in self.choices:
                raise AnswerError(f"That answer is not one of this question's {len(self.choices)} choices.")
            return text
        return self._check_number(answer)

    def _check_number(self, answer: object) -> str:
        if isinstance(answer, (int, float)):
            value = float(answer) if abs(answer) < 1e300 else math.inf  # float(10**400) would raise
        else:
            text = _bounded_text(answer)
            if not NUMBER_PATTERN.fullmatch(text):
                raise AnswerError("The answer must be a number, like 12 or 0.5.")
            value = float(text)
        if not math.isfinite(value):
            raise AnswerError("The answer must be a finite number.")
        if not self.low <= value <= self.high:
            raise AnswerError(f"The answer must be between {self.low:g} and {self.high:g}.")
        if self.integer and not value.is_integer():
            raise AnswerError("The answer must be a whole number.")
        return canonical_number(value, self.integer)

    def to_json(self) -> str:
        spec = {"choices": list(self.choices), "low": self.low, "high": self.high, "integer": self.integer}
        if self.text:  # only when there is one: a question stored without it keeps its spelling
            spec["text"] = self.text
        return json.dumps(spec, sort_keys=True)

    @classmethod
    def from_json(cls, question_id: str, spec: str) -> Question:
        data = json.loads(spec)
        return cls(
            question_id, tuple(data["choices"]), data["low"], data["high"], data["integer"], data.get("text", "")
        )

    def order(self, answers) -> list[str]:
        """Stored answers in display order: the declared choices (all of them), or numbers ascending."""
        if self.choices:
            return list(self.choices)
        return sorted(set(answers), key=float)
