"""The integrity watch checks the file without disturbing the agent's own SQLite locks.

POSIX drops every ``fcntl`` lock a process holds on a file when the process closes *any*
descriptor of that file. A check that opened and closed the database file itself (to
read its header) silently released the agent's locks: another process closing its last
connection then thought itself the last user and checkpointed and removed the WAL under
the agent, which saw "disk I/O error" and "database disk image is malformed".
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sysmon.agent.integrity import file_identity, probe

_OPEN_AND_CLOSE = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
    "c.execute('SELECT count(*) FROM hot').fetchall(); c.close()"
)


def _wal_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE hot (tier INTEGER, ts REAL)")
    conn.execute("INSERT INTO hot VALUES (0, 1.0)")
    return conn


def test_a_probe_keeps_this_process_s_locks(tmp_path: Path) -> None:
    db = tmp_path / "sysmon.db"
    held = _wal_db(db)  # the agent's connection, open for its whole life
    try:
        assert probe(str(db), file_identity(str(db)), full=True) is None
        # Another process opens and closes a connection: with our locks intact it is
        # not the last user, so it must leave the WAL in place.
        subprocess.run([sys.executable, "-c", _OPEN_AND_CLOSE, str(db)], check=True)
        assert Path(f"{db}-wal").exists(), "the other process saw no lock of ours"
        assert held.execute("SELECT count(*) FROM hot").fetchone()[0] == 1
    finally:
        held.close()


def test_an_overwritten_file_is_named_as_such(tmp_path: Path) -> None:
    db = tmp_path / "sysmon.db"
    _wal_db(db).close()
    identity = file_identity(str(db))
    db.write_bytes(b"\x00garbage" * 1000)  # same inode, not SQLite any more
    assert probe(str(db), identity) == (
        "database file header is not SQLite's: the file was overwritten"
    )
    db.unlink()
    assert probe(str(db), identity) == f"database file {db} is missing"
