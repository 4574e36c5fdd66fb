"""A class that votes (issue 24), the lessons page's class parts: the teacher starts a session and, step by
step, asks the question, watches the live histogram of round 1, asks the class to discuss and vote again,
sees the shift between the two rounds, then reveals the model's answer; a student joins with the code, sees
the question when it is open, votes and waits.

One store per process (``st.cache_resource``); every refusal of ``explorer.lessons`` is one sentence shown
as is. The live parts are fragments that rerun every ``LIVE_SECONDS`` on their own (a database read each),
never the whole page.

State (plain session keys, which a visit to another page keeps, and the link): the class code, the teacher's
key or the student's anonymous participant token, the questions this teacher revealed, and a student's
receipts (what the store holds as their vote, per question and round).
"""

from __future__ import annotations

import os
import time
import uuid

import streamlit as st

from explorer.handout import HandoutQuestion
from explorer.lessons import ClassError, Classroom, Question, normalise_code, open_store
from explorer.lessons.asking import (
    bins,
    class_question,
    percent_of,
    right_count,
    shift_kinds,
    step_of,
    tolerance_note,
)
from explorer.lessons.core import Answer
from explorer.lessons.labs import BY_ID
from explorer.lessons.store import DATA_DIR_ENV, DATABASE_URL_ENV, Store
from explorer.plots.lessons import shift_figure, votes_figure
from explorer.text import InputError, plain
from explorer.ui.boundary import guarded, run_safely
from explorer.ui.common import classroom_on
from explorer.ui.view import FIGURES, View

LIVE_SECONDS = 1.5  # how often the teacher's histogram and a student's screen look at the store
CLASS, ME, TEACHER = "lessons_class", "lessons_me", "lessons_teacher"  # also the link's class=, me=, teach=
REVEALED = "_lessons_revealed"  # question ids this teacher revealed
RECEIPTS = "_lessons_receipts"  # (question id, round) -> the answer the store holds for this student
VOTE_NOTE = "_lessons_vote_note"  # a sentence for the next run (the class has ended)
BALLOT_NOTES = "_lessons_ballot_notes"  # (question id, round) -> why the store refused this student's vote
LIVE_FIGURES = "_lessons_live_figures"  # the handout figures the live fragment drew last


@st.cache_resource(show_spinner=False)
def _store(url: str, data_dir: str) -> Store:
    return open_store(url or None, data_dir or None)


def classroom() -> Classroom:
    """The class sessions on this process's store (EXPLORER_DATABASE_URL, else SQLite in the data folder)."""
    return Classroom(_store(os.environ.get(DATABASE_URL_ENV, ""), os.environ.get(DATA_DIR_ENV, "")))


def role() -> str:
    """'teacher', 'student', 'joining' (a class code without a token: the join form) or 'alone'."""
    if not st.session_state.get(CLASS):
        return "alone"
    if st.session_state.get(TEACHER):
        return "teacher"
    return "student" if st.session_state.get(ME) else "joining"


def restore_people(take_once) -> None:
    """Once per session: the class code and this person's token from the link; a code that cannot be one is
    refused in one sentence (and the tokens with it)."""
    for param, key in (("class", CLASS), ("me", ME), ("teach", TEACHER)):
        raw = take_once(param, key)
        if raw is not None and raw.strip():
            st.session_state[key] = raw.strip()[:100]
    if st.session_state.get(CLASS):
        try:
            st.session_state[CLASS] = normalise_code(st.session_state[CLASS])
        except ClassError as refusal:
            st.warning(plain(refusal))
            leave()


def publish() -> None:
    """The class code and this person's token in the link (a reload keeps the same teacher or voter)."""
    for param, key in (("class", CLASS), ("me", ME), ("teach", TEACHER)):
        value = st.session_state.get(key)
        if value and st.query_params.get(param) != value:
            st.query_params[param] = value
        elif not value and param in st.query_params:
            del st.query_params[param]


def leave() -> None:
    for key in (CLASS, ME, TEACHER):
        st.session_state[key] = None


# --- the teacher ----------------------------------------------------------------------------------------


def start_class(lab_id: str) -> None:
    """Callback of "Teach this lab to a class": a new session, this browser its teacher."""
    made = classroom().create_session(lab_id)
    st.session_state[CLASS], st.session_state[TEACHER], st.session_state[ME] = made.code, made.teacher_token, None


def follow_lab(lab_id: str) -> None:
    """The teacher picked another lab: the class follows it (and waits for its first question)."""
    if role() == "teacher":
        classroom().set_lab(st.session_state[CLASS], st.session_state[TEACHER], lab_id)


def _end_class() -> None:
    classroom().end_session(st.session_state[CLASS], st.session_state[TEACHER])
    st.session_state[VOTE_NOTE] = f"Class {st.session_state[CLASS]} has ended: its code takes no more votes."
    leave()


def _share_link(code: str) -> str:
    here = st.context.url or "/lessons"
    return f"{here.split('?')[0]}?class={code}"


def class_banner() -> None:
    """The code, big until the first question (a class reads it off the projector; then smaller, so that the
    votes stay above the fold), the link to share, and End the class."""
    code = st.session_state[CLASS]
    asked = classroom().state(code).question is not None  # once the class votes, the figure needs the room
    size = (40 if asked else 72) if classroom_on() else (32 if asked else 48)
    left, middle, right = st.columns([4, 6, 2], vertical_alignment="center")
    with left:
        st.caption("Class code")
        st.html(
            f"<div class='lessons-code' style='font:700 {size}px/1.05 monospace;letter-spacing:.08em'>{code}</div>"
        )  # six letters and digits of CODE_ALPHABET: nothing to escape
    with middle:
        st.markdown("Students: **Lessons** → **Join a class** and type the code, or open")
        st.code(_share_link(code), language=None, wrap_lines=True)
        st.caption(
            "Your address bar holds your teacher key (a reload keeps your controls): share this link, not "
            "your address bar."
        )
    right.button(
        "End the class",
        key="lessons_end_class",
        icon=":material/stop_circle:",
        width="stretch",
        on_click=guarded(_end_class),
        help="Votes and joins are refused from now on.",
    )


def _act(action: str, question: Question) -> None:
    """A teacher's button: ask (open), close, vote again, or reveal (which also closes the voting)."""
    code, token, room = st.session_state[CLASS], st.session_state[TEACHER], classroom()
    if action == "open":
        room.open_question(code, token, question)
    elif action == "again":
        room.vote_again(code, token, question.id)
    elif action in ("close", "reveal"):
        try:
            room.close_question(code, token, question.id)
        except ClassError:  # revealed before the class was asked: nothing to close
            if action == "close":
                raise
    if action == "reveal":
        st.session_state.setdefault(REVEALED, set()).add(question.id)


def _buttons(question: Question, current: bool, round_: int, is_open: bool) -> None:
    actions = []
    if not current:
        actions.append(("open", "Ask the class", ":material/how_to_vote:", "primary"))
    elif round_ == 1:
        actions.append(("again", "Discuss and vote again", ":material/forum:", "primary"))
    actions += [("close", "Close the voting", ":material/lock:", "secondary")] if current and is_open else []
    actions += [("open", "Reopen the voting", ":material/lock_open:", "secondary")] if current and not is_open else []
    actions.append(("reveal", "Reveal the answer", ":material/visibility:", "secondary"))
    for action, label, icon, kind in actions:  # stacked: they sit in the narrow panel beside the figure
        st.button(
            label,
            key=f"lessons_{action}",
            icon=icon,
            type=kind,
            on_click=guarded(_act),
            args=(action, question),
            width="stretch",
        )


def teacher_step(answer: Answer, view: View, left, right) -> None:
    """The teacher's controls for this step's question (in ``left``, under the question) and the class's votes
    beside them (in ``right``: above the fold on a projector), live."""
    question = class_question(answer)
    try:
        state = classroom().state(st.session_state[CLASS])
        if state.ended:
            raise ClassError("This class session is over (ended, or past its 3 hours); start a new class to ask again.")
    except ClassError as refusal:  # also a code the store no longer has (purged a day after it expired)
        left.warning(plain(refusal))
        left.button("Leave the class", key="lessons_leave", on_click=leave)
        return
    revealed = question.id in st.session_state.get(REVEALED, set())
    current = state.question is not None and state.question.id == question.id
    with left:
        if not revealed:
            _buttons(question, current, state.round, state.is_open)
        else:
            st.success(plain(f"The model's answer: {answer.shown}{tolerance_note(answer)}."))
            st.markdown(plain(answer.explanation))
    with right:
        live_votes(state.code, question, answer if revealed else None, view)


@st.fragment(run_every=LIVE_SECONDS)
def live_votes(code: str, question: Question, answer: Answer | None, view: View) -> None:
    """The class's votes on this question as they arrive (this part alone reruns every LIVE_SECONDS)."""
    run_safely(lambda: _votes(code, question, answer, view))


def _rounds(code: str, question: Question):
    """(state, round-1 counts, round-2 counts or None, whether the question was asked) from the store."""
    room = classroom()
    state = room.state(code)
    try:
        first = room.histogram(code, question.id, 1)
    except ClassError:  # not asked yet
        return state, None, None
    second = room.histogram(code, question.id, 2)
    in_round_2 = second.total or (state.question is not None and state.question.id == question.id and state.round == 2)
    return state, first, second if in_round_2 else None


def _votes(code: str, question: Question, answer: Answer | None, view: View) -> None:
    state, first, second = _rounds(code, question)
    current = state.question is not None and state.question.id == question.id
    status = ("voting open" if state.is_open else "voting closed") if current else "not asked now"
    status += f" · the code works for another {remaining(state.expires_at)}"
    if first is None:
        st.markdown(plain(f"{state.participants} joined. Not asked yet: press Ask the class."))
        return
    shown = second or first
    st.markdown(
        f"**{shown.total} {'vote' if shown.total == 1 else 'votes'}** in round {shown.round} · "
        f"{state.participants} joined · {status}"
    )
    with _live_figures():
        bars = bins(question, [first.counts] + ([second.counts] if second else []))
        labels = [b.label for b in bars]
        if answer is None and second is None:
            view.figure(
                votes_figure(labels, [b.count(first.counts) for b in bars], f"Round 1: {first.total} votes"),
                key="lessons_votes_1",
                caption="The class's answers (anonymous), live.",
            )
        elif answer is None:
            _shift(code, question, bars, first, second, view)
        else:
            _revealed_votes(code, question, answer, bars, [first] + ([second] if second else []), view)


def _shift(code: str, question: Question, bars, first, second, view: View) -> None:
    labels = [b.label for b in bars]
    view.figure(
        shift_figure(
            labels,
            [b.count(first.counts) for b in bars],
            [b.count(second.counts) for b in bars],
            f"Round 1 ({first.total} votes) and round 2 ({second.total} votes)",
        ),
        key="lessons_shift",
        caption="Where the discussion moved the class: each answer's votes, before and after (live).",
    )
    shift = classroom().shift(code, question.id)
    st.markdown(
        plain(f"{shift.changed} of the {shift.voted_both} students who voted in both rounds changed their answer.")
    )


def _revealed_votes(code: str, question: Question, answer: Answer, bars, rounds, view: View) -> None:
    labels = [b.label for b in bars]
    for histogram in rounds:
        right = right_count(histogram.counts, answer)
        view.figure(
            votes_figure(
                labels,
                [b.count(histogram.counts) for b in bars],
                f"Round {histogram.round}: {right} of {histogram.total} votes "
                f"({percent_of(right, histogram.total)}) match the model",
                right=[b.right(histogram.counts, answer) for b in bars],
            ),
            key=f"lessons_revealed_{histogram.round}",
            caption=f"Green: the model's answer ({answer.shown}); grey: another answer.",
        )
    if len(rounds) == 2:
        kinds = shift_kinds(classroom().shift(code, question.id).transitions, answer)
        st.table([{"between the rounds": kind, "students": n} for kind, n in kinds.items()])


class _live_figures:
    """Around the fragment's figures: the handout keeps only the latest drawing of each (the fragment
    reruns on its own, and every View.figure adds to the handout's list)."""

    def __enter__(self):
        figures = st.session_state.setdefault(FIGURES, [])
        stale = st.session_state.get(LIVE_FIGURES, [])
        figures[:] = [f for f in figures if not any(f is s for s in stale)]
        self.start = len(figures)

    def __exit__(self, *exc):
        st.session_state[LIVE_FIGURES] = st.session_state[FIGURES][self.start :]
        return False


def class_votes(question_id: str) -> tuple:
    """The class's votes on a question for the handout: ((round, ((answer, votes), ...)), ...)."""
    if role() != "teacher":
        return ()
    rounds = []
    for round_ in (1, 2):
        try:
            histogram = classroom().histogram(st.session_state[CLASS], question_id, round_)
        except InputError:
            return tuple(rounds)
        if histogram.total or round_ == 1:
            rounds.append((f"round {round_}", tuple(histogram.counts.items())))
    return tuple(rounds)


def revealed(question_id: str) -> bool:
    return question_id in st.session_state.get(REVEALED, set())


# --- students -------------------------------------------------------------------------------------------


def _join(key: str) -> None:
    typed = st.session_state.get(key) or ""
    code = normalise_code(typed)
    token = classroom().join(code)
    st.session_state[CLASS], st.session_state[ME], st.session_state[TEACHER] = code, token, None


def join_form(key: str = "lessons_join_code") -> None:
    """A code box and Join (prefilled from a shared link's code)."""
    code = st.session_state.get(CLASS)
    if code and role() == "joining" and key not in st.session_state:
        st.session_state[key] = code
    with st.container(border=True):
        st.markdown("**Join a class**: type the code your teacher shows.")
        box, button = st.columns([3, 2], vertical_alignment="bottom")
        box.text_input("Class code", key=key, max_chars=40, placeholder="K7PQ2M")
        button.button(
            "Join",
            key="lessons_join",
            icon=":material/login:",
            type="primary",
            on_click=guarded(_join),
            args=(key,),
            width="stretch",
        )


def show_note() -> None:
    """The sentence a refused vote or an ended class left for this run."""
    note = st.session_state.pop(VOTE_NOTE, None)
    if note:
        st.info(plain(note))


def student_screen() -> None:
    """A student's view of the class: joined, then each question as the teacher opens it."""
    code = st.session_state[CLASS]
    st.markdown(f"You are in class **{code}**. Your answers are anonymous.")
    live_student(code, st.session_state[ME])
    st.button("Leave the class", key="lessons_leave", icon=":material/logout:", on_click=leave)


@st.fragment(run_every=LIVE_SECONDS)
def live_student(code: str, token: str) -> None:
    run_safely(lambda: _student(code, token))


def _student(code: str, token: str) -> None:
    state = classroom().state(code)
    if state.ended:
        st.warning("This class session is over; ask your teacher for a new code, or do a lab on your own.")
        return
    question = state.question
    if question is None:
        lab = BY_ID.get(state.lab)
        st.info(plain(f"Waiting for your teacher to ask the first question{' of ' + lab.title if lab else ''}."))
        return
    _question_heading(state.lab, question)
    receipt = st.session_state.get(RECEIPTS, {}).get((question.id, state.round))
    if not state.is_open:
        st.info(
            "The voting is closed: the answer is on your teacher's screen."
            + (f" You answered {receipt}." if receipt else "")
        )
        return
    if state.round == 2:
        st.info("Round 2: talk it over with your neighbours, then vote again (you may keep your answer).")
    _ballot(code, token, question, state.round, receipt)


def _question_heading(lab_id: str, question: Question) -> None:
    found = step_of(question.id)
    lab = BY_ID.get(found[0]) if found else None
    steps = [s.id for s in lab.steps] if lab else []
    if lab and found[1] in steps:
        st.caption(plain(f"{lab.title}: question {steps.index(found[1]) + 1} of {len(steps)}"))
    st.markdown("### " + plain(question.text or "Your teacher's question"))


def _ballot(code: str, token: str, question: Question, round_: int, receipt: str | None) -> None:
    key = f"lessons_ballot_{question.id}_{round_}"
    if question.choices:
        st.radio("Your answer", question.choices, index=None, key=key)
    else:
        st.number_input(
            "Your answer (a number)", value=None, key=key, format="%g", step=1.0 if question.integer else 0.1
        )
    request_id = uuid.uuid4().hex  # one per drawing of the button: a double click sends it twice, counted once
    st.button(
        "Vote",
        key="lessons_vote",
        icon=":material/how_to_vote:",
        type="primary",
        on_click=guarded(_vote),
        args=(code, token, question, round_, key, request_id),
    )
    refused = st.session_state.get(BALLOT_NOTES, {}).get((question.id, round_))
    if refused:  # kept until the next vote: the screen reruns every LIVE_SECONDS
        st.warning(plain(refused))
    elif receipt is not None:
        st.success(plain(f"Vote counted: {receipt}. You can change it until the voting closes."))


def _vote(code: str, token: str, question: Question, round_: int, key: str, request_id: str) -> None:
    notes = st.session_state.setdefault(BALLOT_NOTES, {})
    value = st.session_state.get(key)
    if value is None:
        notes[(question.id, round_)] = "Choose or type an answer first."
        return
    try:
        receipt = classroom().vote(code, token, question.id, round_, value, request_id)
    except InputError as refusal:  # one sentence (a closed round, an answer out of range, an expired code...)
        notes[(question.id, round_)] = str(refusal)
        return
    notes.pop((question.id, round_), None)
    st.session_state.setdefault(RECEIPTS, {})[(question.id, round_)] = receipt.answer


def handout_question(title: str, answer: Answer, learner: str | None) -> HandoutQuestion:
    """One step for the handout: the question, this learner's or this class's answers, the model's once shown."""
    question_id = class_question(answer).id
    shown = revealed(question_id) or (role() == "alone" and learner is not None)
    return HandoutQuestion(
        title,
        answer.question,
        answer.choices,
        answer.shown if shown else "",
        answer.explanation if shown else "",
        learner or "",
        answer.accepts(learner) if learner is not None else None,
        class_votes(question_id),
    )


def remaining(expires_at: float) -> str:
    minutes = max(0, int((expires_at - time.time()) // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min"
