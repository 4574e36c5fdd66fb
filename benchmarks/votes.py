"""Votes per second into a class store, with several OS processes voting at once (issue 24), and a
throwaway PostgreSQL server for that measure and for the tests (no Streamlit, no torch).

    measure_votes(url, processes=4, votes_each=100) -> VoteLoad
        One class session, one open question; each process opens its own store, joins ``votes_each``
        students, waits for the others, then casts one vote per student. The clock runs from the
        moment every process is ready to the last vote; the histogram is checked afterwards (every vote
        counted exactly once, or RuntimeError).

    with throwaway_postgres() as url: ...
        Debian's PostgreSQL (initdb / pg_ctl from /usr/lib/postgresql/<version>/bin) in a temporary
        folder on a free port, run as the ``postgres`` user when we are root (the server refuses root);
        stopped and deleted afterwards. ``postgres_bin()`` is None when it is not installed.

    fresh_database(url) -> url of a new, empty database on the same server.

    vote_sections(table, processes, votes_each)
        The rows of ``python -m benchmarks`` (``--votes-only`` prints them alone): votes per second into
        SQLite (a new file) and into PostgreSQL (``EXPLORER_DATABASE_URL`` when set, else a throwaway server
        when Debian's postgresql is installed, else a row saying it was not measured), and on each store a class of
        40 simulated students through nginx with 2 replicas, one killed mid-way (``class_rows``,
        benchmarks/classload.py): seconds to the last vote, every vote counted once, the teacher's histogram delay p95.

``url`` is what ``explorer.lessons.open_store`` takes: ``sqlite:///path/file`` or ``postgresql://...``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHOICES = ("A", "B", "C", "D")
QUESTION = "load-q"


@dataclass(frozen=True)
class VoteLoad:
    store: str  # "sqlite" or "postgresql"
    processes: int
    votes: int
    seconds: float
    per_second: float


def start(process) -> None:
    """Start a spawned process without the child re-running this process's ``__main__``: spawn re-imports the parent's
    main module in the child, and after Streamlit has run a script in this process (AppTest.from_file in the test
    suite) ``__main__`` is that script, app.py: every child would run the whole app and die (exit code 1)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        process.start()
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def cast_votes(url: str, code: str, question_id: str, round_: int, answers: list[str], ready, done) -> None:
    """In a child process: join one student per answer, wait on ``ready`` (a Barrier), vote each answer
    once, put (votes, seconds) on ``done``."""
    from explorer.lessons import Classroom, open_store

    store = open_store(url)
    room = Classroom(store)
    tokens = [room.join(code) for _ in answers]
    ready.wait()
    began = time.perf_counter()
    for token, answer in zip(tokens, answers):
        room.vote(code, token, question_id, round_, answer, uuid.uuid4().hex)
    done.put((len(answers), time.perf_counter() - began))
    store.close()


def measure_votes(url: str, processes: int = 4, votes_each: int = 100) -> VoteLoad:
    """Votes per second with ``processes`` voters at once (see the module docstring)."""
    from explorer.lessons import Classroom, Question, open_store

    store = open_store(url)
    room = Classroom(store)
    made = room.create_session("load")
    room.open_question(made.code, made.teacher_token, Question.choice(QUESTION, CHOICES))
    context = multiprocessing.get_context("spawn")  # no inherited pool threads or sqlite handles
    ready, done = context.Barrier(processes + 1), context.Queue()
    answers = [CHOICES[i % len(CHOICES)] for i in range(votes_each)]
    workers = [
        context.Process(target=cast_votes, args=(url, made.code, QUESTION, 1, answers, ready, done))
        for _ in range(processes)
    ]
    for worker in workers:
        start(worker)
    ready.wait(timeout=300)
    began = time.perf_counter()
    results = [done.get(timeout=600) for _ in workers]
    seconds = time.perf_counter() - began
    for worker in workers:
        worker.join()
    total = room.histogram(made.code, QUESTION, 1).total
    store.close()
    expected = sum(votes for votes, _ in results)
    if total != expected or expected != processes * votes_each:
        raise RuntimeError(f"{expected} votes cast, {total} counted")
    return VoteLoad(store.kind, processes, total, seconds, total / seconds)


def vote_sections(table, processes: int = 4, votes_each: int = 250) -> None:
    """Add the votes-per-second rows to ``table`` (benchmarks.__main__.Table)."""

    def add(where: str, load: VoteLoad | None, note: str = "") -> None:
        value = f"{load.per_second:,.0f} votes/s ({load.seconds:.2f} s)" if load else note
        table.add(f"Votes per second, {where} ({processes} processes x {votes_each} students, one vote each)", value)

    with tempfile.TemporaryDirectory() as folder:
        add("SQLite file, WAL", measure_votes(f"sqlite:///{folder}/lessons.sqlite3", processes, votes_each))
        class_rows(table, "SQLite file, WAL", f"sqlite:///{folder}/class.sqlite3")
    url = os.environ.get("EXPLORER_DATABASE_URL", "")
    if url.startswith(("postgresql://", "postgres://")):
        add("PostgreSQL at EXPLORER_DATABASE_URL", measure_votes(url, processes, votes_each))
        class_rows(table, "PostgreSQL at EXPLORER_DATABASE_URL", url)
    elif postgres_bin() is None:
        add("PostgreSQL", None, "not measured: no server (apt-get install -y postgresql)")
    else:
        with throwaway_postgres() as server:
            where = f"PostgreSQL {postgres_bin().parent.name}, a throwaway server on this host, fsync on"
            add(where, measure_votes(fresh_database(server), processes, votes_each))
            class_rows(table, where, fresh_database(server))


def class_rows(table, where: str, url: str, students: int = 40) -> None:
    """A class through nginx with 2 replicas, one killed mid-way (benchmarks/classload.py): the seconds until the
    last vote (target: within 60 s), whether every vote counted once, and the teacher's histogram delay at p95
    (target 2 s). Needs Debian's nginx."""
    from benchmarks.classload import run_class
    from explorer.replicas import find_nginx

    name = f"A class of {students} through nginx, 2 replicas, one killed mid-way, {where}"
    try:
        find_nginx()
    except RuntimeError as missing:
        table.add(name, f"not measured: {missing}")
        return
    run = run_class(url, students=students)
    exact = "every vote counted exactly once" if run.exact else f"{run.counted} of {students} counted: WRONG"
    table.add(
        f"{name}: a student's click to 'Vote counted' on their screen, p95 of {len(run.latencies)}",
        f"{run.latency_p95:.2f} s (median {statistics.median(run.latencies):.2f} s)",
    )
    table.add(
        f"{name}: the last vote {run.seconds:.1f} s after the first student opened the link (the class's own pace: "
        "arrivals over 10 s, 3-25 s of thought)",
        exact + f" ({run.double_clicks} double clicks, {run.reloads} reloads, {run.moved} reconnections after "
        f"replica {run.killed} died)",
        "<= 60 s, exactly once",
        "met" if run.exact and run.seconds <= 60 else "MISSED",
    )
    table.add(
        f"{name}: teacher's histogram delay, p95 of {len(run.delays)} votes (click sent to the projected total)",
        f"{run.delay_p95:.2f} s (median {statistics.median(run.delays):.2f} s; the histogram reruns every 1.5 s)",
        "<= 2 s",
        "met" if run.delay_p95 <= 2.0 else "MISSED",
    )


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb and pg_ctl (Debian's layout)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found and (found[-1].parent / "pg_ctl").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # PostgreSQL refuses to run as root; runuser (util-linux) switches to its own user without a password
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + command, cwd=cwd, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def throwaway_postgres(fsync: bool = True) -> Iterator[str]:
    """A new PostgreSQL server for the duration of the block; yields its URL (trust login as postgres).
    ``fsync=False`` speeds tests up; it only matters if the machine itself crashes."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install -y postgresql)")
    base = Path(tempfile.mkdtemp(prefix="explorer-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    data = base / "data"
    try:
        made = _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"], base
        )
        if made.returncode:
            raise RuntimeError(f"initdb failed: {made.stderr.strip()}")
        yield _start(bindir, base, fsync)
    finally:
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], base)
        shutil.rmtree(base, ignore_errors=True)


def _start(bindir: Path, base: Path, fsync: bool) -> str:
    """Start the server on a free port (again on another port if one was taken meanwhile); -> its URL."""
    for _ in range(3):
        port = _free_port()
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=200"
        options += "" if fsync else " -c fsync=off -c full_page_writes=off"
        started = _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(base / "data"),
                "-l",
                str(base / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            base,
        )
        if started.returncode == 0:
            return f"postgresql://postgres@127.0.0.1:{port}/postgres"
    log = (base / "log").read_text(errors="replace")[-2000:] if (base / "log").exists() else ""
    raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log}")


def fresh_database(url: str) -> str:
    """A new empty database on the server of ``url``; -> its URL."""
    import psycopg

    name = f"explorer_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:  # CREATE DATABASE cannot run in a transaction
        conn.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + "/" + name
