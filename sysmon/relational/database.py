"""One relational database, SQLite file or PostgreSQL, with the same two ways in.

``write()`` is the one way to change anything: a transaction that holds the database's
write lock from its first statement, so a check and the change it allows (rotating a
refresh token, deleting all but the last admin) are atomic across threads *and*
processes. On SQLite that is ``BEGIN IMMEDIATE`` (SQLite has one writer at a time
anyway; ``busy_timeout`` makes the next writer wait its turn instead of failing). On
PostgreSQL it is a transaction-scoped advisory lock, one key per store: the same
one-writer-at-a-time guarantee, with no change to the code written for SQLite and no
serialization failures to retry. The writes are rare and short (a login, a state change
of an alert), so queuing them costs nothing measurable.

``read()`` is for lookups. On SQLite it issues no ``BEGIN`` at all (each statement is its
own snapshot, as before; in WAL mode readers never wait for the writer). On PostgreSQL
it is an ordinary read-committed transaction, ended when the block ends.

Connections: on SQLite each thread keeps its own for the life of the store (as the
sqlite3 code before did), so a lookup on the request path costs the query and not a
pool checkout; the event loop thread's lookups never wait for a worker thread's write.
On PostgreSQL they come from a pool (``pool_size``, checked with a ping before use, so a
restarted server costs one failed ping rather than one failed request), and every block
gives its connection back: an idle connection must not sit inside a transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from sqlalchemy import BigInteger, Table, bindparam, select
from sqlalchemy import func as sql_func
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, create_engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import QueuePool, StaticPool

Kind = Literal["sqlite", "postgresql"]

BUSY_TIMEOUT_MS = 5000


def _sqlite_connect(path: str, *, must_exist: bool) -> sqlite3.Connection:
    """A DBAPI connection with our pragmas, in autocommit mode: ``BEGIN`` is ours to
    emit (``write()``), never the sqlite3 module's implicit one before a DML."""
    if must_exist:
        # ``mode=rw``: a missing file is an error, not a new empty database.
        target, uri = f"{Path(path).absolute().as_uri()}?mode=rw", True
    else:
        target, uri = path, False
    conn = sqlite3.connect(
        target,
        uri=uri,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
        isolation_level=None,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def sqlite_engine(path: str, *, must_exist: bool = False) -> Engine:
    """Engine over one SQLite file (``:memory:``: one shared in-memory database)."""
    memory = path == ":memory:"

    def creator() -> sqlite3.Connection:
        return _sqlite_connect(path, must_exist=must_exist and not memory)

    return create_engine(
        "sqlite+pysqlite://",
        creator=creator,
        poolclass=StaticPool if memory else QueuePool,
        **({} if memory else {"pool_size": 5, "max_overflow": -1}),
    )


def postgresql_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Engine over a PostgreSQL database; connections are checked before use (``pre_ping``)
    so a restarted server costs one failed ping, not one failed request."""
    return create_engine(
        make_url(url),
        pool_size=pool_size,
        max_overflow=2 * pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"connect_timeout": 5, "application_name": "sysmon"},
    )


class Database:
    """An engine and the write-lock key of the store that owns it (see the module doc)."""

    def __init__(self, engine: Engine, *, lock_key: int, target: str | None = None) -> None:
        self.engine = engine
        self.target = target
        """The SQLite path or PostgreSQL URL it was opened with (``sqlite``/``postgresql``);
        it can hold a password: never logged (``describe`` is for logs)."""
        self.lock_key = lock_key
        self.kind: Kind = "postgresql" if engine.dialect.name == "postgresql" else "sqlite"
        self._lock_key = lock_key
        self._local = threading.local()
        self._held: list[Connection] = []
        self._held_lock = threading.Lock()

    @classmethod
    def sqlite(cls, path: str, *, lock_key: int, must_exist: bool = False) -> Database:
        return cls(sqlite_engine(path, must_exist=must_exist), lock_key=lock_key, target=path)

    @classmethod
    def postgresql(cls, url: str, *, lock_key: int, pool_size: int = 5) -> Database:
        return cls(postgresql_engine(url, pool_size=pool_size), lock_key=lock_key, target=url)

    def describe(self) -> str:
        """For logs: the file, or the URL with its password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def _thread_connection(self) -> Connection:
        """SQLite: this thread's connection, kept for the life of the store.

        A lookup on the request path then costs what the query costs (a pool checkout
        and its reset would double it). The list keeps them for ``close()``."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self.engine.connect()
            self._local.conn = conn
            with self._held_lock:
                self._held.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction holding the write lock: committed at the end of the block,
        rolled back if it raises."""
        if self.kind == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(_ADVISORY_LOCK, {"key": self._lock_key})
                yield conn
            return
        conn = self._thread_connection()
        with conn.begin():  # the DBAPI is in autocommit mode: this emits nothing
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for lookups; nothing it does is committed."""
        if self.kind == "postgresql":
            with self.engine.connect() as conn:
                yield conn
            return
        conn = self._thread_connection()
        try:
            yield conn
        finally:
            # Ends SQLAlchemy's implicit transaction; SQLite had none (no BEGIN was sent).
            conn.rollback()

    def use_wal(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """SQLite: switch the file to WAL mode (PostgreSQL: nothing to do).

        The switch takes the write lock from inside the statement's own read, and SQLite
        answers that with an immediate "database is locked", without waiting through
        ``busy_timeout`` (waiting could deadlock), while another connection holds the
        write lock on a file not yet in WAL mode: e.g. several processes creating the
        file at once. So it is retried here for as long as ``busy_timeout`` would wait."""
        if self.kind != "sqlite":
            return
        deadline = clock() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                with self.read() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
                return
            except OperationalError as exc:
                if not _is_busy(exc) or clock() >= deadline:
                    raise
            sleep(0.01)

    def insert(self, table: Table) -> PgInsert | SqliteInsert:
        """``INSERT`` with this dialect's ``on_conflict_do_nothing``/``_do_update``."""
        return pg_insert(table) if self.kind == "postgresql" else sqlite_insert(table)

    def close(self) -> None:
        """Close every connection (on SQLite the last close checkpoints the WAL)."""
        with self._held_lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()
        self._local = threading.local()
        self.engine.dispose()


_ADVISORY_LOCK = select(sql_func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (PostgreSQL's bigint)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _is_busy(exc: OperationalError) -> bool:
    """SQLITE_BUSY, including its extended codes."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY


def error_text(exc: SQLAlchemyError) -> str:
    """The driver's own message, first line: without SQLAlchemy's echo of the statement
    and its parameters (which may hold a hash) and its documentation link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
