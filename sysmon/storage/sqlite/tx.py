"""Transactions and error mapping: the one place SQLite errors become ``StorageError``.

Every write path (a tick, an import, a rollup step, a compaction, a retention batch)
runs in ``transaction(conn, action)``: ``BEGIN IMMEDIATE`` (take the write lock up front,
so a busy file waits ``busy_timeout`` instead of failing half-way), ``COMMIT``, and on any
error a rollback and one mapping: ENOSPC / ``SQLITE_FULL`` -> ``StorageFullError``, any
other SQLite or OS error -> ``StorageError("<action>: ...")``. Caches that mirror the
file are updated by the caller *after* the block, so a failed transaction leaves them
as they were.

Reads run in ``read_snapshot(conn)`` (one ``BEGIN`` ... ``COMMIT``) so they see whole
ticks, under ``storage_errors(action)`` for the same mapping.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from sysmon.errors import StorageError, StorageFullError


def is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return True
        return "database or disk is full" in str(exc).lower()
    return False


def storage_error(exc: BaseException, action: str) -> StorageError:
    if is_full(exc):
        return StorageFullError(f"{action}: disk full ({exc})")
    return StorageError(f"{action}: {exc}")


def rollback(conn: sqlite3.Connection) -> None:
    # SQLite has already rolled back on some errors (SQLITE_FULL); a second ROLLBACK
    # would raise "no transaction is active" and hide the real error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class storage_errors:
    """Map SQLite/OS errors of the block to ``StorageError`` (rolling ``conn`` back).

    A ``StorageError`` raised inside (by a nested ``transaction``) passes unchanged: the
    mapping happens once, where the error occurred. A class, not a generator: it wraps
    every ``maintain`` call, most of which find nothing to do in ~15 us.
    """

    __slots__ = ("_action", "_conn")

    def __init__(self, action: str, conn: sqlite3.Connection | None = None) -> None:
        self._action = action
        self._conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None or not isinstance(exc, sqlite3.Error | OSError):
            return
        if self._conn is not None:
            rollback(self._conn)
        raise storage_error(exc, self._action) from exc


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, action: str) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error roll back, then re-raise it
    (SQLite/OS errors as ``StorageError``/``StorageFullError`` naming ``action``)."""
    with storage_errors(action):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise


@contextlib.contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: every statement of the block sees the same committed ticks."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[Any]:
    """Every row, with the statement run to its end (no read snapshot left pinned)."""
    cur = conn.execute(sql, params)
    try:
        return cur.fetchall()
    finally:
        cur.close()


def fetch_one(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> Any:
    """The first row or None; the statement is reset even if more rows would follow."""
    cur = conn.execute(sql, params)
    try:
        return cur.fetchone()
    finally:
        cur.close()
