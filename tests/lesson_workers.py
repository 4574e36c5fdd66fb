"""Child-process bodies for tests/test_lessons_concurrency.py (importable, so the spawn start method can run them)."""

from __future__ import annotations

import os
import random
import time

from explorer.lessons import Classroom, open_store


def open_only(url: str, ready) -> None:
    """Open (and so create) the store once every process is ready: the schema race."""
    ready.wait()
    open_store(url).close()


def send_requests(url: str, code: str, requests: list[tuple[str, str, str]], seed: int, ready, done) -> None:
    """Send every (student, request id, answer) in an order of our own; put the receipts' statuses on ``done``."""
    store = open_store(url)
    room = Classroom(store)
    mine = list(requests)
    random.Random(seed).shuffle(mine)
    ready.wait()
    statuses = [
        (student, room.vote(code, student, "q1", 1, answer, request).status) for student, request, answer in mine
    ]
    done.put(statuses)
    store.close()


def vote_and_log(url: str, code: str, votes: list[tuple[str, str, str]], log_path: str, ready) -> None:
    """Vote, and after each vote returns (it is committed) append "student answer" to ``log_path``
    with one unbuffered write, which survives this process being killed right after it."""
    store = open_store(url)
    room = Classroom(store)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    ready.wait()
    for student, request, answer in votes:
        room.vote(code, student, "q1", 1, answer, request)
        os.write(log, f"{student} {answer}\n".encode())
    store.close()


def vote_then_hang(url: str, code: str, student: str, in_transaction) -> None:
    """Vote, but stop inside the vote's transaction after its INSERTs (before COMMIT) until killed."""
    room = Classroom(open_store(url))
    store_vote = room._store_vote

    def hang(*args):
        store_vote(*args)
        in_transaction.set()
        time.sleep(600)

    room._store_vote = hang
    room.vote(code, student, "q1", 1, "A", "hung-request-id")
