"""Lessons: guided labs and a class that votes (issue 24), pure Python (no Streamlit, no torch); the pages
live in explorer.ui.

The labs: ``core`` holds the data model (Lab, Step, Answer), ``labs`` the labs themselves (``LABS``, ``lab``),
and one ``keys_*`` module per family the answer-key functions, which measure the live model through the
adapters on the view as it is set up: change the text and the answer follows.

The class: storage and class sessions.

What the UI calls::

    from explorer.lessons import Classroom, ClassError, Question, open_store

    room = Classroom(open_store())  # SQLite in the data folder, or EXPLORER_DATABASE_URL's PostgreSQL
    made = room.create_session(lab)                     # teacher: .code, .teacher_token, .expires_at
    token = room.join(code)                             # student: anonymous participant token
    room.open_question(code, teacher_token, Question.choice(qid, choices))  # or Question.number(qid, lo, hi)
    room.vote(code, token, qid, round_, answer, request_id)   # -> Receipt; idempotent per request id
    room.close_question(...); room.vote_again(...)      # round 2: discuss and vote again
    room.histogram(code, qid, round_); room.shift(code, qid); room.state(code)
    room.end_session(code, teacher_token); room.purge_expired()

Every refusal is an ``explorer.text.InputError`` (``ClassError``, ``AnswerError``, ``StoreError``)
whose message is one sentence to show as is (through ``explorer.text.plain``). The rules (expiry,
idempotency, rounds) are in ``explorer.lessons.classes``; the databases in ``explorer.lessons.store``;
``benchmarks.votes`` measures votes per second with several processes.
"""

from explorer.lessons.classes import (
    CODE_ALPHABET,
    SESSION_HOURS,
    ClassError,
    Classroom,
    Created,
    Histogram,
    Receipt,
    SessionState,
    Shift,
    normalise_code,
)
from explorer.lessons.questions import AnswerError, Question
from explorer.lessons.store import Store, StoreError, open_store

__all__ = [
    "CODE_ALPHABET",
    "SESSION_HOURS",
    "AnswerError",
    "ClassError",
    "Classroom",
    "Created",
    "Histogram",
    "Question",
    "Receipt",
    "SessionState",
    "Shift",
    "Store",
    "StoreError",
    "normalise_code",
    "open_store",
]
