"""Process tables: at most one stored table per ``processes_every``, compacted per window.

Rows are JSON in ``proc_hot`` (one per stored tick), later zlib'd JSON windows of 30 min
in ``proc_chunk``, kept as long as the raw tier. Why not every tick by default: a top-N
table is ~2-4 KB of JSON, 30-50x a tick of metrics (see the README).
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib
from collections.abc import Mapping, Sequence

from sysmon.models import Snapshot
from sysmon.storage.sqlite.layout import (
    CHUNK_SPAN_SECONDS,
    COMPACT_CHECK_EVERY_SECONDS,
    floor_to,
)
from sysmon.storage.sqlite.state import WriterState
from sysmon.storage.sqlite.tx import fetch_all, fetch_one, read_snapshot, transaction

ProcessTable = tuple[float, Sequence[Mapping[str, object]]]


class ProcessTables:
    """The writer's side (store, compact, expire) and the readers' side (``query``)."""

    def __init__(self, every: float, interval: float, late_grace: float, action: str) -> None:
        self.every = every
        self.span = CHUNK_SPAN_SECONDS["raw"]
        self._interval = interval
        self._late_grace = late_grace
        self._action = action
        self._last_slot: float | None = None
        self._next_compact = -math.inf

    def slot(self, ts: float) -> float:
        return ts if self.every <= 0 else math.floor(ts / self.every)

    def load(self, conn: sqlite3.Connection) -> None:
        """Remember the newest stored table's slot (so a restart does not store twice)."""
        last = conn.execute(
            "SELECT max(ts) FROM (SELECT max(ts) AS ts FROM proc_hot "
            "UNION ALL SELECT max(start) FROM proc_chunk)"
        ).fetchone()[0]
        self._last_slot = None if last is None else self.slot(float(last))

    def write(self, conn: sqlite3.Connection, snapshot: Snapshot) -> tuple[float | None, int]:
        """Store the tick's process table if its slot has none yet: (slot, rows added).

        Runs inside the tick's transaction; the caller passes the slot to ``committed``
        once that transaction committed.
        """
        collected = snapshot.results.get("processes")
        if collected is None or not collected.rows:
            return None, 0
        slot = self.slot(snapshot.timestamp)
        if self._last_slot is not None and slot == self._last_slot:
            return None, 0
        data = json.dumps([dict(r) for r in collected.rows], separators=(",", ":"), default=str)
        there = fetch_one(conn, "SELECT 1 FROM proc_hot WHERE ts = ?", (snapshot.timestamp,))
        conn.execute(
            "INSERT OR REPLACE INTO proc_hot (ts, data) VALUES (?, ?)",
            (snapshot.timestamp, data.encode()),
        )
        return slot, 0 if there else 1

    def committed(self, slot: float | None) -> None:
        if slot is not None:
            self._last_slot = slot

    def compact(self, conn: sqlite3.Connection, now: float, state: WriterState) -> bool:
        """Fold the oldest closed window of ``proc_hot`` into its chunk; True if it did."""
        if now < self._next_compact:
            return False
        limit = floor_to(now - self._late_grace, self.span)
        row = conn.execute("SELECT min(ts) FROM proc_hot WHERE ts < ?", (limit,)).fetchone()
        if row[0] is None:
            self._next_compact = now + COMPACT_CHECK_EVERY_SECONDS
            return False
        start = floor_to(float(row[0]), self.span)
        end = start + self.span
        with transaction(conn, self._action):
            tables: dict[float, object] = {}
            old = conn.execute("SELECT data FROM proc_chunk WHERE start = ?", (start,)).fetchone()
            if old is not None:
                for ts, rows in json.loads(zlib.decompress(old[0])):
                    tables[float(ts)] = rows
            for ts, data in conn.execute(
                "SELECT ts, data FROM proc_hot WHERE ts >= ? AND ts < ?", (start, end)
            ):
                tables[float(ts)] = json.loads(bytes(data))
            body = json.dumps(sorted(tables.items()), separators=(",", ":"))
            conn.execute(
                "INSERT OR REPLACE INTO proc_chunk (start, data) VALUES (?, ?)",
                (start, zlib.compress(body.encode(), 9)),
            )
            gone = conn.execute(
                "DELETE FROM proc_hot WHERE ts >= ? AND ts < ?", (start, end)
            ).rowcount
        state.add_counts({"processes.chunks": 0 if old else 1, "processes.hot": -gone})
        return True

    def retention_steps(
        self, raw_keep: float, now: float, batch_rows: int, batch_chunks: int
    ) -> list[tuple[str, tuple[object, ...], int, str]]:
        """Bounded deletes of expired tables (kept as long as the raw tier): ``(sql,
        params without the batch size, batch size, stats key)``."""
        raw_cut = now - raw_keep
        return [
            (
                "DELETE FROM proc_hot WHERE rowid IN ("
                "SELECT rowid FROM proc_hot WHERE ts < ? LIMIT ?)",
                (raw_cut,),
                batch_rows,
                "processes.hot",
            ),
            (
                "DELETE FROM proc_chunk WHERE rowid IN ("
                "SELECT rowid FROM proc_chunk WHERE start < ? LIMIT ?)",
                (raw_cut - self.span,),
                batch_chunks,
                "processes.chunks",
            ),
        ]

    def query(self, conn: sqlite3.Connection, at: float) -> ProcessTable | None:
        """The stored table at or before ``at``, at most ``2 x max(interval, every)`` old."""
        tolerance = 2 * max(self._interval, self.every)
        best: ProcessTable | None = None
        with read_snapshot(conn):
            row = fetch_one(
                conn,
                "SELECT ts, data FROM proc_hot WHERE ts <= ? AND ts >= ? ORDER BY ts DESC LIMIT 1",
                (at, at - tolerance),
            )
            # At most two windows overlap the tolerance; fetched whole.
            chunks = fetch_all(
                conn,
                "SELECT start, data FROM proc_chunk WHERE start <= ? AND start > ? "
                "ORDER BY start DESC",
                (at, at - tolerance - self.span),
            )
        if row is not None:
            best = (float(row[0]), json.loads(bytes(row[1])))
        for _start, data in chunks:
            for ts, rows in reversed(json.loads(zlib.decompress(data))):
                if at - tolerance <= ts <= at:
                    if best is None or ts > best[0]:
                        best = (float(ts), rows)
                    break
            if best is not None:
                break
        return best
