"""Connections: the one writer (set up once) and a bounded pool of readers.

The writer connection is used by ``write``/``maintain`` (the agent's writer thread) under
the store's lock. Reads borrow one of at most ``READER_POOL_SIZE`` read-only connections
(``query_only``) for one call: created lazily, reused by any thread, all closed by
``close()``; a call that finds all of them busy waits for one (up to the busy timeout).
Not one connection per thread: anyio's worker threads exit when idle and are replaced,
and their connections piled up (2 descriptors each, found by the soak).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from sysmon.errors import QueryError, StorageError
from sysmon.storage.migrations import migrate

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
READER_POOL_SIZE = 4
"""Read connections kept open at most (two descriptors each: the file and its WAL). A
call that finds all of them busy waits for one (up to the busy timeout)."""
WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024


def connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit, see ``tx.py``).

    ``readonly``: the file must exist already (``mode=rw`` never creates it); the server
    reads a file the agent creates.
    """
    conn = sqlite3.connect(
        f"file:{path}?mode=rw" if readonly else path,
        uri=readonly,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def create_private(path: str, make: Callable[[], sqlite3.Connection]) -> sqlite3.Connection:
    """``make()`` with a 0077 umask and the parent made 0700: the file holds command lines."""
    old_umask = os.umask(0o077)
    try:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return make()
    finally:
        os.umask(old_umask)


def prepare_writer(conn: sqlite3.Connection, path: str, max_size_bytes: int | None) -> None:
    """WAL, durability and checkpoint settings, then the schema (created or migrated)."""
    _ensure_incremental_vacuum(conn)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageError(f"cannot enable WAL mode on {path} (got {mode})")
    # NORMAL in WAL: a commit is durable against a process crash, and a power
    # loss can lose only the last ticks, never corrupt the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    # Checkpoints run in maintain() between ticks, never inside a tick's commit.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
    migrate(conn)
    if max_size_bytes is not None:
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {max(1, max_size_bytes // page)}")


def _ensure_incremental_vacuum(conn: sqlite3.Connection) -> None:
    """Lets retention hand freed pages back to the file system in small steps.

    The mode only takes effect before the first table exists, or through a VACUUM.
    The alert store may share this file and create its tables first, so a file that
    does not hold our schema yet is vacuumed once (it is small then). An existing
    metrics file without the mode keeps working: freed pages are still reused.
    """
    if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
        return
    if int(conn.execute("PRAGMA user_version").fetchone()[0]) != 0:
        return
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
        try:
            conn.execute("VACUUM")
        except sqlite3.OperationalError as exc:
            log.warning("incremental auto-vacuum not enabled error=%s", exc)


class ReaderPool:
    """At most ``size`` read-only connections, lent for one call at a time.

    ``connect`` is called (lazily) for each new connection and must return one with
    ``query_only`` set. A connection goes back only in a clean state (no transaction,
    every statement read to its end), so it never pins an old WAL snapshot; after an
    error it is closed instead. Readable between ``start()`` and ``close()``.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        size: int = READER_POOL_SIZE,
        wait_seconds: float = BUSY_TIMEOUT_MS / 1000,
    ) -> None:
        self._connect = connect
        self._size = size
        self._wait = wait_seconds
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._open = 0  # connections created and not yet closed (idle + borrowed)
        self._closed = True

    def start(self) -> None:
        self._closed = False

    def close(self) -> None:
        """Idle connections close now; borrowed ones when their call returns them."""
        with self._lock:
            self._closed = True
            idle: list[sqlite3.Connection] = []
            while not self._idle.empty():
                idle.append(self._idle.get_nowait())
        for conn in idle:
            self._discard(conn)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Borrow a pooled read-only connection for one call.

        The connection goes back to the pool only in a clean state: no transaction
        open and every statement run to completion (callers fetch whole results), so a
        pooled connection never pins an old WAL snapshot (which would show stale data
        to the next borrower and keep checkpoints from resetting the WAL). After an
        error it is closed instead, which finalizes whatever statement was left.
        """
        if self._closed:
            raise StorageError("store is not open")
        conn = self._acquire()
        clean = False
        try:
            yield conn
            clean = not conn.in_transaction
        except QueryError:  # a refused query read its lookups to the end: still clean
            clean = not conn.in_transaction
            raise
        finally:
            with self._lock:
                keep = clean and not self._closed
                if keep:
                    self._idle.put(conn)
            if not keep:
                self._discard(conn)

    def _discard(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()  # finalizes every statement: no snapshot survives
        with self._lock:
            self._open -= 1

    def _acquire(self) -> sqlite3.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            create = self._open < self._size
            if create:
                self._open += 1
        if create:
            try:
                return self._connect()
            except BaseException:
                with self._lock:
                    self._open -= 1
                raise
        try:
            return self._idle.get(timeout=self._wait)
        except queue.Empty:
            raise StorageError(
                f"all {self._size} read connections busy for {round(self._wait * 1000)} ms"
            ) from None
