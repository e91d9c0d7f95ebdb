"""Process tables: at most one stored table per ``processes_every``, compacted per window.

Rows are JSON in ``proc_hot`` (one per stored tick), later zlib'd JSON windows of 30 min
in ``proc_chunk``, kept as long as the raw tier. Why not every tick by default: a top-N
table is ~2-4 KB of JSON, 30-50x a tick of metrics (see the README).

History (``history``): per grid point the sums of the matching rows of the first stored
table in it. Decoding windows is the cost (measured: ~0.6 s per 30-min window of 200-row
tables on the shared test box, so ~28 s for a day), hence when a window is compacted its
per-name sums go to ``proc_name`` (one small zlib'd column block per name and window),
and a history by name reads those; only the open window (``proc_hot``, at most ~30 min)
is parsed, one table per grid point. A history by pid has no index: it decodes windows,
so its range is capped (``PID_HISTORY_WINDOWS``).
"""

from __future__ import annotations

import json
import math
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence

from sysmon.errors import QueryError
from sysmon.models import Snapshot
from sysmon.storage.base import ProcessSeries
from sysmon.storage.sqlite.layout import (
    CHUNK_SPAN_SECONDS,
    COMPACT_CHECK_EVERY_SECONDS,
    floor_to,
)
from sysmon.storage.sqlite.state import WriterState
from sysmon.storage.sqlite.tx import fetch_all, fetch_one, read_snapshot, transaction

ProcessTable = tuple[float, Sequence[Mapping[str, object]]]

Sums = tuple[float, float, float, int]
"""``(cpu_percent, memory_percent, rss_bytes, count)`` of the matching rows of a table."""
HISTORY_FIELDS = ("cpu_percent", "memory_percent", "rss_bytes", "count")
ALL_TABLES = ""
"""The ``proc_name`` name whose block lists every table of the window (count = rows)."""
PID_HISTORY_WINDOWS = 8
"""Closed windows (30 min each) a history by pid may decode: 4 hours."""


def table_sums(
    rows: Iterable[Mapping[str, object]], match: Callable[[Mapping[str, object]], bool]
) -> Sums:
    """Sums over the rows ``match`` accepts (a field missing or not a number adds 0)."""
    cpu = mem = rss = 0.0
    count = 0
    for r in rows:
        if match(r):
            cpu += _num(r.get("cpu_percent"))
            mem += _num(r.get("memory_percent"))
            rss += _num(r.get("rss_bytes"))
            count += 1
    return cpu, mem, rss, count


def name_index(tables: Iterable[tuple[float, Sequence[Mapping[str, object]]]]) -> dict[str, bytes]:
    """Per process name, the window's per-table sums as one zlib'd JSON column block
    ``[ts[], cpu[], mem[], rss[], count[]]`` (only tables where the name occurs), plus
    ``ALL_TABLES``: every table's timestamp (and row count)."""
    cols: dict[str, list[list[float]]] = {}
    for ts, rows in sorted(tables, key=lambda t: t[0]):
        per: dict[str, list[float]] = {}
        for r in rows:
            name = r.get("name")
            if not isinstance(name, str):
                continue
            acc = per.setdefault(name, [0.0, 0.0, 0.0, 0.0])
            acc[0] += _num(r.get("cpu_percent"))
            acc[1] += _num(r.get("memory_percent"))
            acc[2] += _num(r.get("rss_bytes"))
            acc[3] += 1
        per[ALL_TABLES] = [0.0, 0.0, 0.0, float(len(rows))]
        for name, acc in per.items():
            block = cols.setdefault(name, [[], [], [], [], []])
            block[0].append(ts)
            for j in range(4):
                block[j + 1].append(acc[j])
    return {
        name: zlib.compress(json.dumps(block, separators=(",", ":")).encode(), 6)
        for name, block in cols.items()
    }


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def history_grid(
    start: float, end: float, every: float, max_points: int
) -> tuple[float, float, int]:
    """``(step, t0, n)``: the finest multiple of ``every`` whose grid from
    ``floor(start / step) * step`` through the point holding ``end`` has at most
    ``max_points`` points."""
    factor = max(1, math.ceil((end - start) / every / max_points))
    while True:
        step = every * factor
        t0 = math.floor(start / step) * step
        n = math.floor(end / step) - math.floor(start / step) + 1
        if n <= max_points:
            return step, t0, n
        factor += 1


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
            index = name_index((ts, rows) for ts, rows in tables.items() if isinstance(rows, list))
            conn.execute("DELETE FROM proc_name WHERE start = ?", (start,))
            conn.executemany(
                "INSERT INTO proc_name (name, start, data) VALUES (?, ?, ?)",
                [(name, start, blob) for name, blob in index.items()],
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

    # ------------------------------------------------------------------ history
    def history(
        self,
        conn: sqlite3.Connection,
        start: float,
        end: float,
        max_points: int,
        name: str | None = None,
        pid: int | None = None,
    ) -> ProcessSeries:
        """See ``ProcessHistoryQuery.process_history``; the caller holds no transaction."""
        if (name is None) == (pid is None):
            raise QueryError("name", "give exactly one of name and pid")
        every = self.every if self.every > 0 else self._interval
        step, t0, n = history_grid(start, end, every, max_points)
        match: Callable[[Mapping[str, object]], bool] = (
            (lambda r: r.get("name") == name)
            if name is not None
            else (lambda r: r.get("pid") == pid)
        )
        picked: dict[int, tuple[float, Sums | None]] = {}
        """Per grid point: the first table in it, with its sums once known."""

        def offer(ts: float, sums: Sums | None) -> None:
            if not start <= ts <= end:
                return
            k = math.floor((ts - t0) / step)
            if not 0 <= k < n:
                return
            there = picked.get(k)
            if there is None or ts < there[0] or (ts == there[0] and sums is not None):
                picked[k] = (ts, sums)

        w0 = floor_to(start, self.span)
        parsed = 0
        with read_snapshot(conn):
            windows = [
                float(r[0])
                for r in fetch_all(
                    conn,
                    "SELECT start FROM proc_chunk WHERE start >= ? AND start <= ? ORDER BY start",
                    (w0, end),
                )
            ]
            indexed: set[float] = set()
            if name is not None:
                for key, w, data in fetch_all(
                    conn,
                    "SELECT name, start, data FROM proc_name WHERE name IN (?, ?) "
                    "AND start >= ? AND start <= ?",
                    (ALL_TABLES, name, w0, end),
                ):
                    indexed.add(float(w))
                    ts_col, cpu, mem, rss, cnt = json.loads(zlib.decompress(data))
                    for i, ts in enumerate(ts_col):
                        if key == ALL_TABLES:
                            offer(float(ts), None)
                        else:
                            offer(float(ts), (cpu[i], mem[i], rss[i], int(cnt[i])))
                # A table listed under ALL_TABLES only keeps sums None: stored, no match.
            legacy = [w for w in windows if w not in indexed]
            if pid is not None and len(legacy) > PID_HISTORY_WINDOWS:
                raise QueryError(
                    "start",
                    f"a history by pid decodes every stored table; at most "
                    f"{PID_HISTORY_WINDOWS * self.span / 3600:g} h of closed windows "
                    f"(got {len(legacy) * self.span / 3600:g} h); use name, or a shorter range",
                )
            for (data,) in (
                fetch_all(conn, "SELECT data FROM proc_chunk WHERE start = ?", (w,))[0]
                for w in legacy
            ):
                for ts, rows in json.loads(zlib.decompress(data)):
                    offer(float(ts), table_sums(rows, match))
                    parsed += 1
            hot = [
                float(r[0])
                for r in fetch_all(
                    conn,
                    "SELECT ts FROM proc_hot WHERE ts >= ? AND ts <= ? ORDER BY ts",
                    (start, end),
                )
            ]
            for ts in hot:
                offer(ts, None)
            # Parse only the hot tables that were picked (one per grid point at most).
            in_hot = set(hot)
            for k, (ts, sums) in sorted(picked.items()):
                if sums is None and ts in in_hot:
                    row = fetch_one(conn, "SELECT data FROM proc_hot WHERE ts = ?", (ts,))
                    if row is not None:
                        picked[k] = (ts, table_sums(json.loads(bytes(row[0])), match))
                        parsed += 1
        fields: dict[str, list[float | None]] = {f: [None] * n for f in HISTORY_FIELDS}
        for k, (_ts, sums) in picked.items():
            values = sums if sums is not None else (0.0, 0.0, 0.0, 0)  # stored, no match
            for f, v in zip(HISTORY_FIELDS, values, strict=True):
                fields[f][k] = v
        return ProcessSeries(
            step_seconds=step,
            timestamps=[t0 + k * step for k in range(n)],
            fields=fields,
            tables_parsed=parsed,
        )
