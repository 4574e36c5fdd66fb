"""The data model of a guided lab (pure Python, no Streamlit, no torch).

A ``Lab`` is 3-6 ``Step``s. A step declares the view it sets up (a page's address and the state keys it
presets, each one that page's View declares), a prediction question (multiple choice, or a number with a
tolerance) and its answer-key function. The key function runs on the loaded model and the view as set up
(the preset, with whatever the teacher changed) and returns a ``Key``: the correct choice or number, a
paragraph built from the measured values, the measured values themselves and, where the question names
something only the model knows (the token written at step 4), the words it fills into the question.
``Step.answer`` turns that into an ``Answer``: the question as asked, its choices and the key.

Ids are stable: a lab id and a step id name a question in links and in the vote database.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from explorer.registry import FAMILIES
from explorer.text import InputError

CHOICE, NUMBER = "choice", "number"
YES, NO = "Yes", "No"


class LabRefused(InputError):
    """The view as set up cannot answer this question (no [MASK] in the text, a word the text lacks, a
    speech model where a text one is needed); the message is one sentence saying what would work."""


@dataclass(frozen=True)
class FromModel:
    """A preset value that only the loaded model knows (its 3 strongest induction heads): ``compute``
    takes the loaded model and returns the state value; ``about`` says in words what it is."""

    about: str
    compute: Callable[[Any], object] = field(compare=False)


@dataclass(frozen=True)
class Key:
    """What an answer-key function measured. ``correct``: one of ``choices`` (a choice question; the
    key computes the choices when the step has none of its own) or a number. ``fields``: values the
    question's {placeholders} need. ``measured``: plain numbers and strings (JSON-ready) behind the
    explanation, for the handout and the tests."""

    correct: str | float
    explanation: str
    measured: dict = field(default_factory=dict, compare=False)
    choices: tuple[str, ...] = ()
    fields: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Answer:
    """A step's question as asked on one view, and the model's answer to it."""

    lab_id: str
    step_id: str
    question: str
    kind: str  # CHOICE or NUMBER
    choices: tuple[str, ...]  # the stated choices (empty for a number)
    correct: str | float
    explanation: str
    measured: dict = field(compare=False)
    tolerance: float = 0.0  # a number within this distance of ``correct`` counts as right
    unit: str = ""
    digits: int = 0  # decimals a number is shown with

    def accepts(self, response) -> bool:
        """Whether a learner's answer is right: the correct choice, or a number within the tolerance."""
        if self.kind == CHOICE:
            return response == self.correct
        try:
            value = float(response)
        except (TypeError, ValueError):
            return False
        return math.isfinite(value) and abs(value - float(self.correct)) <= self.tolerance + 1e-9

    @property
    def shown(self) -> str:
        """The correct answer as a learner reads it ('France', '36.6 %')."""
        if self.kind == CHOICE:
            return str(self.correct)
        value = f"{float(self.correct):,.{self.digits}f}"
        unit = self.unit[:-1] if value == "1" and self.unit.endswith("s") else self.unit  # 1 token, 2 tokens
        return f"{value} {unit}" if unit else value


KeyFunction = Callable[[Any, Mapping[str, object], Mapping[str, object]], Key]


@dataclass(frozen=True)
class Step:
    """One question on one view.

    page       the address of the page whose view the step sets up ('encoder', 'encoder-decoder',
               'experiments': the presenter tour's names, explorer.ui.navigation.page_modules)
    preset     state key -> value for that page (FromModel for a value the model must compute)
    question   the question; {name} placeholders are filled from the key's ``fields``
    key        answer-key function (loaded model, the view's state, ``params``) -> Key
    choices    the stated choices, or empty when the key computes them from the model
    params     the step's own fixed values that are not page state (the word to follow, a config name)
    figure     the Streamlit key of the figure that shows the answer on the page (a prefix for figures
               keyed by position), for a lab page to bring into view
    """

    id: str
    title: str
    page: str
    preset: Mapping[str, object] = field(compare=False)
    question: str
    kind: str
    key: KeyFunction = field(compare=False)
    choices: tuple[str, ...] = ()
    tolerance: float = 0.0
    unit: str = ""
    digits: int = 0
    params: Mapping[str, object] = field(default_factory=dict, compare=False)
    figure: str = ""

    @property
    def family(self) -> str:
        """The family whose model answers: the page's, or on the experiments page the family it presets."""
        for family in FAMILIES.values():
            if family.url_path == self.page:
                return family.key
        family = self.preset.get("exp_family")
        if family not in FAMILIES:
            raise ValueError(f"step {self.id!r} on page {self.page!r} names no family's model")
        return str(family)

    def view(self, loaded=None, overrides: Mapping[str, object] | None = None) -> dict:
        """The state this step presets, with ``overrides`` (what the teacher changed) on top and every
        FromModel value computed from ``loaded``."""
        state = {**self.preset, **(overrides or {})}
        if any(isinstance(v, FromModel) for v in state.values()) and loaded is None:
            raise ValueError(f"step {self.id!r} presets values computed from the model: pass the loaded model")
        return {k: v.compute(loaded) if isinstance(v, FromModel) else v for k, v in state.items()}

    def answer(
        self, loaded, overrides: Mapping[str, object] | None = None, params: Mapping | None = None, lab_id: str = ""
    ) -> Answer:
        """The question as asked on this view and the loaded model's answer (LabRefused when the view
        cannot answer it)."""
        view = self.view(loaded, overrides)
        key = self.key(loaded, view, {**self.params, **(params or {})})
        choices = self.choices or key.choices
        if self.kind == CHOICE and key.correct not in choices:
            raise ValueError(f"step {self.id!r}: the key {key.correct!r} is not among the choices {choices}")
        return Answer(
            lab_id,
            self.id,
            self.question.format(**key.fields),
            self.kind,
            tuple(choices) if self.kind == CHOICE else (),
            key.correct,
            key.explanation,
            key.measured,
            self.tolerance,
            self.unit,
            self.digits,
        )


@dataclass(frozen=True)
class Lab:
    id: str
    family: str  # a registry family key, or 'experiments'
    title: str
    summary: str
    steps: tuple[Step, ...]

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"lab {self.id!r} has no step {step_id!r} (it has {[s.id for s in self.steps]})")

    def answer(self, step_id: str, loaded, overrides: Mapping[str, object] | None = None) -> Answer:
        return self.step(step_id).answer(loaded, overrides, lab_id=self.id)


# --- helpers for the key functions ------------------------------------------------------------------------


def shuffled(choices: Sequence[str], salt: str = "") -> tuple[str, ...]:
    """The choices in an order fixed by their text (and ``salt``), not by the model's ranking: the same
    view always asks the same way (a class votes on one order), and the first choice is not the answer."""
    seed = zlib.crc32(("\x1f".join([salt, *sorted(choices)])).encode())  # the same set: the same order
    keyed = sorted(choices, key=lambda c: zlib.crc32(f"{seed}:{c}".encode()))
    return tuple(keyed)


def distinct(labels: Sequence[str], count: int) -> list[str]:
    """The first ``count`` different labels, in order (two token ids can display alike)."""
    seen: list[str] = []
    for label in labels:
        if label not in seen:
            seen.append(label)
        if len(seen) == count:
            break
    return seen


def setting(view: Mapping[str, object], key: str, default):
    """A state value of the view, or the page's default when the step leaves it unset."""
    value = view.get(key)
    return default if value is None else value


def clamp(value, low: int, high: int) -> int:
    """An integer setting within a range that depends on the model, as the page's View.within does."""
    return int(min(max(int(value), low), high))


def percent(share: float) -> float:
    return round(100.0 * float(share), 1)


def quoted(token: str) -> str:
    return f"'{token}'"
