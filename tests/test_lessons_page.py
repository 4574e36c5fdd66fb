"""The Lessons page through Streamlit's AppTest, on the embedded defaults (issue 24): every step of every lab
asks its question and, once an answer is committed, reveals the model's; a teacher and two students share one
class database (ask, live histogram, vote again, shift, reveal); every bad input is one sentence; "Open this
view" lands on the step's page with its state preset, and each family page links back; the handout holds the
questions, the class's answers and the model's; Classroom mode draws the class's figures large."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer.handout import handout_html
from explorer.lessons import SESSION_HOURS, Classroom, open_store
from explorer.lessons.core import CHOICE
from explorer.lessons.labs import LABS, lab
from explorer.text import plain
from explorer.ui.lessons_class import CLASS, ME, TEACHER
from explorer.ui.lessons_page import SEEN

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300
PAGE = "from explorer.ui import lessons_page\nlessons_page.render()\n"
# the page, then its handout as the download button would build it (for the tests to read)
WITH_HANDOUT = PAGE + "import streamlit as st\nst.session_state['_test_handout'] = lessons_page.VIEW.handout('moe')\n"
ALL_STEPS = [(x.id, s.id) for x in LABS for s in x.steps]


@pytest.fixture(scope="module", autouse=True)
def class_database(tmp_path_factory):
    """One class database for this module's pages (the page opens one store per process and location)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("EXPLORER_DATA_DIR", str(tmp_path_factory.mktemp("lessons")))
        env.delenv("EXPLORER_DATABASE_URL", raising=False)
        store = open_store()
        yield store
        store.close()


def page(script: str = PAGE, **query: str) -> AppTest:
    at = AppTest.from_string(script, default_timeout=TIMEOUT)
    for name, value in query.items():
        at.query_params[name] = value
    return at.run()


def healthy(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def texts(at: AppTest, kind: str = "markdown") -> list[str]:
    """The elements' text with plain()'s escapes taken out."""
    return [re.sub(r"\\(.)", r"\1", e.value) for e in getattr(at, kind)]


def state(at: AppTest, key: str):
    return at.session_state[key] if key in at.session_state else None


def param(at: AppTest, name: str) -> str | None:
    value = at.query_params.get(name)
    return value if value is None or isinstance(value, str) else value[0]


def said(at: AppTest, sentence: str, kind: str = "warning") -> bool:
    return any(sentence in t for t in texts(at, kind))


# --- a learner alone, every step of every lab ---------------------------------------------------------------


@pytest.mark.parametrize("lab_id, step_id", ALL_STEPS)
def test_every_step_asks_its_question_then_reveals_the_models_answer(lab_id, step_id):
    number = [s.id for s in lab(lab_id).steps].index(step_id) + 1
    at = page(lab=lab_id, step=str(number))
    healthy(at)
    answer = at.session_state[SEEN][lab_id][step_id]  # what the page computed from the live model
    assert "### " + plain(answer.question) in [m.value for m in at.markdown]
    right = number % 2 == 1  # odd steps answered right, even ones wrong: both reveals are seen
    if answer.kind == CHOICE:
        at.radio[0].set_value(answer.correct if right else next(c for c in answer.choices if c != answer.correct))
    else:
        wrong = float(answer.correct) + (answer.tolerance + 10) * (-1 if float(answer.correct) > 50 else 1)
        at.number_input[0].set_value(float(answer.correct) if right else wrong)
    at.button(key="lessons_commit").click().run()
    healthy(at)
    verdict = texts(at, "success" if right else "warning")
    assert any(f"the model's answer is {answer.shown}" in v for v in verdict), verdict
    assert plain(answer.explanation) in [m.value for m in at.markdown]
    assert param(at, "lab") == lab_id and param(at, "step") == str(number)


def test_a_view_that_cannot_answer_says_why_and_the_learners_text_is_shown_as_text():
    at = page(lab="encoder-both-sides", text="No gap in this sentence.")
    healthy(at)
    assert said(at, "[MASK]") and not at.radio  # LabRefused: one sentence, no question to answer
    hostile = "<img src=x onerror=alert(1)> **bold** [MASK] [link](http://evil.example)"
    at.text_area(key="lessons_text_box").set_value(hostile).run()
    healthy(at)
    answer = at.session_state[SEEN]["encoder-both-sides"]["top-word"]
    assert hostile in answer.question and "### " + plain(answer.question) in [m.value for m in at.markdown]
    at.button(key="lessons_text_reset").click().run()
    assert at.session_state["lessons_text"] is None and "lessons_text" not in at.query_params


# --- a class: a teacher and two students on one database ----------------------------------------------------


def join(code: str) -> AppTest:
    student = page(**{"class": code})
    student.button(key="lessons_join").click().run()
    healthy(student)
    assert student.session_state[ME] and param(student, "me") == student.session_state[ME]
    return student


def vote(student: AppTest, answer) -> None:
    (student.radio[0] if student.radio else student.number_input[0]).set_value(answer).run()
    student.button(key="lessons_vote").click().run()
    healthy(student)


def chart(at: AppTest, key: str) -> dict:
    found = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith("-" + key)]
    assert found, [c.proto.id for c in at.get("plotly_chart")]
    return found[0]


def bar_total(spec: dict) -> int:
    return int(sum(sum(trace["y"]) for trace in spec["data"]))


def test_a_teacher_asks_two_students_vote_twice_and_the_teacher_reveals():
    teacher = page(WITH_HANDOUT, lab="moe-routing")
    teacher.button(key="lessons_teach").click().run()
    code = teacher.session_state[CLASS]
    assert re.fullmatch(r"[A-Z2-9]{6}", code) and param(teacher, "teach") == teacher.session_state[TEACHER]
    teacher.button(key="lessons_open").click().run()
    healthy(teacher)
    students = [join(code), join(code)]
    choices = students[0].radio[0].options
    asked = "### " + plain(teacher.session_state[SEEN]["moe-routing"]["word-expert"].question)
    assert asked in [m.value for m in students[0].markdown]  # the teacher's words on the student's screen
    vote(students[0], choices[0])
    students[0].button(key="lessons_vote").click().run()  # a second click: still one vote
    vote(students[1], choices[1])
    assert said(students[0], f"Vote counted: {choices[0]}", "success")
    teacher.run()
    assert any(t.startswith("**2 votes** in round 1 · 2 joined") for t in texts(teacher))
    assert bar_total(chart(teacher, "lessons_votes_1")) == 2
    teacher.button(key="lessons_again").click().run()
    for student in students:
        student.run()
        assert said(student, "Round 2", "info")
        vote(student, choices[0])
    teacher.run()
    healthy(teacher)
    assert [trace["y"][:2] for trace in chart(teacher, "lessons_shift")["data"]] == [[1, 1], [2, 0]]
    assert said(teacher, "1 of the 2 students who voted in both rounds changed their answer", "markdown")
    teacher.button(key="lessons_reveal").click().run()
    healthy(teacher)
    answer = teacher.session_state[SEEN]["moe-routing"]["word-expert"]
    assert said(teacher, f"The model's answer: {answer.shown}", "success")
    assert bar_total(chart(teacher, "lessons_revealed_1")) == bar_total(chart(teacher, "lessons_revealed_2")) == 2
    shift = {row: n for row, n in zip(teacher.table[0].value["between the rounds"], teacher.table[0].value["students"])}
    assert sum(shift.values()) == 2
    for student in students:
        student.run()
        assert said(student, "The voting is closed", "info")
    _the_handout_holds_the_lesson(teacher, answer, choices)


def _the_handout_holds_the_lesson(teacher: AppTest, answer, choices) -> None:
    handout = teacher.session_state["_test_handout"]
    assert "teach=" not in (handout.link or "") and "class=" in handout.link  # the teacher key stays private
    (question,) = handout.questions
    assert question.question == answer.question and question.model_answer == answer.shown
    assert dict(question.class_votes)["round 1"] == tuple((c, 1 if c in choices[:2] else 0) for c in choices)
    assert dict(question.class_votes)["round 2"][0] == (choices[0], 2)
    html = handout_html(handout)
    assert "The class, round 2" in html and answer.shown in html and len(handout.figures) >= 2


def test_a_question_not_revealed_stays_off_the_handout_and_a_number_out_of_range_is_one_sentence():
    teacher = page(WITH_HANDOUT, lab="moe-routing", step="4")  # the busiest expert's share, in %
    teacher.button(key="lessons_teach").click().run()
    teacher.button(key="lessons_open").click().run()
    student = join(teacher.session_state[CLASS])
    vote(student, 250.0)
    assert said(student, "The answer must be between 0 and 100.")
    vote(student, 30.0)
    assert said(student, "Vote counted: 30", "success")
    teacher.run()
    (question,) = teacher.session_state["_test_handout"].questions
    assert question.model_answer == "" and question.class_votes == (("round 1", (("30", 1),)),)


# --- bad input: one sentence each, never a traceback --------------------------------------------------------


@pytest.mark.parametrize(
    "typed, sentence",
    [
        ("ZZZZZZ", "No class session has the code ZZZZZZ; check it with your teacher."),
        ("<img src=x onerror=alert(1)>", "A class code is 6 letters and digits, like K7PQ2M."),
        ("", "A class code is 6 letters and digits, like K7PQ2M."),
    ],
)
def test_a_wrong_code_is_one_sentence(typed, sentence):
    at = page()
    at.text_input(key="lessons_join_code").set_value(typed).run()
    at.button(key="lessons_join").click().run()
    healthy(at)
    assert [t for t in texts(at, "warning")] == [sentence] and state(at, ME) is None


def test_an_expired_code_and_an_ended_class_are_one_sentence(class_database):
    then = time.time() - (SESSION_HOURS + 1) * 3600
    old = Classroom(class_database, clock=lambda: then).create_session("moe-routing")
    at = page(**{"class": old.code})
    at.button(key="lessons_join").click().run()
    healthy(at)
    assert texts(at, "warning") == [
        f"This class code has expired (sessions last {SESSION_HOURS} hours); ask your teacher for a new one."
    ]
    made = Classroom(class_database).create_session("moe-routing")
    student = join(made.code)
    Classroom(class_database).end_session(made.code, made.teacher_token)
    student.run()
    healthy(student)
    assert said(student, "This class session is over")
    teacher = page(lab="moe-routing", **{"class": made.code, "teach": made.teacher_token})
    healthy(teacher)
    assert said(teacher, "This class session is over") and any(b.key == "lessons_leave" for b in teacher.button)


@pytest.mark.parametrize(
    "query, sentence",
    [
        ({"class": "<script>alert(1)</script>", "me": "x", "teach": "y"}, "A class code is 6 letters and digits"),
        ({"lab": "no-such-lab", "step": "99", "text": "**bold**"}, None),  # ignored: the list of labs
    ],
)
def test_a_hostile_link_is_one_sentence_or_ignored(query, sentence):
    at = page(**query)
    healthy(at)
    assert state(at, CLASS) is None and any(b.key == "lessons_start_moe-routing" for b in at.button)
    assert said(at, sentence) if sentence else not at.warning


def test_a_forged_token_cannot_vote_or_teach(class_database):
    made = Classroom(class_database).create_session("moe-routing")
    teacher = page(lab="moe-routing", **{"class": made.code, "teach": "not-the-teachers-key"})
    teacher.button(key="lessons_open").click().run()
    healthy(teacher)
    assert said(teacher, "Only the teacher who started this class session can do that.")
    real = page(lab="moe-routing", **{"class": made.code, "teach": made.teacher_token})
    real.button(key="lessons_open").click().run()
    student = page(**{"class": made.code, "me": "<b>forged-token-of-someone</b>"})
    vote(student, student.radio[0].options[0])
    assert said(student, "This browser has not joined the class session; join again.")


# --- between pages ------------------------------------------------------------------------------------------


def test_open_this_view_presets_the_step_on_its_page_and_the_family_page_links_back():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.sidebar.toggle(key="presenter").set_value(True).run()
    at.sidebar.button(key="presenter_next").click().run()  # the tour's second step: the encoder page
    at.sidebar.toggle(key="presenter").set_value(False).run()
    at.sidebar.button(key="open_lessons").click().run()
    assert at.title[0].value.startswith("Lessons")
    starts = [b.key for b in at.button if b.key.startswith("lessons_start_")]
    assert starts[0] == "lessons_start_encoder-both-sides"  # the family's labs first
    at.button(key="lessons_start_encoder-context").click().run()
    at.button(key="lessons_next").click().run()
    at.button(key="lessons_next").click().run()  # step 3: 'it', on the animal sentence, after the last block
    at.button(key="lessons_open_view").click().run()
    healthy(at)
    assert at.title[0].value.startswith("Encoder-only")
    assert at.session_state["encoder_text"] == lab("encoder-context").step("it-refers").preset["encoder_text"]
    assert at.session_state["encoder_sim_layer"] == 6  # computed from the loaded model: DistilBERT's last block
    scripts = [h.proto.body for h in at.sidebar.get("html")]
    assert any('const key = "encoder_similarity"' in s for s in scripts)  # the figure the question is about
    at.sidebar.button(key="back_to_lesson").click().run()
    assert at.title[0].value.startswith("Lessons") and at.session_state["lessons_step"] == 3


@pytest.mark.parametrize("module", ["moe_page", "experiments"])  # every family page draws it through View.page
def test_a_family_page_and_the_experiments_page_lead_to_their_labs(module):
    at = page(f"from explorer.ui import {module}\n{module}.render()\n")
    healthy(at)
    assert any(b.key == "open_lessons" for b in at.sidebar.button)


def test_the_home_page_links_to_the_lessons():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    healthy(at)
    assert any(link.proto.page.endswith("lessons") or "Lessons" in link.proto.label for link in at.get("page_link"))


# --- Classroom mode -----------------------------------------------------------------------------------------


def test_classroom_mode_draws_the_code_and_the_class_figures_large():
    at = AppTest.from_string(PAGE, default_timeout=TIMEOUT)
    at.session_state["classroom_on"] = True
    at.query_params["lab"] = "moe-routing"
    at.run()
    at.button(key="lessons_teach").click().run()
    assert any("font:700 72px" in h.proto.body for h in at.get("html"))  # until the first question: the code
    at.button(key="lessons_open").click().run()
    healthy(at)
    assert any("font:700 40px" in h.proto.body for h in at.get("html"))  # then the votes need the room
    layout = chart(at, "lessons_votes_1")["layout"]
    assert layout["font"]["size"] >= 18


def reload(at: AppTest, script: str = PAGE) -> AppTest:
    """The same link in a new session, as a browser's reload opens it."""
    return page(script, **{name: param(at, name) for name in at.query_params})


def test_a_reload_keeps_the_teachers_controls_and_the_same_voter():
    teacher = page(lab="moe-routing", step="2")
    teacher.button(key="lessons_teach").click().run()
    teacher.button(key="lessons_open").click().run()
    student = join(teacher.session_state[CLASS])
    vote(student, "Yes")
    again = reload(student)  # the link carries the participant token: the same voter, not a new one
    healthy(again)
    assert state(again, ME) == state(student, ME)
    vote(again, "No")
    assert said(again, "Vote counted: No", "success")
    teacher = reload(teacher)
    healthy(teacher)
    assert state(teacher, "lessons_step") == 2 and any(b.key == "lessons_again" for b in teacher.button)
    assert any(t.startswith("**1 vote** in round 1 · 1 joined") for t in texts(teacher))
    assert bar_total(chart(teacher, "lessons_votes_1")) == 1
