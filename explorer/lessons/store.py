"""Where a class's votes live: one SQL schema, two databases, no ORM.

* SQLite (standard library) by default: the file ``lessons.sqlite3`` in the data folder
  (``EXPLORER_DATA_DIR``, else ``$XDG_DATA_HOME/llm-explorer``, else ``~/.local/share/llm-explorer``).
  WAL mode and a busy timeout let every replica process on one host write the same file; a write
  transaction starts with ``BEGIN IMMEDIATE`` so writers queue instead of failing half-way.
* PostgreSQL when ``EXPLORER_DATABASE_URL`` is a ``postgresql://`` (or ``postgres://``) URL: psycopg 3
  through a psycopg_pool ``ConnectionPool``, for classes whose replicas run on several hosts.

Public API::

    store = open_store()                       # from the environment (or open_store(url=..., data_dir=...))
    with store.transaction(write=True) as tx:  # one transaction; rolls back on any exception
        tx.run("INSERT ... VALUES (?, ?)", (a, b))  # -> rows changed
        tx.one("SELECT ... WHERE x = ?", (x,))      # -> first row (a tuple) or None
        tx.all("SELECT ...", ())                    # -> list of rows
    store.close()

SQL is written once with ``?`` placeholders (PostgreSQL gets ``%s``); ``tx.for_share`` is
``" FOR SHARE"`` on PostgreSQL (a row lock that concurrent voters share and a teacher's UPDATE
waits for) and empty on SQLite, where ``BEGIN IMMEDIATE`` already serialises writers.

The schema (version ``SCHEMA_VERSION``) is created on first use by ``open_store``: idempotent, and safe
when several processes open a new database at once (SQLite: inside ``BEGIN IMMEDIATE``; PostgreSQL:
under a transaction-scoped advisory lock). A database written by a newer schema is refused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from explorer.text import InputError

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "EXPLORER_DATA_DIR"
DATABASE_URL_ENV = "EXPLORER_DATABASE_URL"
SQLITE_FILE = "lessons.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # a writer waits this long for the SQLite write lock (or a pooled connection) before giving up
CONNECT_TIMEOUT_S = 10.0  # opening the PostgreSQL pool: retries a refused connection for this long
POOL_MAX = 10  # PostgreSQL connections per process (a Streamlit replica runs each visitor in a thread)
ADVISORY_LOCK = 0x4C455353  # "LESS": serialises schema creation between processes on PostgreSQL

# Times are Unix seconds from the caller's clock (classes.Classroom injects it), never the
# database's own now(): tests move the clock, and hosts sharing one PostgreSQL agree through NTP.
SCHEMA = """
CREATE TABLE IF NOT EXISTS lessons_schema (version INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS lessons_sessions (
    code TEXT PRIMARY KEY,
    teacher_hash TEXT NOT NULL,
    lab TEXT NOT NULL,
    question TEXT,
    created_at {real} NOT NULL,
    expires_at {real} NOT NULL,
    ended_at {real}
);
CREATE TABLE IF NOT EXISTS lessons_questions (
    code TEXT NOT NULL REFERENCES lessons_sessions (code) ON DELETE CASCADE,
    question TEXT NOT NULL,
    spec TEXT NOT NULL,
    round INTEGER NOT NULL CHECK (round IN (1, 2)),
    is_open INTEGER NOT NULL CHECK (is_open IN (0, 1)),
    PRIMARY KEY (code, question)
);
CREATE TABLE IF NOT EXISTS lessons_participants (
    token TEXT PRIMARY KEY,
    code TEXT NOT NULL REFERENCES lessons_sessions (code) ON DELETE CASCADE,
    joined_at {real} NOT NULL
);
CREATE INDEX IF NOT EXISTS lessons_participants_code ON lessons_participants (code);
CREATE TABLE IF NOT EXISTS lessons_votes (
    code TEXT NOT NULL,
    question TEXT NOT NULL,
    round INTEGER NOT NULL,
    participant TEXT NOT NULL REFERENCES lessons_participants (token) ON DELETE CASCADE,
    answer TEXT NOT NULL,
    request_id TEXT NOT NULL,
    voted_at {real} NOT NULL,
    PRIMARY KEY (code, question, round, participant),
    FOREIGN KEY (code, question) REFERENCES lessons_questions (code, question) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS lessons_requests (
    participant TEXT NOT NULL REFERENCES lessons_participants (token) ON DELETE CASCADE,
    request_id TEXT NOT NULL,
    question TEXT NOT NULL,
    round INTEGER NOT NULL,
    PRIMARY KEY (participant, request_id)
);
CREATE INDEX IF NOT EXISTS lessons_requests_round ON lessons_requests (participant, question, round);
"""


class StoreError(InputError):
    """The class database cannot do what was asked; the message is one sentence for the user."""


def default_data_dir() -> Path:
    """EXPLORER_DATA_DIR, else $XDG_DATA_HOME/llm-explorer, else ~/.local/share/llm-explorer."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "llm-explorer"


class Tx:
    """One open transaction: ``?`` placeholders, rows as tuples."""

    def __init__(self, cursor, postgres: bool):
        self._cursor = cursor
        self._postgres = postgres
        self.for_share = " FOR SHARE" if postgres else ""

    def run(self, sql: str, params: Sequence = ()) -> int:
        self._cursor.execute(sql.replace("?", "%s") if self._postgres else sql, tuple(params))
        return self._cursor.rowcount

    def one(self, sql: str, params: Sequence = ()) -> tuple | None:
        self.run(sql, params)
        return self._cursor.fetchone()

    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        self.run(sql, params)
        return list(self._cursor.fetchall())


class Store:
    """The interface both databases share; ``open_store`` picks one."""

    kind = ""
    where = ""  # the file, or the server without its password: safe to show and log

    def transaction(self, write: bool = False) -> contextlib.AbstractContextManager[Tx]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _unavailable(store: Store, error: Exception) -> StoreError:
    logger.error("class database %s failed", store.where, exc_info=error)
    return StoreError("The class database is not answering right now; please try again in a moment.")


class SqliteStore(Store):
    """A file shared by every process on this host. Connections are pooled per process (one
    thread at a time uses each), because Streamlit runs every rerun in a new thread."""

    kind = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        self.where = str(self.path)
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        try:  # isolation_level=None: the module opens no transaction of its own; we say BEGIN ourselves
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")  # a committed vote survives a power cut, not only a crash
        except sqlite3.Error as error:
            raise _unavailable(self, error) from error
        with self._lock:
            self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self, write: bool = False) -> Iterator[Tx]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connect()
        try:
            yield from self._run(conn, write)
        finally:
            self._idle.put(conn)

    def _run(self, conn: sqlite3.Connection, write: bool) -> Iterator[Tx]:
        cursor = conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as error:
            raise _unavailable(self, error) from error
        try:
            yield Tx(cursor, postgres=False)
        except sqlite3.Error as error:
            conn.rollback()
            raise _unavailable(self, error) from error
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except sqlite3.Error as error:
            conn.rollback()
            raise _unavailable(self, error) from error

    def create_schema(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise _unavailable(self, error) from error
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]  # persistent: stored in the file
            if mode.lower() != "wal":
                raise StoreError(f"The class database {self.path} cannot use WAL mode (it reports {mode}).")
        finally:
            self._idle.put(conn)
        with self.transaction(write=True) as tx:
            for statement in SCHEMA.format(real="REAL").split(";"):
                if statement.strip():
                    tx.run(statement)
            _claim_version(tx)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


class PostgresStore(Store):
    """A PostgreSQL server shared by every host, through a pool of psycopg 3 connections."""

    kind = "postgresql"

    def __init__(self, url: str, max_size: int = POOL_MAX):
        import psycopg
        from psycopg_pool import ConnectionPool

        self._errors = (psycopg.Error,)
        parts = urlsplit(url)
        self.where = f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        self._pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, timeout=BUSY_TIMEOUT_S)
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except self._errors as error:  # PoolTimeout: no connection in time; the log says why
            self._pool.close()
            raise _unavailable(self, error) from error

    @contextlib.contextmanager
    def transaction(self, write: bool = False) -> Iterator[Tx]:
        try:  # the pool's own PoolTimeout (every connection busy) is a psycopg.Error too
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                yield Tx(cursor, postgres=True)
        except self._errors as error:
            raise _unavailable(self, error) from error

    def create_schema(self) -> None:
        with self.transaction(write=True) as tx:
            tx.run("SELECT pg_advisory_xact_lock(?)", (ADVISORY_LOCK,))  # one creator at a time, released at commit
            for statement in SCHEMA.format(real="DOUBLE PRECISION").split(";"):
                if statement.strip():
                    tx.run(statement)
            _claim_version(tx)

    def close(self) -> None:
        self._pool.close()


def _claim_version(tx: Tx) -> None:
    """Record SCHEMA_VERSION in a new database; refuse one written by a newer explorer."""
    row = tx.one("SELECT MAX(version) FROM lessons_schema")
    if row is None or row[0] is None:
        tx.run("INSERT INTO lessons_schema (version) VALUES (?)", (SCHEMA_VERSION,))
    elif row[0] > SCHEMA_VERSION:
        raise StoreError(
            f"The class database has schema version {row[0]}; this explorer knows version {SCHEMA_VERSION}: update it."
        )


def open_store(url: str | None = None, data_dir: Path | str | None = None) -> Store:
    """The store named by ``url`` (else EXPLORER_DATABASE_URL), else SQLite in ``data_dir`` (else
    the data folder), with its schema created if new. ``sqlite:///path`` names a SQLite file."""
    url = url if url is not None else os.environ.get(DATABASE_URL_ENV, "")
    scheme = urlsplit(url).scheme.lower() if url else ""
    if scheme in ("postgresql", "postgres"):
        store: Store = PostgresStore(url)
    elif scheme == "sqlite":
        store = SqliteStore(Path(url.split("://", 1)[1]))
    elif not url:
        store = SqliteStore(Path(data_dir or default_data_dir()) / SQLITE_FILE)
    else:
        raise StoreError(f"{DATABASE_URL_ENV} must be a postgresql:// or a sqlite:// address.")
    try:
        store.create_schema()
    except BaseException:
        store.close()
        raise
    return store
