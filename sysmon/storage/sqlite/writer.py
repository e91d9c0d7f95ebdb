"""Writing samples: one tick = one transaction of packed rows, one per series group.

A tick's samples are grouped by ``(metric, labels)``; each group's values go into one
float64 row in field-layout order (NaN = absent this tick) at the raw slot
``floor(ts / interval + 0.5) * interval``, so a tick fired a few ms early or late lands
in its own slot and a replayed tick replaces its rows. New groups and fields are
registered in the same transaction; the caches in ``WriterState`` learn them only after
the commit.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Mapping

from sysmon.models import Labels, Snapshot
from sysmon.storage import rollup
from sysmon.storage.encoding import NAN, pack_row
from sysmon.storage.sqlite.layout import Tier, floor_to, labels_key
from sysmon.storage.sqlite.processes import ProcessTables
from sysmon.storage.sqlite.state import WriterState
from sysmon.storage.sqlite.tx import transaction

WRITE_FAILED = "write failed"

BucketRow = tuple[str, Labels, float, Mapping[str, rollup.Stat]]
"""``(metric, labels, bucket_start, {field: (mean, min, max, count)})``."""


class SampleWriter:
    def __init__(self, state: WriterState, processes: ProcessTables, interval: float) -> None:
        self._state = state
        self._processes = processes
        self._interval = interval
        self._newest: float | None = None
        """The newest raw slot with hot rows, read once and kept after each commit: a
        tick past it cannot replace a row, so it needs no lookup (every tick but a
        replayed one)."""

    def forget(self) -> None:
        """Read the newest raw slot again before the next write (the file was opened
        or reloaded)."""
        self._newest = None

    def write(self, conn: sqlite3.Connection, snapshot: Snapshot) -> None:
        """Store one tick in one transaction; raising means nothing of it was stored."""
        state = self._state
        slot_ts = math.floor(snapshot.timestamp / self._interval + 0.5) * self._interval
        groups: dict[tuple[str, Labels], dict[str, float]] = {}
        for s in snapshot.samples():
            key = (s.metric, tuple(sorted(s.labels)))
            groups.setdefault(key, {})[s.field] = float(s.value)
        new_series: dict[tuple[str, Labels], int] = {}
        new_layouts: dict[int, dict[str, int]] = {}
        delta: dict[str, int] = {}
        with transaction(conn, WRITE_FAILED):
            rows: list[tuple[int, int, float, bytes]] = []
            for key, fields in groups.items():
                sid = state.series_ids.get(key)
                if sid is None:
                    cur = conn.execute(
                        "INSERT INTO series (metric, labels) VALUES (?, ?)",
                        (key[0], labels_key(key[1])),
                    )
                    sid = int(cur.lastrowid or 0)
                    new_series[key] = sid
                layout = state.layouts.get(sid, {})
                missing = [f for f in fields if f not in layout]
                if missing:
                    layout = dict(layout)
                    for name in missing:
                        layout[name] = len(layout)
                        conn.execute(
                            "INSERT INTO field (series_id, idx, name) VALUES (?, ?, ?)",
                            (sid, layout[name], name),
                        )
                    new_layouts[sid] = layout
                values = [NAN] * len(layout)
                for name, value in fields.items():
                    values[layout[name]] = value
                rows.append((0, sid, slot_ts, pack_row(values)))
            # Rows already in this slot (a replayed tick) are replaced, not added.
            if self._newest is None:
                found = conn.execute("SELECT max(ts) FROM hot WHERE tier = 0").fetchone()[0]
                self._newest = -math.inf if found is None else float(found)
            there: set[int] = set()
            if slot_ts <= self._newest:
                there = {
                    int(r[0])
                    for r in conn.execute(
                        "SELECT series_id FROM hot WHERE tier = 0 AND ts = ?", (slot_ts,)
                    )
                }
            conn.executemany(
                "INSERT OR REPLACE INTO hot (tier, series_id, ts, data) VALUES (?,?,?,?)",
                rows,
            )
            delta["raw.hot"] = sum(1 for r in rows if r[1] not in there)
            delta["series"] = len(new_series)
            proc_slot, delta["processes.hot"] = self._processes.write(conn, snapshot)
            lowered = state.lower_watermarks(conn, 0, slot_ts)
        self._newest = max(self._newest, slot_ts) if rows else self._newest
        state.series_ids.update(new_series)
        state.layouts.update(new_layouts)
        state.done.update(lowered)
        state.add_counts(delta)
        self._processes.committed(proc_slot)

    def import_buckets(
        self, conn: sqlite3.Connection, tier: Tier, rows: Iterable[BucketRow]
    ) -> None:
        """Ready-made rollup buckets of ``tier`` as hot rows, in one transaction; the
        tier's watermark moves past the last one so the rollup does not recompute them.

        Registers groups and fields as it goes (caches updated at once): on failure the
        caller reloads ``WriterState`` from the file.
        """
        state = self._state
        last = -math.inf
        with transaction(conn, "import failed"):
            packed: list[tuple[int, int, float, bytes]] = []
            for metric, labels, ts, stats in rows:
                sid, layout = self._register(conn, metric, tuple(sorted(labels)), stats)
                flat = list(rollup.GAP) * len(layout)
                for name, st in stats.items():
                    k = layout[name] * rollup.STATS_PER_FIELD
                    flat[k : k + rollup.STATS_PER_FIELD] = st
                start = floor_to(ts, tier.step)
                packed.append((tier.code, sid, start, pack_row(flat)))
                last = max(last, start + tier.step)
            conn.executemany(
                "INSERT OR REPLACE INTO hot (tier, series_id, ts, data) VALUES (?,?,?,?)",
                packed,
            )
            if packed and last > state.watermark(tier):
                state.set_done(conn, tier, last)

    def _register(
        self, conn: sqlite3.Connection, metric: str, labels: Labels, fields: Iterable[str]
    ) -> tuple[int, dict[str, int]]:
        """Series id and field layout, creating them (import path; caches updated now)."""
        state = self._state
        key = (metric, labels)
        sid = state.series_ids.get(key)
        if sid is None:
            cur = conn.execute(
                "INSERT INTO series (metric, labels) VALUES (?, ?)", (metric, labels_key(labels))
            )
            sid = int(cur.lastrowid or 0)
            state.series_ids[key] = sid
        layout = state.layouts.setdefault(sid, {})
        for name in fields:
            if name not in layout:
                layout[name] = len(layout)
                conn.execute(
                    "INSERT INTO field (series_id, idx, name) VALUES (?, ?, ?)",
                    (sid, layout[name], name),
                )
        return sid, layout
