"""Schema versions of the SQLite store, applied in order on ``open``.

The version lives in ``PRAGMA user_version`` (in the file header, so it changes in the
same transaction as the DDL: a crash mid-migration leaves the old version and schema).
A file written by a newer sysmon is refused instead of being misread.

Tables (version 1):

* ``series``: one row per series group ``(metric, labels)``; labels are canonical JSON.
* ``field``: the field layout of a series group: field ``name`` is value ``idx`` of
  every packed row and chunk column of that group. Append-only, so old rows stay valid.
* ``hot``: one row per ``(tier, series group, timestamp)`` while its chunk window is
  still open; ``data`` is a packed float64 row (``encoding.pack_row``).
* ``chunk``: one row per ``(tier, series group, window)`` once the window is closed;
  ``data`` is a compressed column-major block (``encoding.encode_chunk``). ``width`` is
  the slot width the block was written with (the raw interval or the tier's step).
* ``proc_hot`` / ``proc_chunk``: process tables, per stored tick then per closed window.
* ``rollup_state``: per rollup tier, ``done_until``: every bucket that starts before it
  has been computed. It is written in the transaction that writes those buckets, which
  is what makes rollups idempotent across restarts and crashes.

Version 2:

* ``proc_name``: per closed process window and process name, the per-table sums of the
  rows with that name (written with the window's ``proc_chunk``; name ``''`` lists every
  table of the window), so the history of one name reads a few small rows instead of
  decoding every window's tables. Deleted with their ``proc_chunk`` row (trigger).
"""

from __future__ import annotations

import sqlite3

from sysmon.errors import StorageError

MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (
        1,
        "initial schema: series groups, field layouts, hot rows, chunks, processes",
        (
            """CREATE TABLE series (
                id INTEGER PRIMARY KEY,
                metric TEXT NOT NULL,
                labels TEXT NOT NULL,
                UNIQUE (metric, labels))""",
            """CREATE TABLE field (
                series_id INTEGER NOT NULL,
                idx INTEGER NOT NULL,
                name TEXT NOT NULL,
                PRIMARY KEY (series_id, idx),
                UNIQUE (series_id, name)) WITHOUT ROWID""",
            """CREATE TABLE hot (
                tier INTEGER NOT NULL,
                series_id INTEGER NOT NULL,
                ts REAL NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (tier, series_id, ts)) WITHOUT ROWID""",
            "CREATE INDEX hot_tier_ts ON hot (tier, ts)",
            """CREATE TABLE chunk (
                id INTEGER PRIMARY KEY,
                tier INTEGER NOT NULL,
                series_id INTEGER NOT NULL,
                start REAL NOT NULL,
                width REAL NOT NULL,
                data BLOB NOT NULL)""",
            "CREATE UNIQUE INDEX chunk_key ON chunk (tier, series_id, start)",
            "CREATE INDEX chunk_tier_start ON chunk (tier, start)",
            "CREATE TABLE proc_hot (ts REAL PRIMARY KEY, data BLOB NOT NULL)",
            "CREATE TABLE proc_chunk (start REAL PRIMARY KEY, data BLOB NOT NULL)",
            """CREATE TABLE rollup_state (
                tier INTEGER PRIMARY KEY,
                done_until REAL NOT NULL)""",
        ),
    ),
    (
        2,
        "per-name sums of each closed process window (process history by name)",
        (
            """CREATE TABLE proc_name (
                name TEXT NOT NULL,
                start REAL NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (name, start)) WITHOUT ROWID""",
            "CREATE INDEX proc_name_start ON proc_name (start)",
            """CREATE TRIGGER proc_chunk_gone AFTER DELETE ON proc_chunk BEGIN
                DELETE FROM proc_name WHERE start = OLD.start; END""",
        ),
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def schema_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``LATEST_VERSION``; one transaction per migration.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    version = schema_version(conn)
    if version > LATEST_VERSION:
        raise StorageError(
            f"database schema version {version} is newer than this sysmon supports "
            f"({LATEST_VERSION}); upgrade sysmon or use another database.path"
        )
    for target, _description, statements in MIGRATIONS:
        if target <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql in statements:
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {int(target)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = target
    return version
