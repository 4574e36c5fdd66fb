"""A lab's step put to a class (explorer.lessons.asking) and a question's words (Question.text), without a model:
ids that say which step they ask and change when what is asked changes, the numbers a class may type, bars that
two rounds share, who was right, and the handout's questions (always text, never markup)."""

from __future__ import annotations

import pytest

from explorer.handout import Handout, HandoutQuestion, handout_html
from explorer.lessons import Classroom, Question, open_store
from explorer.lessons.asking import bins, class_question, right_count, shift_kinds, step_of, tolerance_note
from explorer.lessons.core import CHOICE, NUMBER, Answer
from explorer.lessons.labs import LABS
from explorer.lessons.questions import ID_PATTERN


def choice(question: str = 'Which word fills the gap in "The capital of [MASK] is Paris."?') -> Answer:
    return Answer(
        "encoder-both-sides",
        "top-word",
        question,
        CHOICE,
        ("Europe", "France", "Paris"),
        "France",
        "France gets 11.6%.",
        {},
    )


def number(unit: str = "%", digits: int = 1, correct: float = 36.6, tolerance: float = 10.0) -> Answer:
    return Answer(
        "decoder-sampling", "cold", "What probability?", NUMBER, (), correct, "Because.", {}, tolerance, unit, digits
    )


def test_a_question_id_names_its_step_and_changes_with_what_is_asked():
    asked = class_question(choice())
    assert asked.choices == ("Europe", "France", "Paris") and asked.text == choice().question
    assert step_of(asked.id) == ("encoder-both-sides", "top-word")
    assert class_question(choice()).id == asked.id  # the same view asked again (a reload) is the same question
    assert class_question(choice("Another text [MASK]?")).id != asked.id  # a teacher's new text: a new question
    assert step_of("q1") is None and step_of("lab/step") is None


def test_every_step_of_every_lab_gets_an_id_the_store_takes():
    longest = max((lab.id, step.id) for lab in LABS for step in lab.steps)
    made = class_question(Answer(*longest, "Q?", NUMBER, (), 1.0, "", {}))
    for lab in LABS:
        for step in lab.steps:
            question_id = class_question(Answer(lab.id, step.id, "Q?", NUMBER, (), 1.0, "", {})).id
            assert ID_PATTERN.fullmatch(question_id), question_id
    assert ID_PATTERN.fullmatch(made.id)


def test_numbers_a_class_may_type():
    share = class_question(number())
    assert (share.low, share.high, share.integer) == (0.0, 100.0, False)
    assert share.check("36.6") == "36.6" and share.check(12) == "12"
    with pytest.raises(ValueError, match="between 0 and 100"):
        share.check(250)
    count = class_question(number(unit="tokens", digits=0, correct=8, tolerance=2))
    assert count.integer and count.low < 0 < count.high  # a loss change may be negative: wide bounds
    with pytest.raises(ValueError, match="whole number"):
        count.check("7.5")
    assert tolerance_note(number()) == " (within 10 % counts as right)" and tolerance_note(choice()) == ""


def test_a_teachers_text_with_newlines_and_invisible_characters_becomes_one_printable_line():
    asked = class_question(choice('Which word fills\nthe gap in "a\u200b[MASK]\tb"?'))
    assert asked.text == 'Which word fills the gap in "a [MASK] b"?'


def test_bars_shared_by_two_rounds_and_who_was_right():
    answer = choice()
    asked = class_question(answer)
    bars = bins(asked, [{"France": 3, "Paris": 1}, {"France": 4}])
    assert [b.label for b in bars] == ["Europe", "France", "Paris"]
    assert [b.count({"France": 3, "Paris": 1}) for b in bars] == [0, 3, 1]
    assert [b.right({"France": 3, "Paris": 1}, answer) for b in bars] == [0, 3, 0]
    assert right_count({"France": 3, "Paris": 1}, answer) == 3
    kinds = shift_kinds({("Paris", "France"): 2, ("France", "France"): 1, ("France", "Europe"): 1}, answer)
    assert kinds == {"wrong → right": 2, "right → right": 1, "wrong → wrong": 0, "right → wrong": 1}


def test_many_different_numbers_are_grouped_into_ranges_that_keep_every_vote():
    answer = number()
    asked = class_question(answer)
    first = {str(v): 1 for v in range(0, 100, 3)}  # 34 different answers
    second = {"36.6": 5}
    bars = bins(asked, [first, second])
    assert len(bars) == 12 and sum(b.count(first) for b in bars) == 34 and sum(b.count(second) for b in bars) == 5
    assert [b.label for b in bins(asked, [{"12": 2, "3.5": 1}])] == ["3.5", "12"]  # few: each its own bar, ascending
    assert sum(b.right(first, answer) for b in bars) == right_count(first, answer) == 7  # 27..45


def test_a_question_keeps_its_words_in_the_store(tmp_path):
    room = Classroom(open_store(f"sqlite:///{tmp_path / 'lessons.sqlite3'}"))
    made = room.create_session("encoder-both-sides")
    asked = class_question(choice())
    room.open_question(made.code, made.teacher_token, asked)
    assert room.state(made.code).question == asked  # the student's screen reads the same words
    plain = Question.choice("q1", ["yes", "no"])
    assert plain.to_json() == '{"choices": ["yes", "no"], "high": null, "integer": false, "low": null}'
    with pytest.raises(ValueError, match="printable"):
        Question.choice("q2", ["yes", "no"], text="a\x00b")


def test_the_handout_shows_questions_and_answers_as_text():
    hostile = "<img src=x onerror=alert(1)> **bold**"
    html = handout_html(
        Handout(
            "Lessons",
            questions=(
                HandoutQuestion(
                    "Step 1 of 4: " + hostile,
                    "Which? " + hostile,
                    ("a", hostile),
                    "France",
                    "Because " + hostile,
                    learner_answer=hostile,
                    learner_right=False,
                    class_votes=(("round 1", (("a", 3), (hostile, 1))),),
                ),
                HandoutQuestion("Step 2 of 4", "How much?"),
            ),
        )
    )
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt; **bold**" in html
    for part in (
        "The class, round 1",
        "(4 votes)",
        "The model's answer:",
        "Your answer:",
        "(not the model's)",
        "not revealed yet",
    ):
        assert part in html, part
