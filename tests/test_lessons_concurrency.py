"""Several OS processes at once on one class store, SQLite file and PostgreSQL server alike (issue 24):
every vote counted exactly once, a schema created once by processes racing to create it, and a voter
killed with SIGKILL mid-way loses no vote it had committed."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections import Counter

import lesson_workers

from benchmarks.votes import measure_votes, start
from explorer.lessons import Classroom, Question, open_store
from explorer.lessons.store import SCHEMA_VERSION

CHOICES = ("A", "B", "C", "D")
SPAWN = multiprocessing.get_context("spawn")  # children inherit no pool threads or open database handles


def class_with_students(url: str, students: int):
    store = open_store(url)
    room = Classroom(store)
    made = room.create_session("concurrency")
    room.open_question(made.code, made.teacher_token, Question.choice("q1", CHOICES))
    return store, room, made.code, [room.join(made.code) for _ in range(students)]


def run_all(processes) -> None:
    for process in processes:
        start(process)  # never re-running a script Streamlit left as __main__ (benchmarks.votes.start)


def test_processes_creating_the_schema_at_once_create_it_once(store_url):
    ready = SPAWN.Barrier(4)
    processes = [SPAWN.Process(target=lesson_workers.open_only, args=(store_url, ready)) for _ in range(4)]
    run_all(processes)
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    store = open_store(store_url)
    with store.transaction() as tx:
        assert tx.all("SELECT version FROM lessons_schema") == [(SCHEMA_VERSION,)]
    store.close()


def test_the_same_requests_from_four_processes_count_once_each(store_url):
    """Every process resends every student's request (reconnects racing each other): one copy counts."""
    store, room, code, students = class_with_students(store_url, 40)
    requests = [(s, uuid.uuid4().hex, CHOICES[i % 4]) for i, s in enumerate(students)]
    ready, done = SPAWN.Barrier(4), SPAWN.Queue()
    processes = [
        SPAWN.Process(target=lesson_workers.send_requests, args=(store_url, code, requests, seed, ready, done))
        for seed in range(4)
    ]
    run_all(processes)
    statuses = [status for _ in processes for status in done.get(timeout=300)]
    for process in processes:
        process.join(60)
    counted = Counter(student for student, status in statuses if status == "counted")
    assert counted == Counter(students)  # exactly one "counted" per student, whichever process won
    assert Counter(status for _, status in statuses) == {"counted": 40, "replayed": 120}
    assert room.histogram(code, "q1", 1).counts == dict.fromkeys(CHOICES, 10)
    store.close()


def test_votes_per_second_measure_counts_every_vote(store_url):
    load = measure_votes(store_url, processes=3, votes_each=30)
    assert load.votes == 90 and load.per_second > 0


def test_a_voter_killed_mid_way_loses_no_committed_vote(store_url, tmp_path):
    store, room, code, students = class_with_students(store_url, 900)
    shares = [students[:300], students[300:600], students[600:]]
    votes = [[(s, uuid.uuid4().hex, CHOICES[i % 4]) for i, s in enumerate(share)] for share in shares]
    logs = [tmp_path / f"voter{i}.log" for i in range(3)]
    ready = SPAWN.Barrier(3)
    processes = [
        SPAWN.Process(target=lesson_workers.vote_and_log, args=(store_url, code, v, str(log), ready))
        for v, log in zip(votes, logs)
    ]
    run_all(processes)
    deadline = time.monotonic() + 120
    while not logs[0].exists() or len(logs[0].read_bytes().splitlines()) < 40:  # well under way
        assert time.monotonic() < deadline and processes[0].is_alive()
        time.sleep(0.005)
    os.kill(processes[0].pid, signal.SIGKILL)
    for process in processes:
        process.join(300)
    assert processes[0].exitcode == -signal.SIGKILL and processes[1].exitcode == processes[2].exitcode == 0
    stored = stored_votes(store, code)
    logged = [dict(line.split() for line in log.read_text().splitlines()) for log in logs]
    killed = {s: a for s, a in stored.items() if s in set(shares[0])}
    assert logged[0].items() <= killed.items()  # every vote the killed voter saw committed is there
    assert len(killed) - len(logged[0]) in (0, 1)  # at most the one committed before its log line
    assert len(killed) < 300  # it was killed mid-way
    assert {s: a for s, a in stored.items() if s not in killed} == logged[1] | logged[2]
    room.vote(code, shares[0][-1], "q1", 1, "A", uuid.uuid4().hex)  # the store takes votes afterwards
    store.close()


def stored_votes(store, code: str) -> dict[str, str]:
    with store.transaction() as tx:
        return dict(tx.all("SELECT participant, answer FROM lessons_votes WHERE code = ?", (code,)))


def test_a_voter_killed_inside_its_transaction_leaves_nothing_and_blocks_no_one(store_url):
    """Killed after its INSERTs, before COMMIT: the vote is not stored, and the write lock (SQLite) or
    row locks (PostgreSQL) it held are gone, so the next vote goes through at once."""
    store, room, code, students = class_with_students(store_url, 2)
    in_transaction = SPAWN.Event()
    process = SPAWN.Process(target=lesson_workers.vote_then_hang, args=(store_url, code, students[0], in_transaction))
    start(process)
    assert in_transaction.wait(120)
    os.kill(process.pid, signal.SIGKILL)
    process.join(60)
    began = time.monotonic()
    assert room.vote(code, students[1], "q1", 1, "B", uuid.uuid4().hex).status == "counted"
    assert time.monotonic() - began < 10  # not waiting out a lock (the busy timeout is 30 s)
    assert stored_votes(store, code) == {students[1]: "B"}
    assert room.vote(code, students[0], "q1", 1, "A", "hung-request-id").status == "counted"  # its id was not kept
    store.close()
