"""What the writer thread remembers of the file: series ids, field layouts, rollup
watermarks and row counts.

All of it mirrors committed rows and is touched by the writer thread only, except
``counts``, which ``stats()`` reads from any thread: it is replaced whole, never mutated
once published, so a reader always sees one consistent version. Callers update these
mirrors *after* their transaction committed (``tx.transaction``), so a failed write
leaves them as they were.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping

from sysmon.models import Labels
from sysmon.storage.sqlite.layout import Tier, floor_to, labels_from_key


class WriterState:
    def __init__(self, tiers: list[Tier]) -> None:
        self.tiers = tiers
        self.series_ids: dict[tuple[str, Labels], int] = {}
        self.layouts: dict[int, dict[str, int]] = {}
        """Per series id: field name -> value index (append-only)."""
        self.done: dict[int, float] = {}
        """Per rollup tier code: every bucket before this is computed (``rollup_state``)."""
        self.counts: dict[str, int] = {}
        """Row counts for ``stats`` (replaced whole; see the module docstring)."""

    def load(self, conn: sqlite3.Connection) -> None:
        self.series_ids.clear()
        self.layouts.clear()
        for sid, metric, labels in conn.execute("SELECT id, metric, labels FROM series"):
            self.series_ids[(metric, labels_from_key(labels))] = int(sid)
            self.layouts[int(sid)] = {}
        for sid, idx, name in conn.execute("SELECT series_id, idx, name FROM field"):
            self.layouts.setdefault(int(sid), {})[str(name)] = int(idx)
        self.done = {
            int(code): float(done)
            for code, done in conn.execute("SELECT tier, done_until FROM rollup_state")
        }

    def count_rows(self, conn: sqlite3.Connection) -> None:
        """Exact row counts, once at open: afterwards ``write``/``maintain`` keep them."""
        counts: dict[str, int] = {}
        for tier in self.tiers:
            for table, suffix in (("hot", "hot"), ("chunk", "chunks")):
                row = conn.execute(f"SELECT count(*) FROM {table} WHERE tier = ?", (tier.code,))
                counts[f"{tier.name}.{suffix}"] = int(row.fetchone()[0])
        for table, key in (
            ("proc_hot", "processes.hot"),
            ("proc_chunk", "processes.chunks"),
            ("series", "series"),
        ):
            counts[key] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        self.counts = counts

    def add_counts(self, delta: Mapping[str, int]) -> None:
        """Apply committed row changes (writer only; after the COMMIT succeeded)."""
        if not any(delta.values()):
            return
        new = dict(self.counts)
        for key, n in delta.items():
            new[key] = new.get(key, 0) + n
        self.counts = new

    def set_done(self, conn: sqlite3.Connection, tier: Tier, value: float) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO rollup_state (tier, done_until) VALUES (?, ?)",
            (tier.code, value),
        )
        self.done[tier.code] = value

    def lower_watermarks(self, conn: sqlite3.Connection, code: int, ts: float) -> dict[int, float]:
        """A row of tier ``code`` at ``ts`` changed: the tier above must redo that bucket.

        This is how a late write (a buffered tick replayed after an outage) ends up in the
        rollups instead of being skipped: the next ``maintain`` recomputes from there.
        Returns the lowered watermarks for the caller to apply after its commit.
        """
        lowered: dict[int, float] = {}
        codes = [t.code for t in self.tiers]
        if code not in codes or codes.index(code) + 1 >= len(self.tiers):
            return lowered
        upper = self.tiers[codes.index(code) + 1]
        done = self.done.get(upper.code)
        if done is not None and ts < done:
            new = floor_to(ts, upper.step)
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (tier, done_until) VALUES (?, ?)",
                (upper.code, new),
            )
            lowered[upper.code] = new
        return lowered

    def source_horizon(self, source: Tier, now: float) -> float | None:
        """Up to where ``source`` is final: raw 1 s behind now, a rollup tier its watermark."""
        if source.code == 0:
            return now - 1.0
        return self.done.get(source.code)

    def watermark(self, tier: Tier) -> float:
        return self.done.get(tier.code, -math.inf)
