"""``SQLiteStore``: the ``TimeSeriesStore`` on one SQLite file, wiring the parts.

Layout in one sentence: every tick writes one packed float64 row per *series group*
(a metric plus a label set, e.g. ``disk{device=sda}``) into ``hot``; closed time windows
of those rows are later compacted into one compressed column-major ``chunk`` per group,
and rollup tiers (1m, 5m, 1h) are built the same way, each from the tier below it.
See sysmon/storage/README.md for the measured sizes and the reasons.

This class only holds the lifecycle, the locks and the parts: ``pool`` (connections),
``tx`` (transactions, error mapping), ``writer`` (ticks, imports), ``planner`` (tier and
step), ``reader`` + ``aggregate`` (slot columns, bucket math), ``maintenance`` (rollups,
compaction, retention), ``processes`` (process tables), ``state`` (the writer's caches).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sqlite3
import threading
from array import array
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from sysmon.clock import Clock, SystemClock
from sysmon.errors import QueryError, StorageError
from sysmon.models import Labels, Snapshot
from sysmon.storage.base import (
    Capabilities,
    HostSeen,
    NativeResolution,
    ProcessSeries,
    RangeQuery,
    RawGrid,
    SeriesResult,
    StoreStats,
)
from sysmon.storage.cache import DEFAULT_CHUNK_CACHE_BYTES, ChunkCache
from sysmon.storage.config import RetentionConfig
from sysmon.storage.encoding import decode_flat
from sysmon.storage.sqlite import planner, reader
from sysmon.storage.sqlite.aggregate import expired_slots as aggregate_expired
from sysmon.storage.sqlite.layout import Tier, build_tiers, floor_to, labels_from_key
from sysmon.storage.sqlite.maintenance import MAINTENANCE_FAILED, Maintenance
from sysmon.storage.sqlite.pool import ReaderPool, connect, create_private, prepare_writer
from sysmon.storage.sqlite.processes import ProcessTable, ProcessTables
from sysmon.storage.sqlite.state import WriterState
from sysmon.storage.sqlite.tx import fetch_all, fetch_one, read_snapshot, storage_errors
from sysmon.storage.sqlite.writer import BucketRow, SampleWriter


class SQLiteStore:
    """``TimeSeriesStore`` on one SQLite file; see the module docstring for the layout.

    ``interval_seconds`` is the collection interval: the raw tier's slot width. Raw
    timestamps are snapped to the nearest slot (``round(ts / interval) * interval``),
    so a tick that fires a few ms early or late lands in its own slot.

    ``max_size_bytes`` optionally caps the main file (``PRAGMA max_page_count``); a write
    past it fails with ``StorageFullError`` exactly like a full disk.

    ``chunk_cache_bytes`` bounds the LRU of decoded rollup chunks that long-range
    queries reuse (``cache.py``); 0 disables it.

    ``readonly``: a reader of a file another process writes (the server): ``open``
    neither creates nor migrates it, and queries fail (503) until the agent has
    created it.

    ``host``: the one host whose samples the file holds (``agent.host``); ``hosts()``
    names it, and a read for any other host is refused (``QueryError`` for ``host``).
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        retention: RetentionConfig,
        interval_seconds: float,
        clock: Clock | None = None,
        max_size_bytes: int | None = None,
        chunk_cache_bytes: int = DEFAULT_CHUNK_CACHE_BYTES,
        readonly: bool = False,
        host: str | None = None,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._path = str(path)
        self._interval = float(interval_seconds)
        self._clock: Clock = clock or SystemClock()
        self._tiers: list[Tier] = build_tiers(retention, self._interval)
        self._max_size = max_size_bytes
        self._chunk_cache = ChunkCache(chunk_cache_bytes) if chunk_cache_bytes > 0 else None
        """Decoded rollup chunks for queries (see cache.py); None when disabled."""
        self._readonly = readonly
        self.host = host or socket.gethostname()
        self._writer: sqlite3.Connection | None = None
        self._write_lock = threading.RLock()
        self._pool = ReaderPool(self._connect_reader)
        self._last_write_error: str | None = None
        late_grace = max(2.0 * self._interval, 5.0)
        self._state = WriterState(self._tiers)
        self._processes = ProcessTables(
            retention.processes_every_seconds, self._interval, late_grace, MAINTENANCE_FAILED
        )
        self._samples = SampleWriter(self._state, self._processes, self._interval)
        self._maintenance = Maintenance(self._state, self._processes, late_grace)
        self.maintenance_backlog = False
        """True when the last ``maintain`` did work (so another call may find more)."""

    # ------------------------------------------------------------------ lifecycle
    def _connect(self) -> sqlite3.Connection:
        return connect(self._path, readonly=self._readonly)

    def _connect_reader(self) -> sqlite3.Connection:
        conn = self._connect()  # looked up per call: tests trace it
        conn.execute("PRAGMA query_only = 1")
        return conn

    def open(self) -> None:
        if self._readonly:
            self._pool.start()
            return
        with storage_errors(f"cannot open database {self._path}"):
            conn = create_private(self._path, self._connect)
            prepare_writer(conn, self._path, self._max_size)
            self._writer = conn
            self._load_state(conn)
        self._pool.start()

    def _load_state(self, conn: sqlite3.Connection) -> None:
        self._state.load(conn)
        self._processes.load(conn)
        self._state.count_rows(conn)
        self._samples.forget()

    def close(self) -> None:
        with self._write_lock:
            try:
                if self._writer is not None:
                    self._writer.close()
            finally:
                self._writer = None
                self._pool.close()
        if self._chunk_cache is not None:
            self._chunk_cache.clear()

    def _writer_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            raise StorageError("store is not open")
        return self._writer

    # ------------------------------------------------------------------ contract
    def capabilities(self) -> Capabilities:
        """The configured tiers (raw's step is the collection interval), process tables
        kept, and whether this process may write (the server opens the file read-only)."""
        return Capabilities(
            backend=self.backend,
            resolutions=tuple(NativeResolution(t.name, t.step, t.keep) for t in self._tiers),
            process_tables=True,
            writable=not self._readonly,
        )

    # ------------------------------------------------------------------ write
    def write(self, snapshot: Snapshot) -> None:
        """Store one tick in one transaction; raising means nothing of it was stored."""
        with self._write_lock:
            conn = self._writer_conn()
            try:
                self._samples.write(conn, snapshot)
            except StorageError as err:
                self._last_write_error = str(err)
                raise
            self._last_write_error = None

    def import_buckets(self, resolution: str, rows: Iterable[BucketRow]) -> None:
        """Store ready-made rollup buckets ``(metric, labels, bucket_start, {field: stat})``.

        For back-filling history from another system, and for the benchmark, which
        cannot simulate a year of 1 s ticks. The rows go through the same path as the
        rollup's own (hot rows, then compaction); the tier's watermark moves past the
        last imported bucket so the rollup does not recompute them. Import oldest first.
        """
        tier = next((t for t in self._tiers if t.name == resolution), None)
        if tier is None or tier.code == 0:
            raise ValueError(f"cannot import into tier {resolution!r}")
        with self._write_lock:
            conn = self._writer_conn()
            try:
                self._samples.import_buckets(conn, tier, rows)
            except BaseException:
                self._load_state(conn)
                raise
            self._state.count_rows(conn)  # a bulk back-fill: recount once

    def maintain(self, now: float) -> None:
        """Rollups, compaction and retention, each bounded per call (see maintenance.py)."""
        with self._write_lock:
            self.maintenance_backlog = self._maintenance.run(self._writer_conn(), now)

    # ------------------------------------------------------------------ read
    def _fill(
        self,
        conn: sqlite3.Connection,
        tier: Tier,
        sid: int,
        t0: float,
        n: int,
        nfields: int,
        step: float | None = None,
        stats: Collection[int] | None = None,
        cached: bool = False,
    ) -> list[array[float]]:
        """``reader.fill``; ``cached``: decode rollup chunks through the read cache."""
        decode = self._decoded if cached else reader.plain_decode
        return reader.fill(conn, tier, sid, t0, n, nfields, step, stats, decode)

    def _decoded(self, tier: Tier, blob: bytes) -> tuple[int, int, array[float]]:
        """``decode_flat(blob)``, through the read cache for rollup tiers.

        The cache is keyed by the compressed bytes themselves, so it can never serve a
        stale chunk: a window that compaction rewrites (late rows merged in) has other
        bytes, and a chunk that retention deleted is never fetched again; both just age
        out. Raw chunks bypass it (short queries, big windows: they would only evict the
        year-long rollup reads it is for).
        """
        if tier.code == 0 or self._chunk_cache is None:
            return decode_flat(blob)
        return self._chunk_cache.get(blob)

    def _own(self, host: str | None) -> None:
        if host is not None and host != self.host:
            raise QueryError("host", f"unknown host {host!r}; known: {[self.host]}")

    def query(self, q: RangeQuery) -> SeriesResult:
        planner.validate(q)
        self._own(q.host)
        labels = tuple(sorted(q.labels))
        now = self._clock.time()
        plan = planner.plan(q, self._tiers, now)
        tier = plan.tier
        partial_from: float | None = None
        with storage_errors("query failed"), self._pool.reading() as conn, read_snapshot(conn):
            sid, names = reader.series_fields(conn, q.metric, labels)
            # The live edge: buckets not rolled up yet come from the finer tiers.
            edge = reader.LiveEdge(conn, self._tiers, sid, self._fill)
            live_slot = edge.first_slot(conn, tier, plan.t0)
            if live_slot is not None and live_slot < plan.n * plan.factor:
                partial_from = plan.t0 + (live_slot // plan.factor) * plan.step
            if plan.factor == 1:  # n <= max_points slots: fill them all
                fields = reader.unmerged(conn, tier, sid, names, plan.t0, plan.n, q.agg, now, edge)
            else:
                fields = reader.merged(
                    conn,
                    tier,
                    sid,
                    names,
                    plan.t0,
                    plan.n,
                    plan.factor,
                    q.agg,
                    now,
                    edge,
                    live_slot,
                )
        return SeriesResult(
            metric=q.metric,
            labels=labels,
            resolution=tier.name,
            agg=q.agg,
            step_seconds=plan.step,
            timestamps=plan.timestamps,
            fields=fields,
            partial_from=partial_from,
        )

    def raw_grid(self, q: RangeQuery) -> RawGrid | None:
        """The raw slots ``query(q)`` answers with one slot per point, or ``None`` when
        another tier, a merge of slots or retention shapes the answer (``RawGrid``).
        Raises ``QueryError`` like ``query`` for a query no tier could answer."""
        planner.validate(q)
        self._own(q.host)
        now = self._clock.time()
        plan = planner.plan(q, self._tiers, now)
        tier = plan.tier
        if tier.code != 0 or plan.factor != 1:
            return None
        if aggregate_expired(tier.step, tier.keep, plan.t0, now) > 0:
            return None
        return RawGrid(tier.name, plan.step, plan.t0, plan.n)

    def series(self, metric: str, host: str | None = None) -> Sequence[Labels]:
        self._own(host)
        with storage_errors("series lookup failed"), self._pool.reading() as conn:
            rows = fetch_all(
                conn, "SELECT labels FROM series WHERE metric = ? ORDER BY labels", (metric,)
            )
        found = [labels_from_key(str(r[0])) for r in rows]
        return sorted(found, key=lambda labels: (len(labels), labels))

    def hosts(self) -> Sequence[HostSeen]:
        """The file's one host, last seen at the newest raw tick stored (none stored:
        an empty list). The newest tick is a hot row unless maintenance already
        compacted its window (an agent stopped a while ago): then the newest raw
        chunks are decoded for their last filled slot."""
        with storage_errors("hosts lookup failed"), self._pool.reading() as conn:
            row = fetch_one(conn, "SELECT max(ts) FROM hot WHERE tier = 0")
            newest = -math.inf if row is None or row[0] is None else float(row[0])
            row = fetch_one(conn, "SELECT max(start) FROM chunk WHERE tier = 0")
            if row is not None and row[0] is not None:
                for start, width, data in fetch_all(
                    conn,
                    "SELECT start, width, data FROM chunk WHERE tier = 0 AND start >= ?",
                    (float(row[0]),),
                ):
                    newest = max(newest, _last_slot(float(start), float(width), data))
        if newest == -math.inf:
            return []
        return [HostSeen(self.host, newest)]

    def query_processes(self, at: float) -> ProcessTable | None:
        """The stored table at or before ``at``, at most ``2 x max(interval, every)`` old."""
        with storage_errors("process history query failed"), self._pool.reading() as conn:
            return self._processes.query(conn, at)

    def process_history(
        self,
        start: float,
        end: float,
        max_points: int,
        name: str | None = None,
        pid: int | None = None,
    ) -> ProcessSeries:
        """``ProcessHistoryQuery``: sums of the matching rows per stored table (processes.py)."""
        with storage_errors("process history query failed"), self._pool.reading() as conn:
            return self._processes.history(conn, start, end, max_points, name, pid)

    # ------------------------------------------------------------------ health
    def ping(self) -> bool:
        try:
            if not os.path.exists(self._path):
                return False
            with self._pool.reading() as conn:
                fetch_one(conn, "SELECT count(*) FROM sqlite_master")
            return True
        except Exception:  # ping reports, it never raises
            return False

    def stats(self) -> StoreStats:
        """File size and row counts without touching the database (health calls this on
        every request): two ``stat`` calls and a copy of the counts that ``open`` took
        once and ``write``/``maintain``/``import_buckets`` keep exact since."""
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(self._path + suffix)
        rows = {} if self._writer is None else dict(self._state.counts)
        return StoreStats(
            backend=self.backend,
            path=self._path,
            size_bytes=size or None,
            rows=rows,
            pending_writes=0,
            last_write_error=self._last_write_error,
        )


def _last_slot(start: float, width: float, blob: bytes) -> float:
    """Timestamp of the last slot of a raw chunk holding any value (-inf: none)."""
    nslots, ncols, flat = decode_flat(blob)
    start = floor_to(start, width)
    for i in range(nslots - 1, -1, -1):
        if any(flat[j * nslots + i] == flat[j * nslots + i] for j in range(ncols)):
            return start + i * width
    return -math.inf
