"""Class sessions: a teacher opens one, students join with its code and vote, twice if asked.

Public API (every method is one database transaction; every refusal is a ``ClassError`` whose
message is one sentence for the person who asked)::

    room = Classroom(open_store())                    # clock=time.time unless a test injects one
    made = room.create_session("decoder-sink")        # -> Created(code "K7PQ2M", teacher_token, expires_at)
    student = room.join("k7pq-2m")                    # -> participant token (anonymous, random)
    room.open_question(code, teacher, Question.choice("q1", ["yes", "no"]))  # current question, round 1, open
    room.vote(code, student, "q1", 1, "yes", request_id)  # -> Receipt("counted"|"changed"|"unchanged"|"replayed")
    room.close_question(code, teacher, "q1")          # no more votes in this round
    room.vote_again(code, teacher, "q1")              # round 2 ("discuss and vote again"), open
    room.histogram(code, "q1", 1)                     # -> Histogram(counts {"yes": 12, "no": 8}, total 20)
    room.shift(code, "q1")                            # -> Shift: (round-1, round-2) answers of who voted twice
    room.state(code)                                  # -> SessionState (lab, current question, round, open, joined...)
    room.set_lab(code, teacher, "encoder-mask")       # the lab the class follows now
    room.end_session(code, teacher)                   # votes and joins refused from now on
    room.purge_expired()                              # delete sessions a day past their expiry

Rules:

* A code is 6 characters from ``CODE_ALPHABET`` (no 0/O/1/I); typed codes are read case-blind with
  spaces and dashes ignored. A session lasts ``SESSION_HOURS`` (3 hours) from its creation; after that,
  or after ``end_session``, joining and voting are refused. The teacher's reads (histogram, shift,
  state) keep working until ``purge_expired`` deletes the session, ``RETENTION_HOURS`` after expiry.
* Teacher actions need the ``teacher_token`` that ``create_session`` returned (only its SHA-256 is stored).
* A participant token is all that is stored about a student; nothing typed besides the answer is kept.
* One vote per participant, question and round. Voting again in the same round **replaces** the
  earlier answer (the count stays one; students may change their mind until the round closes).
  ``request_id`` (made by the client, one per click) is the idempotency key: a request id already
  stored changes nothing and returns ``"replayed"``, even if the round has closed since, so a
  replayed old request can never overwrite a newer answer. A participant may send at most
  ``MAX_REQUESTS_PER_ROUND`` requests per question and round.
* A vote is accepted only for the question's current round while that question is open. Each
  question opens and closes on its own: opening the next one does not close the previous one (a
  student still on it may answer) until the teacher closes it.
* Open one store per process and share it (``st.cache_resource``): it pools its connections and
  every method is safe to call from several threads at once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from explorer.lessons.questions import AnswerError, Question, check_id
from explorer.lessons.store import Store, StoreError, Tx

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 symbols, no 0/O/1/I: 32**6 ~ 1.07e9 codes
CODE_LENGTH = 6
SESSION_HOURS = 3
RETENTION_HOURS = 24
MAX_PARTICIPANTS = 1000
MAX_REQUESTS_PER_ROUND = 20
# The client's request id: long enough to be unique without coordination (a uuid4 is 36 characters).
REQUEST_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


class ClassError(AnswerError):
    """A class-session request that is refused; the message is one sentence for the user."""


@dataclass(frozen=True)
class Created:
    code: str
    teacher_token: str
    expires_at: float  # Unix seconds


@dataclass(frozen=True)
class SessionState:
    code: str
    lab: str
    question: Question | None  # the current question, None before the first is opened
    round: int  # of the current question (1 or 2); 0 when there is none
    is_open: bool  # whether the current question takes votes now
    expires_at: float
    ended: bool
    participants: int


@dataclass(frozen=True)
class Receipt:
    status: str  # "counted" (first vote this round), "changed", "unchanged", "replayed" (request id seen)
    answer: str  # the answer stored now for this participant, question and round


@dataclass(frozen=True)
class Histogram:
    question: str
    round: int
    counts: dict[str, int]  # answer -> votes, in display order (every declared choice, even at 0)
    total: int


@dataclass(frozen=True)
class Shift:
    question: str
    transitions: dict[tuple[str, str], int]  # (round-1 answer, round-2 answer) -> students
    voted_both: int  # students with a vote in both rounds (the only ones counted here)
    changed: int  # of those, how many answered differently in round 2


def normalise_code(typed: object) -> str:
    """The code as stored, from what a person typed ("k7pq-2m" -> "K7PQ2M"), or ClassError."""
    text = re.sub(r"[\s-]", "", typed.upper()) if isinstance(typed, str) and len(typed) <= 40 else ""
    if len(text) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in text):
        raise ClassError(f"A class code is {CODE_LENGTH} letters and digits, like K7PQ2M.")
    return text


def _digest(teacher_token: str) -> str:
    return hashlib.sha256(teacher_token.encode()).hexdigest()


def _token(value: object, pattern: re.Pattern, sentence: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ClassError(sentence)
    return value


class Classroom:
    """Class sessions on one store. Thread-safe: every call is its own transaction."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    # --- the teacher -------------------------------------------------------------------------

    def create_session(self, lab: str) -> Created:
        """A new session on ``lab``; sessions a day past their expiry are purged first (no cron needed)."""
        check_id(lab, "lab")
        self.purge_expired()
        teacher_token = secrets.token_urlsafe(24)
        now = self.clock()
        expires_at = now + SESSION_HOURS * 3600
        for _ in range(10):  # a clash among ~1e9 codes is rare; ten in a row means something else is wrong
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            with self.store.transaction(write=True) as tx:
                added = tx.run(
                    "INSERT INTO lessons_sessions (code, teacher_hash, lab, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
                    (code, _digest(teacher_token), lab, now, expires_at),
                )
            if added:
                return Created(code, teacher_token, expires_at)
        raise StoreError("No free class code was found; please try again.")

    def set_lab(self, code: str, teacher_token: str, lab: str) -> None:
        check_id(lab, "lab")
        with self.store.transaction(write=True) as tx:
            code = self._teacher(tx, code, teacher_token)
            tx.run("UPDATE lessons_sessions SET lab = ?, question = NULL WHERE code = ?", (lab, code))

    def open_question(self, code: str, teacher_token: str, question: Question) -> None:
        """Make ``question`` current and open it: round 1 when new, its current round when opened before
        (the same id must keep the same choices or bounds)."""
        question = question.validated()
        with self.store.transaction(write=True) as tx:
            code = self._teacher(tx, code, teacher_token)
            row = tx.one("SELECT spec FROM lessons_questions WHERE code = ? AND question = ?", (code, question.id))
            if row and row[0] != question.to_json():
                raise ClassError("This question was opened before with other choices; give it a new id.")
            if row:
                tx.run("UPDATE lessons_questions SET is_open = 1 WHERE code = ? AND question = ?", (code, question.id))
            else:
                tx.run(
                    "INSERT INTO lessons_questions (code, question, spec, round, is_open) VALUES (?, ?, ?, 1, 1)",
                    (code, question.id, question.to_json()),
                )
            tx.run("UPDATE lessons_sessions SET question = ? WHERE code = ?", (question.id, code))

    def close_question(self, code: str, teacher_token: str, question_id: str) -> None:
        self._set_round(code, teacher_token, question_id, "is_open = 0")

    def vote_again(self, code: str, teacher_token: str, question_id: str) -> None:
        """Round 2 of the question, open ("discuss and vote again"); round-1 votes stay as they were."""
        self._set_round(code, teacher_token, question_id, "round = 2, is_open = 1")

    def _set_round(self, code: str, teacher_token: str, question_id: str, assignment: str) -> None:
        check_id(question_id, "question")
        with self.store.transaction(write=True) as tx:
            code = self._teacher(tx, code, teacher_token)
            changed = tx.run(
                f"UPDATE lessons_questions SET {assignment} WHERE code = ? AND question = ?", (code, question_id)
            )
            if not changed:
                raise ClassError("This class session has no such question.")

    def end_session(self, code: str, teacher_token: str) -> None:
        with self.store.transaction(write=True) as tx:
            code = self._teacher(tx, code, teacher_token)
            tx.run("UPDATE lessons_sessions SET ended_at = ? WHERE code = ? AND ended_at IS NULL", (self.clock(), code))

    def purge_expired(self) -> int:
        """Delete every session that expired more than RETENTION_HOURS ago, with all it holds; -> sessions."""
        cutoff = self.clock() - RETENTION_HOURS * 3600
        old = "SELECT code FROM lessons_sessions WHERE expires_at < ?"
        with self.store.transaction(write=True) as tx:
            tx.run(
                f"DELETE FROM lessons_requests WHERE participant IN"
                f" (SELECT token FROM lessons_participants WHERE code IN ({old}))",
                (cutoff,),
            )
            for table in ("lessons_votes", "lessons_participants", "lessons_questions"):
                tx.run(f"DELETE FROM {table} WHERE code IN ({old})", (cutoff,))
            return tx.run("DELETE FROM lessons_sessions WHERE expires_at < ?", (cutoff,))

    def _teacher(self, tx: Tx, code: str, teacher_token: str) -> str:
        code, teacher_hash = self._live(tx, code)
        if not isinstance(teacher_token, str) or not hmac.compare_digest(teacher_hash, _digest(teacher_token)):
            raise ClassError("Only the teacher who started this class session can do that.")
        return code

    # --- students ----------------------------------------------------------------------------

    def join(self, code: str) -> str:
        """A new anonymous participant token for the session (nothing else about the student is kept)."""
        token = secrets.token_urlsafe(16)  # 22 characters, 128 random bits
        with self.store.transaction(write=True) as tx:
            code = self._live(tx, code)[0]
            joined = tx.one("SELECT COUNT(*) FROM lessons_participants WHERE code = ?", (code,))[0]
            if joined >= MAX_PARTICIPANTS:
                raise ClassError(f"This class session is full ({MAX_PARTICIPANTS} students).")
            tx.run(
                "INSERT INTO lessons_participants (token, code, joined_at) VALUES (?, ?, ?)",
                (token, code, self.clock()),
            )
        return token

    def vote(
        self, code: str, participant: str, question_id: str, round_: int, answer: object, request_id: str
    ) -> Receipt:
        """Store one answer (see the module's rules); -> what happened, or ClassError/AnswerError."""
        participant = _token(participant, TOKEN_PATTERN, "This browser has not joined the class session; join again.")
        request_id = _token(request_id, REQUEST_PATTERN, "The vote request has no valid id; please vote again.")
        check_id(question_id, "question")
        if type(round_) is not int or round_ not in (1, 2):
            raise ClassError("A vote is for round 1 or round 2.")
        with self.store.transaction(write=True) as tx:
            code = self._live(tx, code)[0]
            if not tx.one("SELECT 1 FROM lessons_participants WHERE token = ? AND code = ?", (participant, code)):
                raise ClassError("This browser has not joined this class session; join again with the code.")
            seen = tx.one(
                "SELECT question, round FROM lessons_requests WHERE participant = ? AND request_id = ?",
                (participant, request_id),
            )
            if seen:
                return Receipt("replayed", self._stored(tx, code, participant, *seen))
            question = self._open(tx, code, question_id, round_)
            return self._store_vote(tx, code, participant, question, round_, question.check(answer), request_id)

    def _open(self, tx: Tx, code: str, question_id: str, round_: object) -> Question:
        row = tx.one(
            "SELECT spec, round, is_open FROM lessons_questions WHERE code = ? AND question = ?" + tx.for_share,
            (code, question_id),
        )
        if row is None:
            raise ClassError("This class session has no such question.")
        spec, current, is_open = row
        if round_ != current:
            raise ClassError(f"Votes for round {round_} are over; this question is in round {current} now.")
        if not is_open:
            raise ClassError("This question is not open for votes.")
        return Question.from_json(question_id, spec)

    def _store_vote(
        self, tx: Tx, code: str, participant: str, question: Question, round_: int, answer: str, request_id: str
    ) -> Receipt:
        sent = tx.one(
            "SELECT COUNT(*) FROM lessons_requests WHERE participant = ? AND question = ? AND round = ?",
            (participant, question.id, round_),
        )[0]
        if sent >= MAX_REQUESTS_PER_ROUND:
            raise ClassError("You have changed this answer too often; your last answer stands.")
        added = tx.run(
            "INSERT INTO lessons_requests (participant, request_id, question, round) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (participant, request_id) DO NOTHING",
            (participant, request_id, question.id, round_),
        )
        if not added:  # the same request arrived twice at once; the other copy stored it
            return Receipt("replayed", self._stored(tx, code, participant, question.id, round_))
        before = self._stored(tx, code, participant, question.id, round_)
        tx.run(
            "INSERT INTO lessons_votes (code, question, round, participant, answer, request_id, voted_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code, question, round, participant) DO UPDATE"
            " SET answer = excluded.answer, request_id = excluded.request_id, voted_at = excluded.voted_at",
            (code, question.id, round_, participant, answer, request_id, self.clock()),
        )
        status = "counted" if before is None else ("unchanged" if before == answer else "changed")
        return Receipt(status, answer)

    @staticmethod
    def _stored(tx: Tx, code: str, participant: str, question_id: str, round_: int) -> str | None:
        row = tx.one(
            "SELECT answer FROM lessons_votes WHERE code = ? AND question = ? AND round = ? AND participant = ?",
            (code, question_id, round_, participant),
        )
        return row[0] if row else None

    def _live(self, tx: Tx, typed_code: object) -> tuple[str, str]:
        """(code, its teacher's hash) when the session exists, has not expired and was not ended."""
        code = normalise_code(typed_code)
        row = tx.one("SELECT expires_at, ended_at, teacher_hash FROM lessons_sessions WHERE code = ?", (code,))
        if row is None:
            raise ClassError(f"No class session has the code {code}; check it with your teacher.")
        if row[1] is not None:
            raise ClassError("This class session has ended; ask your teacher for a new code.")
        if self.clock() >= row[0]:
            raise ClassError(
                f"This class code has expired (sessions last {SESSION_HOURS} hours); ask your teacher for a new one."
            )
        return code, row[2]

    # --- what the teacher's screen shows -----------------------------------------------------

    def state(self, code: str) -> SessionState:
        code = normalise_code(code)
        with self.store.transaction() as tx:
            row = tx.one("SELECT lab, question, expires_at, ended_at FROM lessons_sessions WHERE code = ?", (code,))
            if row is None:
                raise ClassError(f"No class session has the code {code}; check it with your teacher.")
            lab, question_id, expires_at, ended_at = row
            joined = tx.one("SELECT COUNT(*) FROM lessons_participants WHERE code = ?", (code,))[0]
            current = question_id and tx.one(
                "SELECT spec, round, is_open FROM lessons_questions WHERE code = ? AND question = ?",
                (code, question_id),
            )
        question = Question.from_json(question_id, current[0]) if current else None
        ended = ended_at is not None or self.clock() >= expires_at
        is_open = bool(current and current[2]) and not ended
        return SessionState(code, lab, question, current[1] if current else 0, is_open, expires_at, ended, joined)

    def histogram(self, code: str, question_id: str, round_: int) -> Histogram:
        code = normalise_code(code)
        with self.store.transaction() as tx:
            question = self._question(tx, code, question_id)
            rows = tx.all(
                "SELECT answer, COUNT(*) FROM lessons_votes WHERE code = ? AND question = ? AND round = ?"
                " GROUP BY answer",
                (code, question.id, round_),
            )
        found = dict(rows)
        counts = {answer: found.get(answer, 0) for answer in question.order(found)}
        return Histogram(question.id, round_, counts, sum(found.values()))

    def shift(self, code: str, question_id: str) -> Shift:
        code = normalise_code(code)
        with self.store.transaction() as tx:
            question = self._question(tx, code, question_id)
            rows = tx.all(
                "SELECT one.answer, two.answer FROM lessons_votes one JOIN lessons_votes two"
                " ON two.code = one.code AND two.question = one.question"
                " AND two.participant = one.participant"
                " WHERE one.code = ? AND one.question = ? AND one.round = 1 AND two.round = 2",
                (code, question.id),
            )
        transitions = Counter((first, second) for first, second in rows)
        changed = sum(n for (first, second), n in transitions.items() if first != second)
        return Shift(question.id, dict(transitions), len(rows), changed)

    @staticmethod
    def _question(tx: Tx, code: str, question_id: str) -> Question:
        check_id(question_id, "question")
        row = tx.one("SELECT spec FROM lessons_questions WHERE code = ? AND question = ?", (code, question_id))
        if row is None:
            raise ClassError("This class session has no such question.")
        return Question.from_json(question_id, row[0])
