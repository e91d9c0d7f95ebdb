"""``Database`` on a real SQLite file: switching to WAL while another process writes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from sysmon.relational.database import BUSY_TIMEOUT_MS, Database, lock_key


def _rollback_mode_file(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def test_switching_to_wal_waits_for_a_writer_instead_of_failing_at_once(tmp_path: Path) -> None:
    """SQLite answers the switch with an immediate "locked" while another connection holds
    the write lock on a rollback-journal file (no busy handler): ``use_wal`` waits it out."""
    path = tmp_path / "x.db"
    _rollback_mode_file(path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release_soon() -> None:
        released.wait(0.3)
        holder.execute("COMMIT")
        holder.close()

    # The plain statement fails at once: what made opening stores at the same moment flaky.
    plain = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            plain.execute("PRAGMA journal_mode=WAL")
    finally:
        plain.close()

    db = Database.sqlite(str(path), lock_key=lock_key("test"))
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        released.set()  # the writer commits while we wait
        thread.join()

    thread = threading.Thread(target=release_soon)
    thread.start()
    try:
        db.use_wal(sleep=sleep)
    finally:
        db.close()
        released.set()
        thread.join()
    assert sleeps, "the first try met the held lock"
    assert _journal_mode(path) == "wal"


def test_a_lock_held_past_the_deadline_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _rollback_mode_file(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds * 100  # a fake clock: no real waiting

    db = Database.sqlite(str(path), lock_key=lock_key("test"))
    try:
        with pytest.raises(OperationalError, match="locked"):
            db.use_wal(sleep=sleep, clock=lambda: now[0])
        assert now[0] >= BUSY_TIMEOUT_MS / 1000
    finally:
        db.close()
        holder.execute("ROLLBACK")
        holder.close()
    assert _journal_mode(path) != "wal"
