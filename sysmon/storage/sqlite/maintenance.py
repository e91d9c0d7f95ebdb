"""Rollups, compaction, retention and checkpoints: ``maintain(now)``, bounded per call.

Per call at most: 10 one-minute buckets, 12 five-minute, 6 hourly; 3 chunk compactions;
one process window; one retention pass (every 60 s) of bounded deletes, each its own
short transaction; 256 pages of ``PRAGMA incremental_vacuum``; a PASSIVE WAL checkpoint
every 10 s or after any work. With nothing due it executes no SQL at all.

Rollups are incremental (closed buckets only), idempotent (bucket rows and the new
watermark commit together) and catch up over outages with one indexed lookup; see the
README's "Tiers and rollups".
"""

from __future__ import annotations

import math
import sqlite3

from sysmon.storage import rollup
from sysmon.storage.encoding import encode_chunk, pack_row
from sysmon.storage.sqlite import aggregate, reader
from sysmon.storage.sqlite.layout import COMPACT_CHECK_EVERY_SECONDS, EPS, Tier, floor_to
from sysmon.storage.sqlite.processes import ProcessTables
from sysmon.storage.sqlite.state import WriterState
from sysmon.storage.sqlite.tx import fetch_one, storage_errors, transaction

MAINTENANCE_FAILED = "maintenance failed"
ROLLUP_BUCKETS_PER_CALL = {"1m": 10, "5m": 12, "1h": 6}
"""Buckets computed per ``maintain`` call and tier: bounds the time one call takes."""
COMPACT_UNITS_PER_CALL = 3
DELETE_BATCH_ROWS = 2000
DELETE_BATCH_CHUNKS = 50
VACUUM_PAGES_PER_CALL = 256
RETENTION_EVERY_SECONDS = 60.0
CHECKPOINT_EVERY_SECONDS = 10.0


class Maintenance:
    def __init__(self, state: WriterState, processes: ProcessTables, late_grace: float) -> None:
        self._state = state
        self._tiers = state.tiers
        self._processes = processes
        self._late_grace = late_grace
        """Raw windows are compacted only this long after their end (replayed ticks)."""
        self._next_compact: dict[int, float] = {}
        self._next_retention = -math.inf
        self._next_checkpoint = -math.inf

    def run(self, conn: sqlite3.Connection, now: float) -> bool:
        """One bounded round; True if it did work (another call may find more)."""
        worked = False
        with storage_errors(MAINTENANCE_FAILED, conn):
            for i in range(1, len(self._tiers)):
                if self._rollup_tier(conn, self._tiers[i - 1], self._tiers[i], now):
                    worked = True
            units = COMPACT_UNITS_PER_CALL
            for tier in self._tiers:
                units -= self._compact_tier(conn, tier, now, units)
                if units <= 0:
                    break
            worked = worked or units < COMPACT_UNITS_PER_CALL
            if units > 0 and self._processes.compact(conn, now, self._state):
                worked = True
            if now >= self._next_retention:
                more = self._retention(conn, now)
                worked = worked or more
                self._next_retention = now if more else now + RETENTION_EVERY_SECONDS
            if (
                worked
                or now >= self._next_checkpoint
                or now < self._next_checkpoint - 2 * CHECKPOINT_EVERY_SECONDS
            ):
                # Every 10 s of ticks, or after any maintenance work (catch-up writes a
                # lot), so the WAL - and the cost of one checkpoint - stays small.
                # PASSIVE never waits for readers; frames they still need stay for later.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self._next_checkpoint = now + CHECKPOINT_EVERY_SECONDS
        return worked

    # ------------------------------------------------------------------ rollups
    def _next_data_ts(self, conn: sqlite3.Connection, tier: Tier, after: float) -> float | None:
        hot = conn.execute(
            "SELECT min(ts) FROM hot WHERE tier = ? AND ts >= ?", (tier.code, after)
        ).fetchone()[0]
        chunk = conn.execute(
            "SELECT min(start) FROM chunk WHERE tier = ? AND start > ?",
            (tier.code, after - tier.span),
        ).fetchone()[0]
        found = [float(v) for v in (hot, chunk) if v is not None]
        return max(min(found), after) if found else None

    def _rollup_tier(
        self, conn: sqlite3.Connection, source: Tier, target: Tier, now: float
    ) -> bool:
        state = self._state
        horizon = state.source_horizon(source, now)
        if horizon is None:
            return False
        closed_end = floor_to(horizon, target.step)
        done = state.done.get(target.code)
        if done is not None and done >= closed_end:
            return False  # the cheap path: nothing closed since the last call
        nxt = self._next_data_ts(conn, source, -math.inf if done is None else done)
        if nxt is None:
            return False
        if nxt >= closed_end:
            # Nothing stored up to the horizon (downtime): skip the empty buckets at once.
            if done is not None:
                state.set_done(conn, target, closed_end)
            return done is not None
        begin = (
            floor_to(nxt, target.step) if done is None else max(done, floor_to(nxt, target.step))
        )
        end = min(closed_end, begin + ROLLUP_BUCKETS_PER_CALL[target.name] * target.step)
        nbuckets = round((end - begin) / target.step)
        ratio = target.step / source.step
        nslots = math.ceil(nbuckets * ratio - EPS)
        bounds = rollup.bucket_bounds(nbuckets, ratio)
        rows: list[tuple[int, int, float, bytes]] = []
        for sid, layout in state.layouts.items():
            nfields = len(layout)
            if nfields == 0:
                continue
            cols = reader.fill(conn, source, sid, begin, nslots, nfields)
            buckets = aggregate.rollup_buckets(cols, source.code == 0, nfields, bounds)
            for j, stats in enumerate(buckets):
                if stats is not None:
                    rows.append((target.code, sid, begin + j * target.step, pack_row(stats)))
        with transaction(conn, MAINTENANCE_FAILED):
            # Recomputed buckets (late data) replace their rows: count only new ones.
            there = {
                (int(r[0]), float(r[1]))
                for r in conn.execute(
                    "SELECT series_id, ts FROM hot WHERE tier = ? AND ts >= ? AND ts < ?",
                    (target.code, begin, end),
                )
            }
            conn.executemany(
                "INSERT OR REPLACE INTO hot (tier, series_id, ts, data) VALUES (?,?,?,?)", rows
            )
            lowered = state.lower_watermarks(conn, target.code, begin) if rows else {}
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (tier, done_until) VALUES (?, ?)",
                (target.code, end),
            )
        state.done[target.code] = end
        state.done.update(lowered)
        added = sum(1 for r in rows if (r[1], r[2]) not in there)
        state.add_counts({f"{target.name}.hot": added})
        return True

    # ------------------------------------------------------------------ compaction
    def _compact_tier(self, conn: sqlite3.Connection, tier: Tier, now: float, units: int) -> int:
        """Fold closed windows of hot rows into chunks; returns the units of work done."""
        if now < self._next_compact.get(tier.code, -math.inf):
            return 0
        # Raw windows are final once the late-write grace has passed; a rollup window
        # once every bucket in it has been computed. Rows that arrive later anyway (a
        # replayed tick, a recomputed bucket) are merged into the chunk on the next pass.
        horizon = now - self._late_grace if tier.code == 0 else self._state.done.get(tier.code)
        if horizon is None:
            return 0
        limit = floor_to(horizon, tier.span)
        did = 0
        while did < units:
            row = conn.execute(
                "SELECT series_id, ts FROM hot WHERE tier = ? AND ts < ? ORDER BY ts LIMIT 1",
                (tier.code, limit),
            ).fetchone()
            if row is None:
                self._next_compact[tier.code] = now + COMPACT_CHECK_EVERY_SECONDS
                break
            self._compact_window(conn, tier, int(row[0]), floor_to(float(row[1]), tier.span))
            did += 1
        return did

    def _compact_window(self, conn: sqlite3.Connection, tier: Tier, sid: int, start: float) -> None:
        width = tier.step
        base = floor_to(start, width)
        nslots = math.ceil((start + tier.span - base) / width - EPS)
        nfields = len(self._state.layouts.get(sid, {}))
        with transaction(conn, MAINTENANCE_FAILED):
            cols = reader.fill(conn, tier, sid, base, nslots, nfields)
            blob = encode_chunk(cols, nslots)
            there = fetch_one(
                conn,
                "SELECT 1 FROM chunk WHERE tier = ? AND series_id = ? AND start = ?",
                (tier.code, sid, start),
            )
            conn.execute(
                "INSERT OR REPLACE INTO chunk (tier, series_id, start, width, data) "
                "VALUES (?, ?, ?, ?, ?)",
                (tier.code, sid, start, width, blob),
            )
            gone = conn.execute(
                "DELETE FROM hot WHERE tier = ? AND series_id = ? AND ts >= ? AND ts < ?",
                (tier.code, sid, start - width / 2, start + tier.span - width / 2),
            ).rowcount
        self._state.add_counts(
            {f"{tier.name}.chunks": 0 if there else 1, f"{tier.name}.hot": -gone}
        )

    # ------------------------------------------------------------------ retention
    def _retention(self, conn: sqlite3.Connection, now: float) -> bool:
        """Delete expired rows in small transactions; True if more remain for next call."""
        more = False
        steps: list[tuple[str, tuple[object, ...], int, str]] = []
        for tier in self._tiers:
            cutoff = now - tier.keep
            steps.append(
                (
                    "DELETE FROM hot WHERE (tier, series_id, ts) IN ("
                    "SELECT tier, series_id, ts FROM hot WHERE tier = ? AND ts < ? LIMIT ?)",
                    (tier.code, cutoff),
                    DELETE_BATCH_ROWS,
                    f"{tier.name}.hot",
                )
            )
            steps.append(
                (
                    "DELETE FROM chunk WHERE id IN ("
                    "SELECT id FROM chunk WHERE tier = ? AND start < ? LIMIT ?)",
                    (tier.code, cutoff - tier.span),
                    DELETE_BATCH_CHUNKS,
                    f"{tier.name}.chunks",
                )
            )
        steps.extend(
            self._processes.retention_steps(
                self._tiers[0].keep, now, DELETE_BATCH_ROWS, DELETE_BATCH_CHUNKS
            )
        )
        for sql, params, batch, key in steps:
            with transaction(conn, MAINTENANCE_FAILED):
                cur = conn.execute(sql, (*params, batch))
            self._state.add_counts({key: -cur.rowcount})
            if cur.rowcount >= batch:
                more = True
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        total = int(conn.execute("PRAGMA page_count").fetchone()[0])
        if free > max(VACUUM_PAGES_PER_CALL, total // 8):
            # executescript steps the pragma to completion; execute() frees only one page.
            conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES_PER_CALL});")
            more = True
        return more
