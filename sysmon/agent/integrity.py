"""Is the database file still the one we opened, and still sound?

A file replaced or overwritten while the agent runs used to go unnoticed: health said
``ok`` while queries failed with "database disk image is malformed". ``IntegrityWatch``
checks on its own thread, on a fresh connection (never the writer's):

* every ``probe_seconds``: the path still names the inode opened at start, SQLite
  recognises the file (its header), and the schema and newest rows read (cheap: a few
  pages), all through SQLite: the file is never opened directly (see ``probe``);
* every ``full_seconds``: ``PRAGMA quick_check`` over the whole file (reads every page,
  so it runs rarely; measured in bench/README.md).

A problem is logged once when found and once when it clears, and reported in health.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)


def file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def probe(path: str, identity: tuple[int, int] | None, full: bool = False) -> str | None:
    """``None`` when the file looks sound, else a one-line description of the problem."""
    now_identity = file_identity(path)
    if now_identity is None:
        return f"database file {path} is missing"
    if identity is not None and now_identity != identity:
        return f"database file {path} was replaced while the agent runs (restart the agent)"
    # Never open() the file itself: closing any descriptor of it drops every POSIX lock
    # this process holds on it, the agent's own SQLite locks included, and another
    # process could then checkpoint and delete the WAL under the agent. SQLite opens
    # and closes its files without that (it shares one descriptor per file per process),
    # and it tells a file that is not a database (SQLITE_NOTADB) from other errors.
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=5.0)
    except sqlite3.Error as exc:
        return f"cannot open database: {exc}"
    try:
        conn.execute("PRAGMA query_only = 1")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        # The newest rows: the pages every tick touches (index and table b-trees).
        if "hot" in tables:
            conn.execute("SELECT * FROM hot WHERE tier = 0 ORDER BY ts DESC LIMIT 1").fetchall()
        if "chunk" in tables:
            conn.execute("SELECT * FROM chunk ORDER BY id DESC LIMIT 1").fetchall()
        if full:
            rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)")]
            if rows != ["ok"]:
                return "quick_check: " + "; ".join(rows)[:300]
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
            return "database file header is not SQLite's: the file was overwritten"
        return f"database is damaged: {exc}"
    finally:
        conn.close()
    return None


class IntegrityWatch:
    def __init__(self, path: str, probe_seconds: float, full_seconds: float = 3600.0) -> None:
        self._path = path
        self._probe_every = probe_seconds
        self._full_every = full_seconds
        self._identity: tuple[int, int] | None = None
        """The inode checked against: taken at the first check (the agent's first check
        runs right after it opened, or created, the file)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem: str | None = None
        self.checked_at: float | None = None
        self.full_checked_at: float | None = None
        self.full_check_seconds: float | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="integrity", daemon=True)
        self._thread.start()

    def check(self, full: bool = False) -> str | None:
        started = time.monotonic()
        if self._identity is None:
            self._identity = file_identity(self._path)
        problem = probe(self._path, self._identity, full)
        self.checked_at = time.time()
        if full:
            self.full_checked_at = self.checked_at
            self.full_check_seconds = round(time.monotonic() - started, 3)
        if problem != self.problem:
            if problem is None:
                logger.info("database integrity restored: %s", self._path)
            else:
                logger.error("database integrity problem: %s", problem)
        self.problem = problem
        return problem

    def _run(self) -> None:
        next_full = time.monotonic() + self._full_every
        while not self._stop.wait(self._probe_every):
            full = time.monotonic() >= next_full
            if full:
                next_full = time.monotonic() + self._full_every
            try:
                self.check(full)
            except Exception:  # the watch must outlive any surprise
                logger.exception("integrity check failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def status(self) -> dict[str, Any]:
        return {
            "ok": self.problem is None,
            "problem": self.problem,
            "checked_at": self.checked_at,
            "full_checked_at": self.full_checked_at,
            "full_check_seconds": self.full_check_seconds,
        }
