"""Class sessions and their votes (explorer.lessons, issue 24), every test against a new SQLite file and
against a new database on a real PostgreSQL server (the ``store_url`` fixture in conftest.py)."""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid

import pytest

from explorer.lessons import (
    CODE_ALPHABET,
    SESSION_HOURS,
    ClassError,
    Classroom,
    Question,
    StoreError,
    normalise_code,
    open_store,
)
from explorer.lessons.classes import MAX_REQUESTS_PER_ROUND, RETENTION_HOURS
from explorer.lessons.store import SCHEMA_VERSION, SQLITE_FILE
from explorer.text import InputError

CHOICES = ("causal", "bidirectional", "both")
HOSTILE = [
    "x" * 1_000_000,
    "causal\x00",
    "causal\u202e",  # a right-to-left override
    "caus\u200bal",  # a zero-width space inside
    "\x1b[31mcausal",
    "'; DROP TABLE lessons_votes; --",
    "causal' OR '1'='1",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "**causal**",
    "[causal](http://evil.example)",
    "",
    "   ",
    None,
    3,
    True,
    ["causal"],
    {"answer": "causal"},
    b"causal",
]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(store_url):
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def room(store, clock):
    return Classroom(store, clock=clock)


@pytest.fixture
def session(room):
    """A session with the choice question "q1" open: (room, code, teacher token)."""
    made = room.create_session("encoder-attention")
    room.open_question(made.code, made.teacher_token, Question.choice("q1", CHOICES))
    return room, made.code, made.teacher_token


def rid() -> str:
    return uuid.uuid4().hex


def one_sentence(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and len(message) < 200, message
    assert len(re.findall(r"[.!?](\s|$)", message)) == 1, message
    return message


def rows(store, table: str) -> int:
    with store.transaction() as tx:
        return tx.one(f"SELECT COUNT(*) FROM {table}")[0]


def test_schema_is_created_once_with_its_version(store_url, store):
    open_store(store_url).close()  # a second opening changes nothing
    with store.transaction() as tx:
        assert tx.all("SELECT version FROM lessons_schema") == [(SCHEMA_VERSION,)]
    with store.transaction(write=True) as tx:
        tx.run("INSERT INTO lessons_schema (version) VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="schema version 2") as error:
        open_store(store_url)
    one_sentence(error)


def test_sqlite_lives_in_the_data_folder_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("EXPLORER_DATABASE_URL", raising=False)
    store = open_store()
    try:
        assert store.kind == "sqlite" and store.where == str(tmp_path / "data" / SQLITE_FILE)
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "data" / SQLITE_FILE) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    monkeypatch.setenv("EXPLORER_DATABASE_URL", "mysql://root:secret@db/x")
    with pytest.raises(StoreError) as error:
        open_store()
    assert "secret" not in one_sentence(error)


def test_an_unreachable_database_is_one_sentence_with_the_traceback_in_the_log(tmp_path, monkeypatch, caplog):
    import socket

    from explorer.lessons import store as store_module

    monkeypatch.setattr(store_module, "CONNECT_TIMEOUT_S", 1.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there
    (tmp_path / "file").write_text("a file where the data folder should be")
    for url, data_dir in [(f"postgresql://user:secret@127.0.0.1:{port}/x", None), ("", tmp_path / "file" / "data")]:
        caplog.clear()
        with pytest.raises(StoreError, match="not answering") as error:
            open_store(url, data_dir=data_dir)
        one_sentence(error)
        assert caplog.records[-1].levelname == "ERROR" and caplog.records[-1].exc_info
        assert "secret" not in caplog.text


def test_codes_are_short_and_unambiguous_and_typed_codes_are_forgiven(room, clock):
    made = room.create_session("lab")
    assert len(made.code) == 6 and set(made.code) <= set(CODE_ALPHABET)
    assert not set("0O1I") & set(CODE_ALPHABET)
    assert made.expires_at == clock.now + SESSION_HOURS * 3600
    typed = f" {made.code[:3].lower()}-{made.code[3:].lower()} "
    assert normalise_code(typed) == made.code
    assert room.join(typed)
    assert room.state(made.code).participants == 1


@pytest.mark.parametrize("typed", ["", "ABC", "ABCDEFG", "O0I1AB", "ABC;--", "'; DROP TABLE x", "x" * 10_000, None, 7])
def test_a_malformed_code_is_refused_in_one_sentence(room, typed):
    with pytest.raises(ClassError) as error:
        room.join(typed)
    assert "like K7PQ2M" in one_sentence(error)


def test_an_unknown_code_is_refused_in_one_sentence(room):
    room.create_session("lab")
    with pytest.raises(ClassError, match="No class session has the code") as error:
        room.join("ZZZZZZ")
    one_sentence(error)
    assert rows(room.store, "lessons_participants") == 0


def test_a_double_click_a_replay_and_a_change_count_one_vote(session):
    room, code, _ = session
    student = room.join(code)
    first = rid()
    assert room.vote(code, student, "q1", 1, "causal", first).status == "counted"
    assert room.vote(code, student, "q1", 1, "causal", first).status == "replayed"  # reconnect resends it
    assert room.vote(code, student, "q1", 1, "causal", rid()).status == "unchanged"  # double click, new id
    assert room.vote(code, student, "q1", 1, "both", rid()).status == "changed"  # the later answer replaces it
    histogram = room.histogram(code, "q1", 1)
    assert histogram.counts == {"causal": 0, "bidirectional": 0, "both": 1} and histogram.total == 1


def test_a_replayed_old_request_never_overwrites_a_newer_answer(session):
    room, code, _ = session
    student = room.join(code)
    old = rid()
    room.vote(code, student, "q1", 1, "causal", old)
    room.vote(code, student, "q1", 1, "both", rid())
    receipt = room.vote(code, student, "q1", 1, "causal", old)
    assert receipt.status == "replayed" and receipt.answer == "both"
    receipt = room.vote(code, student, "q1", 1, "bidirectional", old)  # same id, other answer: still a replay
    assert receipt.status == "replayed" and room.histogram(code, "q1", 1).counts["both"] == 1
    assert rows(room.store, "lessons_requests") == 2


def test_an_expired_code_is_refused_and_purged_a_day_later(session, clock):
    room, code, teacher = session
    student = room.join(code)
    room.vote(code, student, "q1", 1, "causal", rid())
    clock.now += SESSION_HOURS * 3600
    for attempt in (
        lambda: room.join(code),
        lambda: room.vote(code, student, "q1", 1, "both", rid()),
        lambda: room.vote_again(code, teacher, "q1"),
    ):
        with pytest.raises(ClassError, match="expired") as error:
            attempt()
        assert "3 hours" in one_sentence(error)
    assert room.histogram(code, "q1", 1).total == 1  # the teacher's handout still reads it
    assert room.state(code).ended and not room.state(code).is_open
    assert room.purge_expired() == 0
    clock.now += RETENTION_HOURS * 3600 + 1
    room.create_session("next-class")  # purges what is a day past its expiry
    assert room.purge_expired() == 0
    assert rows(room.store, "lessons_sessions") == 1  # only the new one
    for table in ("lessons_questions", "lessons_participants", "lessons_votes", "lessons_requests"):
        assert rows(room.store, table) == 0, table
    with pytest.raises(ClassError, match="No class session"):
        room.join(code)


def test_a_question_that_is_not_open_takes_no_vote(session):
    room, code, teacher = session
    student = room.join(code)
    room.close_question(code, teacher, "q1")
    with pytest.raises(ClassError, match="not open") as error:
        room.vote(code, student, "q1", 1, "causal", rid())
    one_sentence(error)
    with pytest.raises(ClassError, match="no such question") as error:
        room.vote(code, student, "q2", 1, "causal", rid())
    one_sentence(error)
    room.vote_again(code, teacher, "q1")
    with pytest.raises(ClassError, match="round 2 now") as error:
        room.vote(code, student, "q1", 1, "causal", rid())  # a stale round-1 page
    one_sentence(error)
    assert rows(room.store, "lessons_votes") == 0 and rows(room.store, "lessons_requests") == 0


def test_hostile_answers_are_refused_in_one_sentence_and_nothing_is_stored(session):
    room, code, _ = session
    student = room.join(code)
    for answer in HOSTILE:
        with pytest.raises(InputError) as error:
            room.vote(code, student, "q1", 1, answer, rid())
        message = one_sentence(error)
        assert not isinstance(answer, str) or len(answer.strip()) < 3 or answer.strip() not in message
    for question, request in [("q1'; --", rid()), ("q1", "short"), ("q1", "x" * 65), ("q1", "<b>12345678</b>")]:
        with pytest.raises(InputError) as error:
            room.vote(code, student, question, 1, "causal", request)
        one_sentence(error)
    for round_ in (0, 3, "1", 1.0, True, None):
        with pytest.raises(ClassError) as error:
            room.vote(code, student, "q1", round_, "causal", rid())
        one_sentence(error)
    assert rows(room.store, "lessons_votes") == 0 and rows(room.store, "lessons_requests") == 0
    assert room.vote(code, student, "q1", 1, " causal ", rid()).answer == "causal"  # trimmed, then exact


def test_a_stranger_or_another_sessions_student_cannot_vote(session):
    room, code, _ = session
    other = room.create_session("lab")
    outsider = room.join(other.code)
    for token in (outsider, "A" * 22, "x", None, "' OR 1=1 --" * 3):
        with pytest.raises(ClassError, match="join") as error:
            room.vote(code, token, "q1", 1, "causal", rid())
        one_sentence(error)
    assert rows(room.store, "lessons_votes") == 0


def test_only_the_teacher_runs_the_session(session):
    room, code, teacher = session
    for token in ("", "guess", None, teacher + "x"):
        with pytest.raises(ClassError, match="Only the teacher") as error:
            room.close_question(code, token, "q1")
        one_sentence(error)
    assert room.state(code).is_open
    room.set_lab(code, teacher, "decoder-temperature")
    assert room.state(code).lab == "decoder-temperature" and room.state(code).question is None
    room.end_session(code, teacher)
    with pytest.raises(ClassError, match="has ended") as error:
        room.join(code)
    one_sentence(error)


def test_reopening_a_question_keeps_its_round_and_refuses_other_choices(session):
    room, code, teacher = session
    room.vote_again(code, teacher, "q1")
    room.close_question(code, teacher, "q1")
    room.open_question(code, teacher, Question.choice("q1", CHOICES))
    state = room.state(code)
    assert state.question.id == "q1" and state.round == 2 and state.is_open
    with pytest.raises(ClassError, match="other choices") as error:
        room.open_question(code, teacher, Question.choice("q1", ["yes", "no"]))
    one_sentence(error)


def test_number_answers_are_bounded_and_stored_in_one_spelling(session):
    room, code, teacher = session
    room.open_question(code, teacher, Question.number("layer", 0, 30, integer=True))
    room.open_question(code, teacher, Question.number("share", 0, 1))
    students = [room.join(code) for _ in range(6)]
    for student, answer in zip(students, ["12", "+12", "12.0", 7, " 3 ", "1e1"]):
        room.vote(code, student, "layer", 1, answer, rid())
    assert room.histogram(code, "layer", 1).counts == {"3": 1, "7": 1, "10": 1, "12": 3}
    room.vote(code, students[0], "share", 1, ".25", rid())
    room.vote(code, students[1], "share", 1, "0.250", rid())
    assert room.histogram(code, "share", 1).counts == {"0.25": 2}
    refused = ["31", "-1", "12.5", "nan", "inf", "1e999", "0x10", "1_0", "12 13", "1,2", 10**400, float("nan"), "١٢"]
    for answer in refused:
        with pytest.raises(InputError) as error:
            room.vote(code, students[2], "layer", 1, answer, rid())
        one_sentence(error)
    assert room.histogram(code, "layer", 1).total == 6


def test_the_shift_counts_students_who_voted_in_both_rounds(session):
    room, code, teacher = session
    students = [room.join(code) for _ in range(6)]
    first = ["causal", "causal", "bidirectional", "both", "causal", None]
    second = ["bidirectional", "causal", "bidirectional", "bidirectional", None, "causal"]
    for student, answer in zip(students, first):
        if answer:
            room.vote(code, student, "q1", 1, answer, rid())
    room.close_question(code, teacher, "q1")
    room.vote_again(code, teacher, "q1")
    for student, answer in zip(students, second):
        if answer:
            room.vote(code, student, "q1", 2, answer, rid())
    assert room.histogram(code, "q1", 1).counts == {"causal": 3, "bidirectional": 1, "both": 1}
    assert room.histogram(code, "q1", 2).counts == {"causal": 2, "bidirectional": 3, "both": 0}
    shift = room.shift(code, "q1")
    assert shift.voted_both == 4 and shift.changed == 2
    assert shift.transitions == {
        ("causal", "bidirectional"): 1,
        ("causal", "causal"): 1,
        ("bidirectional", "bidirectional"): 1,
        ("both", "bidirectional"): 1,
    }


def test_changing_an_answer_has_a_limit(session):
    room, code, _ = session
    student = room.join(code)
    for i in range(MAX_REQUESTS_PER_ROUND):
        room.vote(code, student, "q1", 1, CHOICES[i % 3], rid())
    with pytest.raises(ClassError, match="too often") as error:
        room.vote(code, student, "q1", 1, "causal", rid())
    one_sentence(error)
    assert room.histogram(code, "q1", 1).total == 1


def test_threads_sharing_one_store_count_every_vote_once(session):
    """A Streamlit replica runs every visitor in a thread over one store (a pool of connections)."""
    room, code, _ = session
    students = [room.join(code) for _ in range(24)]
    requests = [(s, rid(), CHOICES[i % 3]) for i, s in enumerate(students)]
    errors = []

    def send_all():
        try:
            for student, request, answer in requests:  # every thread sends every request: one counts
                room.vote(code, student, "q1", 1, answer, request)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=send_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert room.histogram(code, "q1", 1).counts == {c: 8 for c in CHOICES}
    assert rows(room.store, "lessons_requests") == 24


def test_a_declared_question_is_checked_before_any_student_sees_it():
    with pytest.raises(ValueError):
        Question.choice("q", ["only one"])
    with pytest.raises(ValueError):
        Question.choice("q", ["a", "a"])
    with pytest.raises(ValueError):
        Question.choice("q", ["a", "b\x00"])
    with pytest.raises(ValueError):
        Question.number("q", 5, 1)
    with pytest.raises(InputError):
        Question.choice("q 1; drop", ["a", "b"])
