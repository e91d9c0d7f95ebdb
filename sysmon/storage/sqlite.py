"""The embedded SQLite time-series store (the default backend).

Layout in one sentence: every tick writes one packed float64 row per *series group*
(a metric plus a label set, e.g. ``disk{device=sda}``) into ``hot``; closed time windows
of those rows are later compacted into one compressed column-major ``chunk`` per group,
and rollup tiers (1m, 5m, 1h) are built the same way, each from the tier below it.
See sysmon/storage/README.md for the measured sizes and the reasons.

Threads: the agent's writer thread owns the writer connection (``write``, ``maintain``);
reads borrow one of at most ``READER_POOL_SIZE`` read-only connections for the duration
of one call (WAL lets readers run alongside the writer without blocking it or seeing
half a tick). A pool, not one connection per thread: the API's worker threads come and
go, and per-thread connections of finished threads would pile up file descriptors.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import operator
import os
import queue
import sqlite3
import threading
import zlib
from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, islice
from pathlib import Path
from typing import Any, TypeAlias

from sysmon.clock import Clock, SystemClock
from sysmon.errors import QueryError, StorageError, StorageFullError
from sysmon.models import Labels, Snapshot
from sysmon.storage import rollup
from sysmon.storage.base import RangeQuery, SeriesResult, StoreStats
from sysmon.storage.cache import DEFAULT_CHUNK_CACHE_BYTES, ChunkCache
from sysmon.storage.config import TIER_STEP_SECONDS, RetentionConfig
from sysmon.storage.encoding import NAN, decode_flat, encode_chunk, pack_row, unpack_row
from sysmon.storage.migrations import migrate

log = logging.getLogger(__name__)

TIER_CODE = {"raw": 0, "1m": 1, "5m": 2, "1h": 3}
"""Stable tier ids in the file (independent of which tiers the config enables)."""

CHUNK_SPAN_SECONDS = {"raw": 1800.0, "1m": 6 * 3600.0, "5m": 86_400.0, "1h": 7 * 86_400.0}
"""Window compacted into one chunk per series group. Bigger windows compress better and
cost fewer rows; smaller ones keep fewer rows hot. A chunk is deleted by retention once
its whole window is older than the tier's ``keep`` (queries mask the rest)."""

MAX_POINTS_LIMIT = 10_000
ROLLUP_BUCKETS_PER_CALL = {"1m": 10, "5m": 12, "1h": 6}
"""Buckets computed per ``maintain`` call and tier: bounds the time one call takes."""
COMPACT_UNITS_PER_CALL = 3
DELETE_BATCH_ROWS = 2000
DELETE_BATCH_CHUNKS = 50
VACUUM_PAGES_PER_CALL = 256
RETENTION_EVERY_SECONDS = 60.0
COMPACT_CHECK_EVERY_SECONDS = 30.0
BUSY_TIMEOUT_MS = 5000
CHECKPOINT_EVERY_SECONDS = 10.0
READER_POOL_SIZE = 4
"""Read connections kept open at most (two descriptors each: the file and its WAL). A
call that finds all of them busy waits for one (up to the busy timeout)."""
SEGMENT_GAP_SLOTS = 1024
"""Merged queries fill slot columns only where data is stored; stored stretches closer
than this many slots are filled as one segment (fewer statements, same answer)."""
ALIGN_FACTOR_LIMIT = 4096
"""Up to this merge factor a segment is widened to whole output buckets (so their
aggregates are computed in one piece, at C speed); beyond it buckets are summarized
per segment and merged, which keeps memory bounded even for ``max_points=1`` over
decades."""
WAL_SIZE_LIMIT_BYTES = 16 * 1024 * 1024
_AGG_STAT = {"mean": rollup.MEAN, "min": rollup.MIN, "max": rollup.MAX}
_CountMemo: TypeAlias = "dict[str, tuple[array[float], list[float]]]"
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class _Tier:
    name: str
    code: int
    step: float
    keep: float
    span: float


def _floor_to(t: float, step: float) -> float:
    return math.floor(t / step + _EPS) * step


def _labels_key(labels: Labels) -> str:
    return json.dumps([list(p) for p in sorted(labels)], separators=(",", ":"))


def _labels_from_key(key: str) -> Labels:
    return tuple((str(k), str(v)) for k, v in json.loads(key))


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return True
        return "database or disk is full" in str(exc).lower()
    return False


def _storage_error(exc: BaseException, action: str) -> StorageError:
    if _is_full(exc):
        return StorageFullError(f"{action}: disk full ({exc})")
    return StorageError(f"{action}: {exc}")


def _all(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> list[Any]:
    """Every row, with the statement run to its end (no read snapshot left pinned)."""
    cur = conn.execute(sql, params)
    try:
        return cur.fetchall()
    finally:
        cur.close()


def _one(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> Any:
    """The first row or None; the statement is reset even if more rows would follow."""
    cur = conn.execute(sql, params)
    try:
        return cur.fetchone()
    finally:
        cur.close()


def _combine(
    acc: array[float],
    cnt: array[float],
    b0: int,
    parts: list[float],
    counts: list[float],
    agg: str,
) -> None:
    """Fold one segment's bucket partials into the output from bucket ``b0`` on.

    Segments are disjoint and ordered, so only the first bucket can already hold a
    partial (of the previous segment); the others are assigned at C speed.
    """
    if not parts:
        return
    if cnt[b0] > 0:
        if counts[0] > 0:
            if agg == "mean":
                acc[b0] += parts[0]
            else:
                acc[b0] = min(acc[b0], parts[0]) if agg == "min" else max(acc[b0], parts[0])
            cnt[b0] += counts[0]
        parts, counts, b0 = parts[1:], counts[1:], b0 + 1
    end = b0 + len(parts)
    acc[b0:end] = array("d", parts)
    cnt[b0:end] = array("d", counts)


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite has already rolled back on some errors (SQLITE_FULL); a second ROLLBACK
    # would raise "no transaction is active" and hide the real error.
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class SQLiteStore:
    """``TimeSeriesStore`` on one SQLite file; see the module docstring for the layout.

    ``interval_seconds`` is the collection interval: the raw tier's slot width. Raw
    timestamps are snapped to the nearest slot (``round(ts / interval) * interval``),
    so a tick that fires a few ms early or late lands in its own slot.

    ``max_size_bytes`` optionally caps the main file (``PRAGMA max_page_count``); a write
    past it fails with ``StorageFullError`` exactly like a full disk.

    ``chunk_cache_bytes`` bounds the LRU of decoded rollup chunks that long-range
    queries reuse (``cache.py``); 0 disables it.
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
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._path = str(path)
        self._retention_cfg = retention
        self._interval = float(interval_seconds)
        self._clock: Clock = clock or SystemClock()
        tiers: list[_Tier] = []
        for t in retention.tiers:
            step = self._interval if t.resolution == "raw" else TIER_STEP_SECONDS[t.resolution]
            tiers.append(
                _Tier(
                    t.resolution,
                    TIER_CODE[t.resolution],
                    step,
                    t.keep_seconds,
                    CHUNK_SPAN_SECONDS[t.resolution],
                )
            )
        self._tiers = tiers
        self._by_name = {t.name: t for t in tiers}
        self._proc_every = retention.processes_every_seconds
        self._proc_span = CHUNK_SPAN_SECONDS["raw"]
        self._late_grace = max(2.0 * self._interval, 5.0)
        self._max_size = max_size_bytes
        self._chunk_cache = ChunkCache(chunk_cache_bytes) if chunk_cache_bytes > 0 else None
        """Decoded rollup chunks for queries (see cache.py); None when disabled."""

        self._readonly = readonly
        """A reader of a file another process writes (the server): ``open`` neither
        creates nor migrates it, and queries fail (503) until the agent has created it."""
        self._readable = False
        self._writer: sqlite3.Connection | None = None
        self._write_lock = threading.RLock()
        self._pool: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()
        self._pool_lock = threading.Lock()
        self._pool_open = 0  # connections created and not yet closed (idle + borrowed)
        self._closed = False
        self._counts: dict[str, int] = {}
        """Row counts for ``stats`` (replaced whole, never mutated once published, so a
        reader thread always sees one consistent version)."""
        self._last_write_error: str | None = None

        # Writer-side caches (writer thread only; updated after a commit succeeds).
        self._series_ids: dict[tuple[str, Labels], int] = {}
        self._layouts: dict[int, dict[str, int]] = {}
        self._done: dict[int, float] = {}
        self._last_proc_slot: float | None = None
        self._next_compact: dict[int, float] = {}
        self._next_proc_compact = -math.inf
        self._next_retention = -math.inf
        self._next_checkpoint = -math.inf
        self.maintenance_backlog = False
        """True when the last ``maintain`` did work (so another call may find more)."""

    # ------------------------------------------------------------------ lifecycle
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"file:{self._path}?mode=rw" if self._readonly else self._path,
            uri=self._readonly,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def open(self) -> None:
        if self._readonly:
            self._readable = True
            self._closed = False
            return
        try:
            old_umask = os.umask(0o077)  # the file holds command lines: 0600
            try:
                Path(self._path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                conn = self._connect()
            finally:
                os.umask(old_umask)
            self._ensure_incremental_vacuum(conn)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StorageError(f"cannot enable WAL mode on {self._path} (got {mode})")
            # NORMAL in WAL: a commit is durable against a process crash, and a power
            # loss can lose only the last ticks, never corrupt the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoints run in maintain() between ticks, never inside a tick's commit.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
            migrate(conn)
            if self._max_size is not None:
                page = int(conn.execute("PRAGMA page_size").fetchone()[0])
                conn.execute(f"PRAGMA max_page_count = {max(1, self._max_size // page)}")
            self._writer = conn
            self._readable = True
            self._load_state(conn)
        except StorageError:
            raise
        except (sqlite3.Error, OSError) as exc:
            raise _storage_error(exc, f"cannot open database {self._path}") from exc
        self._closed = False

    def _ensure_incremental_vacuum(self, conn: sqlite3.Connection) -> None:
        """Lets retention hand freed pages back to the file system in small steps.

        The mode only takes effect before the first table exists, or through a VACUUM.
        The alert store may share this file and create its tables first, so a file that
        does not hold our schema yet is vacuumed once (it is small then). An existing
        metrics file without the mode keeps working: freed pages are still reused.
        """
        if int(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) == 2:
            return
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) != 0:
            return
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            try:
                conn.execute("VACUUM")
            except sqlite3.OperationalError as exc:
                log.warning("incremental auto-vacuum not enabled error=%s", exc)

    def _load_state(self, conn: sqlite3.Connection) -> None:
        self._series_ids.clear()
        self._layouts.clear()
        for sid, metric, labels in conn.execute("SELECT id, metric, labels FROM series"):
            self._series_ids[(metric, _labels_from_key(labels))] = int(sid)
            self._layouts[int(sid)] = {}
        for sid, idx, name in conn.execute("SELECT series_id, idx, name FROM field"):
            self._layouts.setdefault(int(sid), {})[str(name)] = int(idx)
        self._done = {
            int(code): float(done)
            for code, done in conn.execute("SELECT tier, done_until FROM rollup_state")
        }
        last = conn.execute(
            "SELECT max(ts) FROM (SELECT max(ts) AS ts FROM proc_hot "
            "UNION ALL SELECT max(start) FROM proc_chunk)"
        ).fetchone()[0]
        self._last_proc_slot = None if last is None else self._proc_slot(float(last))
        self._counts = self._count_rows(conn)

    def _count_rows(self, conn: sqlite3.Connection) -> dict[str, int]:
        """Exact row counts, once at open: afterwards ``write``/``maintain`` keep them."""
        counts: dict[str, int] = {}
        for tier in self._tiers:
            for table, suffix in (("hot", "hot"), ("chunk", "chunks")):
                row = conn.execute(f"SELECT count(*) FROM {table} WHERE tier = ?", (tier.code,))
                counts[f"{tier.name}.{suffix}"] = int(row.fetchone()[0])
        for table, key in (
            ("proc_hot", "processes.hot"),
            ("proc_chunk", "processes.chunks"),
            ("series", "series"),
        ):
            counts[key] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return counts

    def _add_counts(self, delta: Mapping[str, int]) -> None:
        """Apply committed row changes (writer only; after the COMMIT succeeded)."""
        if not any(delta.values()):
            return
        new = dict(self._counts)
        for key, n in delta.items():
            new[key] = new.get(key, 0) + n
        self._counts = new

    def close(self) -> None:
        with self._write_lock:
            self._closed = True
            self._readable = False
            if self._writer is not None:
                try:
                    self._writer.close()
                finally:
                    self._writer = None
        # Idle connections close now; borrowed ones when their call returns them.
        with self._pool_lock:
            idle: list[sqlite3.Connection] = []
            while not self._pool.empty():
                idle.append(self._pool.get_nowait())
        for conn in idle:
            self._discard(conn)
        if self._chunk_cache is not None:
            self._chunk_cache.clear()

    def _discard(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.close()  # finalizes every statement: no snapshot survives
        with self._pool_lock:
            self._pool_open -= 1

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Borrow a pooled read-only connection for one call.

        The connection goes back to the pool only in a clean state: no transaction
        open and every statement run to completion (callers fetch whole results), so a
        pooled connection never pins an old WAL snapshot (which would show stale data
        to the next borrower and keep checkpoints from resetting the WAL). After an
        error it is closed instead, which finalizes whatever statement was left.
        """
        if self._closed or not self._readable:
            raise StorageError("store is not open")
        conn = self._acquire()
        clean = False
        try:
            yield conn
            clean = not conn.in_transaction
        except QueryError:  # a refused query read its lookups to the end: still clean
            clean = not conn.in_transaction
            raise
        finally:
            with self._pool_lock:
                keep = clean and not self._closed
                if keep:
                    self._pool.put(conn)
            if not keep:
                self._discard(conn)

    def _acquire(self) -> sqlite3.Connection:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._pool_lock:
            create = self._pool_open < READER_POOL_SIZE
            if create:
                self._pool_open += 1
        if create:
            try:
                conn = self._connect()
                conn.execute("PRAGMA query_only = 1")
            except BaseException:
                with self._pool_lock:
                    self._pool_open -= 1
                raise
            return conn
        try:
            return self._pool.get(timeout=BUSY_TIMEOUT_MS / 1000)
        except queue.Empty:
            raise StorageError(
                f"all {READER_POOL_SIZE} read connections busy for {BUSY_TIMEOUT_MS} ms"
            ) from None

    def _writer_conn(self) -> sqlite3.Connection:
        if self._writer is None:
            raise StorageError("store is not open")
        return self._writer

    # ------------------------------------------------------------------ write
    def _proc_slot(self, ts: float) -> float:
        return ts if self._proc_every <= 0 else math.floor(ts / self._proc_every)

    def write(self, snapshot: Snapshot) -> None:
        """Store one tick in one transaction; raising means nothing of it was stored."""
        with self._write_lock:
            conn = self._writer_conn()
            slot_ts = math.floor(snapshot.timestamp / self._interval + 0.5) * self._interval
            groups: dict[tuple[str, Labels], dict[str, float]] = {}
            for s in snapshot.samples():
                key = (s.metric, tuple(sorted(s.labels)))
                groups.setdefault(key, {})[s.field] = float(s.value)
            new_series: dict[tuple[str, Labels], int] = {}
            new_layouts: dict[int, dict[str, int]] = {}
            lowered: dict[int, float] = {}
            proc_slot: float | None = None
            delta: dict[str, int] = {}
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    rows: list[tuple[int, int, float, bytes]] = []
                    for key, fields in groups.items():
                        sid = self._series_ids.get(key)
                        if sid is None:
                            cur = conn.execute(
                                "INSERT INTO series (metric, labels) VALUES (?, ?)",
                                (key[0], _labels_key(key[1])),
                            )
                            sid = int(cur.lastrowid or 0)
                            new_series[key] = sid
                        layout = self._layouts.get(sid, {})
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
                    proc_slot, delta["processes.hot"] = self._write_processes(conn, snapshot)
                    lowered = self._lower_watermarks(conn, 0, slot_ts)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
            except (sqlite3.Error, OSError) as exc:
                err = _storage_error(exc, "write failed")
                self._last_write_error = str(err)
                raise err from exc
            self._last_write_error = None
            self._series_ids.update(new_series)
            self._layouts.update(new_layouts)
            self._done.update(lowered)
            self._add_counts(delta)
            if proc_slot is not None:
                self._last_proc_slot = proc_slot

    def _write_processes(
        self, conn: sqlite3.Connection, snapshot: Snapshot
    ) -> tuple[float | None, int]:
        """Store the tick's process table if its slot has none yet: (slot, rows added)."""
        collected = snapshot.results.get("processes")
        if collected is None or not collected.rows:
            return None, 0
        slot = self._proc_slot(snapshot.timestamp)
        if self._last_proc_slot is not None and slot == self._last_proc_slot:
            return None, 0
        data = json.dumps([dict(r) for r in collected.rows], separators=(",", ":"), default=str)
        there = _one(conn, "SELECT 1 FROM proc_hot WHERE ts = ?", (snapshot.timestamp,))
        conn.execute(
            "INSERT OR REPLACE INTO proc_hot (ts, data) VALUES (?, ?)",
            (snapshot.timestamp, data.encode()),
        )
        return slot, 0 if there else 1

    def _lower_watermarks(self, conn: sqlite3.Connection, code: int, ts: float) -> dict[int, float]:
        """A row of tier ``code`` at ``ts`` changed: the tier above must redo that bucket.

        This is how a late write (a buffered tick replayed after an outage) ends up in the
        rollups instead of being skipped: the next ``maintain`` recomputes from there.
        """
        lowered: dict[int, float] = {}
        codes = [t.code for t in self._tiers]
        if code not in codes or codes.index(code) + 1 >= len(self._tiers):
            return lowered
        upper = self._tiers[codes.index(code) + 1]
        done = self._done.get(upper.code)
        if done is not None and ts < done:
            new = _floor_to(ts, upper.step)
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (tier, done_until) VALUES (?, ?)",
                (upper.code, new),
            )
            lowered[upper.code] = new
        return lowered

    # ------------------------------------------------------------------ read helpers
    def _fill(
        self,
        conn: sqlite3.Connection,
        tier: _Tier,
        sid: int,
        t0: float,
        n: int,
        nfields: int,
        step: float | None = None,
        stats: Collection[int] | None = None,
        cached: bool = False,
    ) -> list[array[float]]:
        """Columns of ``n`` slots from ``t0`` at the tier's step: chunks, then hot rows.

        Raw: one column per field, NaN = no value. Rollups: four columns per field
        (mean, min, max, count) with ``rollup.GAP`` for empty buckets. ``stats`` (rollups
        only) limits the work to those statistics (e.g. mean and count for a mean query):
        the other columns come back empty, which halves the copying. ``cached``: decode
        rollup chunks through the read cache (queries only; maintenance reads each window
        once and would just evict what queries reuse).
        """
        step = tier.step if step is None else step
        stride = 1 if tier.code == 0 else rollup.STATS_PER_FIELD
        gap = [NAN] if stride == 1 else list(rollup.GAP)
        ncols = nfields * stride
        wanted = [j for j in range(ncols) if stats is None or j % stride in stats]
        cols = [array("d") for _ in range(ncols)]
        for j in wanted:
            cols[j] = array("d", [gap[j % stride]]) * n
        t_end = t0 + n * step
        for start, width, data in _all(
            conn,
            "SELECT start, width, data FROM chunk WHERE tier = ? AND series_id = ? "
            "AND start > ? AND start < ? ORDER BY start",
            (tier.code, sid, t0 - tier.span - step, t_end),
        ):
            nslots, cn, flat = self._decoded(tier, data) if cached else decode_flat(data)
            present = [j for j in wanted if j < cn]
            base = _floor_to(float(start), float(width))
            offset = (base - t0) / step
            if abs(float(width) - step) < _EPS and abs(offset - round(offset)) < 1e-6:
                off = round(offset)
                lo = max(0, -off)
                hi = min(nslots, n - off)
                if lo < hi:
                    for j in present:
                        o = j * nslots
                        cols[j][off + lo : off + hi] = flat[o + lo : o + hi]
            else:  # written with another slot width (the interval changed): map per slot
                for i in range(nslots):
                    k = math.floor((base + i * float(width) - t0) / step + 0.5)
                    if 0 <= k < n:
                        for j in present:
                            v = flat[j * nslots + i]
                            if v == v and (
                                stride == 1 or flat[(j - j % stride + 3) * nslots + i] > 0
                            ):
                                cols[j][k] = v
        half = step / 2
        for ts, data in _all(
            conn,
            "SELECT ts, data FROM hot WHERE tier = ? AND series_id = ? AND ts >= ? AND ts < ?",
            (tier.code, sid, t0 - half, t_end - half),
        ):
            k = math.floor((float(ts) - t0) / step + 0.5)
            if 0 <= k < n:
                row = unpack_row(data)
                for j in wanted if len(row) >= ncols else [j for j in wanted if j < len(row)]:
                    cols[j][k] = row[j]
        return cols

    def _decoded(self, tier: _Tier, blob: bytes) -> tuple[int, int, array[float]]:
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

    def _series_id(self, conn: sqlite3.Connection, metric: str, labels: Labels) -> int:
        row = _one(
            conn,
            "SELECT id FROM series WHERE metric = ? AND labels = ?",
            (metric, _labels_key(labels)),
        )
        if row is None:
            if _one(conn, "SELECT 1 FROM series WHERE metric = ? LIMIT 1", (metric,)) is None:
                raise QueryError("metric", f"no data stored for metric {metric!r}")
            shown = ",".join(f"{k}={v}" for k, v in labels) or "totals"
            raise QueryError("labels", f"no series {shown!r} stored for metric {metric!r}")
        return int(row[0])

    def _field_names(self, conn: sqlite3.Connection, sid: int) -> list[str]:
        rows = _all(conn, "SELECT name FROM field WHERE series_id = ? ORDER BY idx", (sid,))
        return [str(r[0]) for r in rows]

    # ------------------------------------------------------------------ query
    def _plan(self, q: RangeQuery, now: float) -> tuple[_Tier, int]:
        """Pick the tier and the bucket-merge factor for ``q`` (see the README)."""

        def covers(t: _Tier) -> bool:
            return now - t.keep <= q.start + _EPS

        def points(step: float) -> int:
            return math.floor(q.end / step + _EPS) - math.floor(q.start / step + _EPS) + 1

        if q.resolution == "auto":
            candidates = [t for t in self._tiers if covers(t)]
            if not candidates:
                candidates = [max(self._tiers, key=lambda t: t.keep)]
            tier = candidates[-1]
            for t in candidates:
                if points(t.step) <= q.max_points:
                    tier = t
                    break
        else:
            wanted = self._by_name.get(q.resolution)
            if wanted is None:
                configured = ", ".join(t.name for t in self._tiers)
                raise QueryError(
                    "resolution", f"resolution {q.resolution!r} is not kept (tiers: {configured})"
                )
            tier = wanted
            if not covers(tier):
                # Older than this tier's retention: serve it from the coarser tier that
                # still has it (or the coarsest one).
                coarser = self._tiers[self._tiers.index(tier) + 1 :]
                tier = next((t for t in coarser if covers(t)), coarser[-1] if coarser else tier)
        factor = max(1, math.ceil(points(tier.step) / q.max_points))
        while points(tier.step * factor) > q.max_points:
            factor += 1
        return tier, factor

    def query(self, q: RangeQuery) -> SeriesResult:
        if q.agg not in ("mean", "min", "max"):
            raise QueryError("agg", f"agg must be mean, min or max, not {q.agg!r}")
        if not 1 <= q.max_points <= MAX_POINTS_LIMIT:
            raise QueryError("max_points", f"max_points must be 1..{MAX_POINTS_LIMIT}")
        if not (math.isfinite(q.start) and math.isfinite(q.end)):
            raise QueryError("start", "start and end must be finite epoch seconds")
        if q.end < q.start:
            raise QueryError("end", "end must not be before start")
        if q.start < 0:
            # Like the API's parser. Also keeps _plan finite: a range across epoch 0 never
            # fits one bucket (every grid has a boundary at 0), so max_points=1 would spin.
            raise QueryError("start", "start must not be before 1970-01-01 (epoch 0)")
        labels = tuple(sorted(q.labels))
        now = self._clock.time()
        tier, factor = self._plan(q, now)
        step = tier.step * factor
        t0 = _floor_to(q.start, step)
        n = math.floor(q.end / step + _EPS) - math.floor(q.start / step + _EPS) + 1
        try:
            with self._reading() as conn:
                conn.execute("BEGIN")
                try:
                    sid = self._series_id(conn, q.metric, labels)
                    names = self._field_names(conn, sid)
                    if factor == 1:  # n <= max_points slots: fill them all
                        cols = self._fill(conn, tier, sid, t0, n, len(names), cached=True)
                        self._mask_expired(tier, cols, t0, now)
                        fields = {
                            name: self._values(tier, cols, i, q.agg) for i, name in enumerate(names)
                        }
                    else:
                        fields = self._merged(conn, tier, sid, names, t0, n, factor, q.agg, now)
                finally:
                    conn.execute("COMMIT")
        except (QueryError, StorageError):
            raise
        except sqlite3.Error as exc:
            raise _storage_error(exc, "query failed") from exc
        return SeriesResult(
            metric=q.metric,
            labels=labels,
            resolution=tier.name,
            agg=q.agg,
            step_seconds=step,
            timestamps=[t0 + k * step for k in range(n)],
            fields=fields,
        )

    def _mask_expired(self, tier: _Tier, cols: list[array[float]], t0: float, now: float) -> None:
        """Blank slots older than the tier's retention (chunks are deleted whole, later)."""
        cut = self._expired_slots(tier, t0, now)
        if cut <= 0 or not cols:
            return
        cut = min(cut, len(cols[0]))
        stride = 1 if tier.code == 0 else rollup.STATS_PER_FIELD
        gap = [NAN] if stride == 1 else list(rollup.GAP)
        for j, col in enumerate(cols):
            if col:  # empty: a statistic the caller did not ask _fill for
                col[0:cut] = array("d", [gap[j % stride]]) * cut

    @staticmethod
    def _expired_slots(tier: _Tier, t0: float, now: float) -> int:
        """How many slots from ``t0`` on are older than the tier keeps."""
        return math.ceil((now - tier.keep - t0) / tier.step - _EPS)

    @staticmethod
    def _values(tier: _Tier, cols: list[array[float]], i: int, agg: str) -> list[float | None]:
        """Field ``i`` of an unmerged grid (one slot per point)."""
        if tier.code == 0:
            return [None if v != v else v for v in cols[i]]
        base = i * rollup.STATS_PER_FIELD
        src = cols[base + {"mean": rollup.MEAN, "min": rollup.MIN, "max": rollup.MAX}[agg]]
        counts = cols[base + rollup.COUNT]
        return [v if c > 0 else None for v, c in zip(src, counts, strict=True)]

    def _segments(
        self,
        conn: sqlite3.Connection,
        tier: _Tier,
        sid: int,
        t0: float,
        nslots: int,
        first: int,
        factor: int,
    ) -> list[tuple[int, int]]:
        """Slot ranges ``[lo, hi)`` (from ``t0``, at the tier's step) that hold stored data.

        Found from the chunk starts and hot timestamps alone (no blobs read), so their
        number and length are bounded by what is stored, not by the span asked for.
        Ranges start at ``first`` or later (slots before it are expired anyway).
        """
        step = tier.step
        t_end = t0 + nslots * step
        spans: list[tuple[int, int]] = []
        for start, width in _all(
            conn,
            "SELECT start, width FROM chunk WHERE tier = ? AND series_id = ? "
            "AND start > ? AND start < ?",
            (tier.code, sid, t0 - tier.span - step, t_end),
        ):
            base = _floor_to(float(start), float(width))
            lo = math.floor((base - t0) / step) - 1
            hi = math.ceil((float(start) + tier.span - t0) / step) + 1
            spans.append((lo, hi))
        half = step / 2
        for (ts,) in _all(
            conn,
            "SELECT ts FROM hot WHERE tier = ? AND series_id = ? AND ts >= ? AND ts < ?",
            (tier.code, sid, t0 - half, t_end - half),
        ):
            k = math.floor((float(ts) - t0) / step + 0.5)
            spans.append((k, k + 1))
        aligned = factor <= ALIGN_FACTOR_LIMIT
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(spans):
            lo, hi = max(lo, first, 0), min(hi, nslots)
            if aligned:  # whole output buckets (nslots is a multiple of factor)
                lo, hi = lo - lo % factor, min(nslots, -(-hi // factor) * factor)
            if lo >= hi:
                continue
            if merged and lo <= merged[-1][1] + SEGMENT_GAP_SLOTS:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return merged

    def _merged(
        self,
        conn: sqlite3.Connection,
        tier: _Tier,
        sid: int,
        names: list[str],
        t0: float,
        n: int,
        factor: int,
        agg: str,
        now: float,
    ) -> dict[str, list[float | None]]:
        """``n`` buckets of ``factor`` slots each, aggregated straight from stored data.

        Only the slot ranges that hold data are filled (``_segments``), so memory and
        time follow ``n`` and the stored rows, never ``n x factor`` (a query from 1970
        to now at 1h merged 490x would otherwise fill half a million slots per column).
        Per bucket and field it keeps ``agg``'s partial (sum for mean, else min/max)
        and the sample count; a bucket split over two segments is combined.
        """
        nfields = len(names)
        acc = [
            array("d", [0.0 if agg == "mean" else (math.inf if agg == "min" else -math.inf)]) * n
            for _ in range(nfields)
        ]
        cnt = [array("d", [0.0]) * n for _ in range(nfields)]
        first = max(0, self._expired_slots(tier, t0, now))
        # Aligned rollup buckets need only the asked statistic and the counts; the
        # unaligned path (huge factors) merges whole stats with rollup.merge.
        aligned = tier.code != 0 and factor <= ALIGN_FACTOR_LIMIT
        stats = (_AGG_STAT[agg], rollup.COUNT) if aligned else None
        for lo, hi in self._segments(conn, tier, sid, t0, n * factor, first, factor):
            seg_t0 = t0 + lo * tier.step
            cols = self._fill(conn, tier, sid, seg_t0, hi - lo, nfields, stats=stats, cached=True)
            self._mask_expired(tier, cols, seg_t0, now)
            shared: _CountMemo = {}
            for i in range(nfields):
                b0, part, pcnt = self._bucket_partials(tier, cols, i, lo, hi, factor, agg, shared)
                _combine(acc[i], cnt[i], b0, part, pcnt, agg)
        fields: dict[str, list[float | None]] = {}
        for i, name in enumerate(names):
            if agg == "mean":
                fields[name] = [
                    s / c if c > 0 else None for s, c in zip(acc[i], cnt[i], strict=True)
                ]
            else:
                fields[name] = [v if c > 0 else None for v, c in zip(acc[i], cnt[i], strict=True)]
        return fields

    @staticmethod
    def _bucket_partials(
        tier: _Tier,
        cols: list[array[float]],
        i: int,
        lo: int,
        hi: int,
        factor: int,
        agg: str,
        shared: _CountMemo | None = None,
    ) -> tuple[int, list[float], list[float]]:
        """Field ``i`` of slots ``[lo, hi)`` per output bucket: ``(first bucket, partials,
        counts)``; a partial is the sum (agg mean), min or max of the bucket's values.

        ``shared`` (one dict per segment) remembers the last field's count column and
        bucket counts: the fields of a group are nearly always present in the same
        ticks, so their count columns are equal (compared at C speed through
        memoryviews) and the bucket counts are summed once, not once per field."""
        b0 = lo // factor
        nb = (hi - 1) // factor - b0 + 1
        if tier.code == 0:
            col = cols[i]
            parts: list[float] = []
            counts: list[float] = []
            for b in range(b0, b0 + nb):
                s_lo, s_hi = max(b * factor, lo) - lo, min((b + 1) * factor, hi) - lo
                present = [v for v in col[s_lo:s_hi] if v == v]
                counts.append(float(len(present)))
                if not present:
                    parts.append(0.0 if agg == "mean" else math.nan)
                elif agg == "mean":
                    parts.append(math.fsum(present))
                else:
                    parts.append(min(present) if agg == "min" else max(present))
            return b0, parts, counts
        base = i * rollup.STATS_PER_FIELD
        means, mins, maxs, cnts = cols[base : base + rollup.STATS_PER_FIELD]
        if lo % factor or (hi - lo) % factor:  # unaligned (huge factor): per bucket
            parts, counts = [], []
            for b in range(b0, b0 + nb):
                s_lo, s_hi = max(b * factor, lo) - lo, min((b + 1) * factor, hi) - lo
                st = rollup.merge(
                    means[s_lo:s_hi], mins[s_lo:s_hi], maxs[s_lo:s_hi], cnts[s_lo:s_hi]
                )
                counts.append(st[rollup.COUNT])
                if agg == "mean":
                    parts.append(st[rollup.MEAN] * st[rollup.COUNT])
                else:
                    parts.append(st[rollup.MIN] if agg == "min" else st[rollup.MAX])
            return b0, parts, counts
        # Whole buckets, kept at C speed: prefix sums (itertools.accumulate) sampled every
        # ``factor`` slots give each bucket's count and weighted sum by one subtraction;
        # min/max run ``map(min, *strided slices)``. The rounding error of the prefix sums
        # (~1e-13 relative) is far below display.
        # islice keeps every ``factor``-th prefix sum without listing the others.
        total = hi - lo
        memo = shared.get("counts") if shared is not None else None
        if memo is not None and memoryview(memo[0]) == memoryview(cnts):
            counts = memo[1]
        else:
            cum_n = [0.0, *islice(accumulate(cnts), factor - 1, None, factor)]
            counts = list(map(operator.sub, cum_n[1:], cum_n[:-1]))
            if shared is not None:
                shared["counts"] = (cnts, counts)
        if agg == "mean":
            cum_s = [
                0.0,
                *islice(accumulate(map(operator.mul, means, cnts)), factor - 1, None, factor),
            ]
            return b0, list(map(operator.sub, cum_s[1:], cum_s[:-1])), counts
        src, fold = (mins, min) if agg == "min" else (maxs, max)
        return b0, list(map(fold, *(src[o:total:factor] for o in range(factor)))), counts

    def series(self, metric: str) -> Sequence[Labels]:
        try:
            with self._reading() as conn:
                rows = _all(
                    conn, "SELECT labels FROM series WHERE metric = ? ORDER BY labels", (metric,)
                )
        except sqlite3.Error as exc:
            raise _storage_error(exc, "series lookup failed") from exc
        found = [_labels_from_key(str(r[0])) for r in rows]
        return sorted(found, key=lambda labels: (len(labels), labels))

    # ------------------------------------------------------------------ processes
    def query_processes(self, at: float) -> tuple[float, Sequence[Mapping[str, object]]] | None:
        """The stored table at or before ``at``, at most ``2 x max(interval, every)`` old."""
        tolerance = 2 * max(self._interval, self._proc_every)
        best: tuple[float, Sequence[Mapping[str, object]]] | None = None
        try:
            with self._reading() as conn:
                conn.execute("BEGIN")
                try:
                    row = _one(
                        conn,
                        "SELECT ts, data FROM proc_hot WHERE ts <= ? AND ts >= ? "
                        "ORDER BY ts DESC LIMIT 1",
                        (at, at - tolerance),
                    )
                    # At most two windows overlap the tolerance; fetched whole.
                    chunks = _all(
                        conn,
                        "SELECT start, data FROM proc_chunk WHERE start <= ? AND start > ? "
                        "ORDER BY start DESC",
                        (at, at - tolerance - self._proc_span),
                    )
                finally:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise _storage_error(exc, "process history query failed") from exc
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

    # ------------------------------------------------------------------ maintenance
    def maintain(self, now: float) -> None:
        """Rollups, compaction and retention, each bounded per call (see README)."""
        with self._write_lock:
            conn = self._writer_conn()
            worked = False
            try:
                for i in range(1, len(self._tiers)):
                    if self._rollup_tier(conn, self._tiers[i - 1], self._tiers[i], now):
                        worked = True
                units = COMPACT_UNITS_PER_CALL
                for tier in self._tiers:
                    units -= self._compact_tier(conn, tier, now, units)
                    if units <= 0:
                        break
                worked = worked or units < COMPACT_UNITS_PER_CALL
                if units > 0 and self._compact_processes(conn, now):
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
            except (sqlite3.Error, OSError) as exc:
                _rollback(conn)
                raise _storage_error(exc, "maintenance failed") from exc
            self.maintenance_backlog = worked

    def import_buckets(
        self,
        resolution: str,
        rows: Iterable[tuple[str, Labels, float, Mapping[str, rollup.Stat]]],
    ) -> None:
        """Store ready-made rollup buckets ``(metric, labels, bucket_start, {field: stat})``.

        For back-filling history from another system, and for the benchmark, which
        cannot simulate a year of 1 s ticks. The rows go through the same path as the
        rollup's own (hot rows, then compaction); the tier's watermark moves past the
        last imported bucket so the rollup does not recompute them. Import oldest first.
        """
        tier = self._by_name.get(resolution)
        if tier is None or tier.code == 0:
            raise ValueError(f"cannot import into tier {resolution!r}")
        with self._write_lock:
            conn = self._writer_conn()
            last = -math.inf
            conn.execute("BEGIN IMMEDIATE")
            try:
                packed: list[tuple[int, int, float, bytes]] = []
                for metric, labels, ts, stats in rows:
                    sid, layout = self._register(conn, metric, tuple(sorted(labels)), stats)
                    flat = list(rollup.GAP) * len(layout)
                    for name, st in stats.items():
                        k = layout[name] * rollup.STATS_PER_FIELD
                        flat[k : k + rollup.STATS_PER_FIELD] = st
                    start = _floor_to(ts, tier.step)
                    packed.append((tier.code, sid, start, pack_row(flat)))
                    last = max(last, start + tier.step)
                conn.executemany(
                    "INSERT OR REPLACE INTO hot (tier, series_id, ts, data) VALUES (?,?,?,?)",
                    packed,
                )
                if packed and last > self._done.get(tier.code, -math.inf):
                    self._set_done(conn, tier, last)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                self._load_state(conn)
                raise
            self._counts = self._count_rows(conn)  # a bulk back-fill: recount once

    def _register(
        self, conn: sqlite3.Connection, metric: str, labels: Labels, fields: Iterable[str]
    ) -> tuple[int, dict[str, int]]:
        """Series id and field layout, creating them (import path; caches updated now)."""
        key = (metric, labels)
        sid = self._series_ids.get(key)
        if sid is None:
            cur = conn.execute(
                "INSERT INTO series (metric, labels) VALUES (?, ?)", (metric, _labels_key(labels))
            )
            sid = int(cur.lastrowid or 0)
            self._series_ids[key] = sid
        layout = self._layouts.setdefault(sid, {})
        for name in fields:
            if name not in layout:
                layout[name] = len(layout)
                conn.execute(
                    "INSERT INTO field (series_id, idx, name) VALUES (?, ?, ?)",
                    (sid, layout[name], name),
                )
        return sid, layout

    def _source_horizon(self, source: _Tier, now: float) -> float | None:
        if source.code == 0:
            return now - 1.0
        return self._done.get(source.code)

    def _next_data_ts(self, conn: sqlite3.Connection, tier: _Tier, after: float) -> float | None:
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
        self, conn: sqlite3.Connection, source: _Tier, target: _Tier, now: float
    ) -> bool:
        horizon = self._source_horizon(source, now)
        if horizon is None:
            return False
        closed_end = _floor_to(horizon, target.step)
        done = self._done.get(target.code)
        if done is not None and done >= closed_end:
            return False  # the cheap path: nothing closed since the last call
        nxt = self._next_data_ts(conn, source, -math.inf if done is None else done)
        if nxt is None:
            return False
        if nxt >= closed_end:
            # Nothing stored up to the horizon (downtime): skip the empty buckets at once.
            if done is not None:
                self._set_done(conn, target, closed_end)
            return done is not None
        begin = (
            _floor_to(nxt, target.step) if done is None else max(done, _floor_to(nxt, target.step))
        )
        end = min(closed_end, begin + ROLLUP_BUCKETS_PER_CALL[target.name] * target.step)
        nbuckets = round((end - begin) / target.step)
        ratio = target.step / source.step
        nslots = math.ceil(nbuckets * ratio - _EPS)
        bounds = rollup.bucket_bounds(nbuckets, ratio)
        rows: list[tuple[int, int, float, bytes]] = []
        for sid, layout in self._layouts.items():
            nfields = len(layout)
            if nfields == 0:
                continue
            cols = self._fill(conn, source, sid, begin, nslots, nfields)
            for j, (lo, hi) in enumerate(bounds):
                stats: list[float] = []
                present = False
                for f in range(nfields):
                    if source.code == 0:
                        st = rollup.summarize(cols[f][lo:hi])
                    else:
                        b = f * rollup.STATS_PER_FIELD
                        st = rollup.merge(
                            cols[b][lo:hi],
                            cols[b + 1][lo:hi],
                            cols[b + 2][lo:hi],
                            cols[b + 3][lo:hi],
                        )
                    present = present or st[rollup.COUNT] > 0
                    stats.extend(st)
                if present:
                    rows.append((target.code, sid, begin + j * target.step, pack_row(stats)))
        conn.execute("BEGIN IMMEDIATE")
        try:
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
            lowered = self._lower_watermarks(conn, target.code, begin) if rows else {}
            conn.execute(
                "INSERT OR REPLACE INTO rollup_state (tier, done_until) VALUES (?, ?)",
                (target.code, end),
            )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._done[target.code] = end
        self._done.update(lowered)
        added = sum(1 for r in rows if (r[1], r[2]) not in there)
        self._add_counts({f"{target.name}.hot": added})
        return True

    def _set_done(self, conn: sqlite3.Connection, tier: _Tier, value: float) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO rollup_state (tier, done_until) VALUES (?, ?)",
            (tier.code, value),
        )
        self._done[tier.code] = value

    def _compact_tier(self, conn: sqlite3.Connection, tier: _Tier, now: float, units: int) -> int:
        """Fold closed windows of hot rows into chunks; returns the units of work done."""
        if now < self._next_compact.get(tier.code, -math.inf):
            return 0
        # Raw windows are final once the late-write grace has passed; a rollup window
        # once every bucket in it has been computed. Rows that arrive later anyway (a
        # replayed tick, a recomputed bucket) are merged into the chunk on the next pass.
        horizon = now - self._late_grace if tier.code == 0 else self._done.get(tier.code)
        if horizon is None:
            return 0
        limit = _floor_to(horizon, tier.span)
        did = 0
        while did < units:
            row = conn.execute(
                "SELECT series_id, ts FROM hot WHERE tier = ? AND ts < ? ORDER BY ts LIMIT 1",
                (tier.code, limit),
            ).fetchone()
            if row is None:
                self._next_compact[tier.code] = now + COMPACT_CHECK_EVERY_SECONDS
                break
            self._compact_window(conn, tier, int(row[0]), _floor_to(float(row[1]), tier.span))
            did += 1
        return did

    def _compact_window(
        self, conn: sqlite3.Connection, tier: _Tier, sid: int, start: float
    ) -> None:
        width = tier.step
        base = _floor_to(start, width)
        nslots = math.ceil((start + tier.span - base) / width - _EPS)
        nfields = len(self._layouts.get(sid, {}))
        conn.execute("BEGIN IMMEDIATE")
        try:
            cols = self._fill(conn, tier, sid, base, nslots, nfields)
            blob = encode_chunk(cols, nslots)
            there = _one(
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
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._add_counts({f"{tier.name}.chunks": 0 if there else 1, f"{tier.name}.hot": -gone})

    def _compact_processes(self, conn: sqlite3.Connection, now: float) -> bool:
        if now < self._next_proc_compact:
            return False
        limit = _floor_to(now - self._late_grace, self._proc_span)
        row = conn.execute("SELECT min(ts) FROM proc_hot WHERE ts < ?", (limit,)).fetchone()
        if row[0] is None:
            self._next_proc_compact = now + COMPACT_CHECK_EVERY_SECONDS
            return False
        start = _floor_to(float(row[0]), self._proc_span)
        end = start + self._proc_span
        conn.execute("BEGIN IMMEDIATE")
        try:
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
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        self._add_counts({"processes.chunks": 0 if old else 1, "processes.hot": -gone})
        return True

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
        raw_cut = now - self._tiers[0].keep
        steps.append(
            (
                "DELETE FROM proc_hot WHERE rowid IN ("
                "SELECT rowid FROM proc_hot WHERE ts < ? LIMIT ?)",
                (raw_cut,),
                DELETE_BATCH_ROWS,
                "processes.hot",
            )
        )
        steps.append(
            (
                "DELETE FROM proc_chunk WHERE rowid IN ("
                "SELECT rowid FROM proc_chunk WHERE start < ? LIMIT ?)",
                (raw_cut - self._proc_span,),
                DELETE_BATCH_CHUNKS,
                "processes.chunks",
            )
        )
        for sql, params, batch, key in steps:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(sql, (*params, batch))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            self._add_counts({key: -cur.rowcount})
            if cur.rowcount >= batch:
                more = True
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        total = int(conn.execute("PRAGMA page_count").fetchone()[0])
        if free > max(VACUUM_PAGES_PER_CALL, total // 8):
            # executescript steps the pragma to completion; execute() frees only one page.
            conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES_PER_CALL});")
            more = True
        return more

    # ------------------------------------------------------------------ health
    def ping(self) -> bool:
        try:
            if not os.path.exists(self._path):
                return False
            with self._reading() as conn:
                _one(conn, "SELECT count(*) FROM sqlite_master")
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
        rows = {} if self._writer is None else dict(self._counts)
        return StoreStats(
            backend=self.backend,
            path=self._path,
            size_bytes=size or None,
            rows=rows,
            pending_writes=0,
            last_write_error=self._last_write_error,
        )
