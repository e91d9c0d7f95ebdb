"""Forwarding: every tick also goes to remote backends, through a durable on-disk queue.

The local store (``database:``) stays the source of truth and its writer is untouched;
each ``forward:`` entry gets a ``Forwarder`` with its own thread, queue file and remote
store, so a slow or dead remote never delays a tick, the local write or another remote.

Per tick, ``submit`` (the tick thread) only appends the snapshot to an in-memory
hand-off and wakes the forwarder. The forwarder thread then, in this order:

1. appends what was handed off to its queue (one transaction), *before* any send, so a
   tick is on disk whether or not the remote is up;
2. enforces the bounds: queued ticks older than ``buffer`` (by their own timestamp
   against the wall clock) and then the oldest beyond ``max_buffer_bytes`` are deleted,
   counted in ``dropped_ticks`` (kept in the queue file, so a restart does not forget
   them) and logged;
3. unless it is backing off, sends the queue oldest-first in batches of ``batch_ticks``
   (``write_many`` when the store has it: VictoriaMetrics takes a batch in one request,
   all or nothing; else one ``write`` per tick) and deletes a batch only after the
   remote acknowledged it. A failure keeps the batch, records the error and waits
   before the next attempt: the collection interval, doubling per failure up to
   ``backoff_max``. Ticks keep being queued meanwhile.

Delivery is at least once: a request that timed out after the server took it is sent
again, which stores the same values at the same timestamps (no change to any mean,
min, max or last).

Why a SQLite table and not append-only segment files: an append and an acknowledgement
are each one transaction, so a crash (or ``kill -9``) mid-way leaves either the old or
the new state, never a torn record to detect and skip; deleting an acknowledged prefix
or the records beyond a bound is one ``DELETE``; and counts, bytes and the oldest
timestamp come from an index instead of a scan. Segment files would append a little
cheaper but need their own framing, checksums, recovery and compaction. WAL mode with
``synchronous=NORMAL`` survives a crash of the agent (what "survives restarts" needs);
only a power loss may cost the last transactions. The file keeps its high-water size
(freed pages are reused), so its size stays near ``max_buffer_bytes`` at most.

Queue entries are version-prefixed, zlib-compressed compact JSON of the snapshot's
samples and errors (JSON keeps ``NaN``/``inf`` and ints vs floats). Process rows are
queued only for a remote whose ``capabilities().process_tables`` says it keeps them:
they are about 50 times the size of a tick's samples, and VictoriaMetrics does not.

Health (``Forwarder.status``): per remote ``queued_ticks``, ``queued_bytes``,
``oldest_queued_age_seconds``, ``dropped_ticks``, ``last_error``, ``last_sent_at`` and
what ``sysmon.api.routes.health`` needs to say *degraded*: ``failing_ticks`` (ticks
since the current failure streak began) against ``degraded_after_ticks``, and
``dropped_recently`` (a drop in the last hour, this run or the one before a restart;
``dropped_last_hour`` counts this run's).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysmon.agent.collection import Streak
from sysmon.clock import Clock
from sysmon.models import Collected, Sample, Snapshot
from sysmon.storage.base import TimeSeriesStore
from sysmon.timeparse import format_duration

if TYPE_CHECKING:
    from sysmon.agent.forward_config import ForwardConfig
    from sysmon.config import Settings

logger = logging.getLogger(__name__)

FORMAT_VERSION = b"\x01"
"""First byte of every queue entry: the encoding below (zlib of compact JSON)."""
DROP_WINDOW_SECONDS = 3600.0
"""Health stays degraded this long after a tick was dropped."""
DROP_LOG_SECONDS = 60.0
"""Drops are logged at most this often (with the count since the last line)."""
MAX_HANDOFF = 3600
"""Ticks held in memory when the queue file cannot take them (disk full, locked)."""


# --------------------------------------------------------------------- encoding


def encode_snapshot(snapshot: Snapshot, *, rows: bool = False) -> bytes:
    """A queue entry: ``FORMAT_VERSION`` + zlib(JSON). Each sample is its own tuple,
    ``[metric, field, value, [[key, value], ...]]`` (``Sample`` is a ``NamedTuple``, so
    the C encoder writes it without a Python loop); ``rows`` adds process rows."""
    doc: dict[str, Any] = {
        "t": snapshot.timestamp,
        "r": {name: collected.samples for name, collected in snapshot.results.items()},
    }
    if snapshot.errors:
        doc["e"] = dict(snapshot.errors)
    if rows:
        tables = {
            name: [dict(row) for row in collected.rows]
            for name, collected in snapshot.results.items()
            if collected.rows
        }
        if tables:
            doc["p"] = tables
    # ``default`` only with rows (a value psutil hands back as another type): it doubles
    # the cost of the samples-only document.
    text = json.dumps(doc, separators=(",", ":"), default=str if rows else None)
    return FORMAT_VERSION + zlib.compress(text.encode(), 1)


def decode_snapshot(data: bytes) -> Snapshot:
    """The snapshot ``encode_snapshot`` wrote; ``ValueError`` for anything else."""
    if data[:1] != FORMAT_VERSION:
        raise ValueError(f"unknown queue entry format {data[:1]!r}")
    try:
        doc = json.loads(zlib.decompress(data[1:]))
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ValueError(f"damaged queue entry: {exc}") from exc
    tables = doc.get("p") or {}
    results: dict[str, Collected] = {}
    for name, items in doc["r"].items():
        samples = tuple(
            Sample(metric, field, value, tuple(map(tuple, labels)) if labels else ())
            for metric, field, value, labels in items
        )
        results[name] = Collected(samples=samples, rows=tuple(tables.get(name, ())))
    return Snapshot(float(doc["t"]), results, dict(doc.get("e") or {}))


def _without_rows(snapshot: Snapshot) -> Snapshot:
    """What ``decode_snapshot(encode_snapshot(snapshot))`` gives: no process rows."""
    if not any(c.rows for c in snapshot.results.values()):
        return snapshot
    results = {n: Collected(samples=c.samples) for n, c in snapshot.results.items()}
    return Snapshot(snapshot.timestamp, results, snapshot.errors)


# --------------------------------------------------------------------- the queue file


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    timestamp: float
    payload: bytes


_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        size INTEGER NOT NULL,
        payload BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS queue_ts ON queue (ts)",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value REAL NOT NULL)",
)


class ForwardQueue:
    """The durable FIFO of one remote: a SQLite file (see the module docstring for why).

    Counts, bytes and the oldest timestamp are kept in memory (read every tick by
    ``status`` without touching the file) and re-read from the file on ``open``. Every
    method takes the queue's lock, so the agent's ``stop`` may flush from its own thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self.count = 0
        self.bytes = 0
        self.oldest: float | None = None
        self.dropped = 0
        self.last_dropped_at: float | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it (its -wal/-shm files take the same mode):
        # the queue holds the same data as the database.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            db.execute(statement)
        with self._lock:
            self._db = db
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM queue"
            ).fetchone()
            self.count, self.bytes = int(count), int(size)
            self._read_oldest()
            state = dict(db.execute("SELECT key, value FROM state").fetchall())
            self.dropped = int(state.get("dropped_ticks", 0))
            self.last_dropped_at = state.get("last_dropped_at")
        for suffix in ("", "-wal", "-shm"):
            try:
                os.chmod(f"{self.path}{suffix}", 0o600)
            except FileNotFoundError:
                continue

    @property
    def is_open(self) -> bool:
        return self._db is not None

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError(f"forward queue {self.path} is not open")
        return self._db

    def _read_oldest(self) -> None:
        row = self._conn().execute("SELECT ts FROM queue ORDER BY seq LIMIT 1").fetchone()
        self.oldest = None if row is None else float(row[0])

    def append(self, items: Sequence[tuple[float, bytes]]) -> list[int]:
        """Add ``(timestamp, payload)`` entries at the tail, all in one transaction;
        returns their sequence numbers."""
        if not items:
            return []
        seqs: list[int] = []
        with self._lock:
            db = self._conn()
            with _transaction(db):
                for ts, payload in items:
                    cursor = db.execute(
                        "INSERT INTO queue (ts, size, payload) VALUES (?, ?, ?)",
                        (ts, len(payload), payload),
                    )
                    seqs.append(int(cursor.lastrowid or 0))
            self.count += len(items)
            self.bytes += sum(len(payload) for _ts, payload in items)
            if self.oldest is None:
                self._read_oldest()
        return seqs

    def peek(self, limit: int) -> list[Entry]:
        """The ``limit`` oldest entries, oldest first."""
        with self._lock:
            rows = (
                self._conn()
                .execute("SELECT seq, ts, payload FROM queue ORDER BY seq LIMIT ?", (limit,))
                .fetchall()
            )
        return [Entry(int(seq), float(ts), bytes(payload)) for seq, ts, payload in rows]

    def acknowledge(self, through: int) -> None:
        """Delete every entry up to and including ``through`` (the remote has them)."""
        with self._lock:
            db = self._conn()
            with _transaction(db):
                count, size = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM queue WHERE seq <= ?",
                    (through,),
                ).fetchone()
                db.execute("DELETE FROM queue WHERE seq <= ?", (through,))
            self.count -= int(count)
            self.bytes -= int(size)
            self._read_oldest()

    def drop(self, *, older_than: float, max_bytes: int, now: float) -> int:
        """Delete entries stamped before ``older_than``, then the oldest until at most
        ``max_bytes`` remain; count them as dropped (persisted). Returns how many."""
        with self._lock:
            if (self.oldest is None or self.oldest >= older_than) and self.bytes <= max_bytes:
                return 0
            db = self._conn()
            with _transaction(db):
                old_count, old_size = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM queue WHERE ts < ?",
                    (older_than,),
                ).fetchone()
                db.execute("DELETE FROM queue WHERE ts < ?", (older_than,))
                count, size = int(old_count), int(old_size)
                excess = self.bytes - size - max_bytes
                if excess > 0:
                    through, freed, n = self._prefix_covering(db, excess)
                    db.execute("DELETE FROM queue WHERE seq <= ?", (through,))
                    count, size = count + n, size + freed
                if count:
                    db.executemany(
                        "INSERT INTO state (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        [("dropped_ticks", self.dropped + count), ("last_dropped_at", now)],
                    )
            self.count -= count
            self.bytes -= size
            if count:
                self.dropped += count
                self.last_dropped_at = now
            self._read_oldest()
            return count

    @staticmethod
    def _prefix_covering(db: sqlite3.Connection, excess: int) -> tuple[int, int, int]:
        """The shortest run of oldest entries holding at least ``excess`` bytes: (last
        seq, its bytes, its length)."""
        through, freed, n = 0, 0, 0
        cursor = db.execute("SELECT seq, size FROM queue ORDER BY seq")
        try:
            for seq, size in cursor:
                through, freed, n = int(seq), freed + int(size), n + 1
                if freed >= excess:
                    break
        finally:
            cursor.close()
        return through, freed, n

    def discard(self, seq: int, now: float) -> None:
        """Delete one unreadable entry, counted as dropped."""
        with self._lock:
            db = self._conn()
            with _transaction(db):
                row = db.execute("SELECT size FROM queue WHERE seq = ?", (seq,)).fetchone()
                db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
                db.executemany(
                    "INSERT INTO state (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [("dropped_ticks", self.dropped + 1), ("last_dropped_at", now)],
                )
            if row is not None:
                self.count -= 1
                self.bytes -= int(row[0])
            self.dropped += 1
            self.last_dropped_at = now
            self._read_oldest()


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


# --------------------------------------------------------------------- one remote


class Forwarder:
    """One remote: hand-off, queue, thread, backoff and counters (module docstring).

    ``step`` is the thread's one iteration; ``start(threaded=False)`` leaves calling it
    to the caller (the agent's unscheduled mode, tests with a fake clock).
    """

    def __init__(
        self,
        name: str,
        store: TimeSeriesStore,
        queue: ForwardQueue,
        clock: Clock,
        *,
        buffer_seconds: float = 86_400.0,
        max_buffer_bytes: int = 256 * 1024 * 1024,
        batch_ticks: int = 100,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        degraded_after_ticks: int = 10,
        backend: str = "",
        url: str | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self.queue = queue
        self._clock = clock
        self.buffer_seconds = buffer_seconds
        self.max_buffer_bytes = max_buffer_bytes
        self.batch_ticks = batch_ticks
        self._backoff_initial = backoff_initial_seconds
        self._backoff_max = max(backoff_max_seconds, backoff_initial_seconds)
        self.degraded_after_ticks = degraded_after_ticks
        self._backend = backend
        self._url = url
        self._keep_rows = False
        self._store_open = False
        self._handoff: deque[Snapshot] = deque()
        self._decoded: dict[int, Snapshot] = {}
        """Queue seq -> the snapshot this run appended there: a healthy remote's send
        then skips decoding what was just encoded (bounded to two batches)."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._streak = Streak(f"forward {name}")
        self._failures = 0
        self._next_attempt = -math.inf
        self._drops: deque[tuple[float, int]] = deque()
        """``(when, how many)`` of this run's drops within the last hour."""
        self._memory_dropped = 0
        self._unlogged_drops = 0
        self._drop_logged_at = -math.inf
        """Ticks dropped from the hand-off (queue file unwritable); the file counts the rest."""
        self.failing_ticks = 0
        self.last_error: str | None = None
        self.last_sent_at: float | None = None
        self.sent_ticks = 0

    # --- lifecycle ------------------------------------------------------------------

    def start(self, threaded: bool = True) -> None:
        """Open the queue (what an earlier run left is sent first); the remote store is
        opened by the first send, so a remote that hangs cannot delay the start."""
        self.queue.open()
        if self.queue.count:
            logger.info(
                "forward %s: %d ticks queued from an earlier run", self.name, self.queue.count
            )
        if threaded:
            self._thread = threading.Thread(
                target=self._run, name=f"forward-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, queue what is still handed off (nothing is sent: it waits on
        disk for the next start), close the queue and the store."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("forward %s: thread still busy at stop", self.name)
        try:
            if self.queue.is_open:
                self._persist()
        finally:
            self.queue.close()
            if self._store_open:
                self.store.close()

    def submit(self, snapshot: Snapshot) -> None:
        """The tick thread's part: O(1), no I/O."""
        with self._lock:
            self._handoff.append(snapshot)
            if self._failures:
                self.failing_ticks += 1
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._idle_seconds())
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.step()
            except Exception:  # the thread must outlive any one bad step
                logger.exception("forward %s: step failed", self.name)

    def _idle_seconds(self) -> float:
        if self.queue.count and self._failures:
            return max(0.01, self._next_attempt - self._clock.monotonic())
        return 1.0

    # --- one step -------------------------------------------------------------------

    def step(self) -> None:
        """Queue what was handed off, enforce the bounds, send when not backing off."""
        self._persist()
        if self._clock.monotonic() >= self._next_attempt:
            self._send()

    def _persist(self) -> None:
        with self._lock:
            taken = list(self._handoff)
            self._handoff.clear()
        if taken:
            rows = self._keep_rows
            items = [(s.timestamp, encode_snapshot(s, rows=rows)) for s in taken]
            try:
                seqs = self.queue.append(items)
            except (sqlite3.Error, OSError) as exc:
                self._queue_failed(taken, exc)
                return
            for seq, snapshot in zip(seqs, taken, strict=True):
                self._decoded[seq] = snapshot if rows else _without_rows(snapshot)
            while len(self._decoded) > 2 * self.batch_ticks:
                del self._decoded[next(iter(self._decoded))]
        now = self._clock.time()
        try:
            dropped = self.queue.drop(
                older_than=now - self.buffer_seconds, max_bytes=self.max_buffer_bytes, now=now
            )
        except (sqlite3.Error, OSError) as exc:
            logger.warning("forward %s: trimming the queue failed: %s", self.name, exc)
            return
        if dropped:
            self._count_drops(dropped, now)

    def _queue_failed(self, taken: list[Snapshot], exc: BaseException) -> None:
        """The queue file refused the ticks: keep them in memory (bounded) and retry."""
        now = self._clock.time()
        with self._lock:
            self._handoff.extendleft(reversed(taken))
            lost = max(0, len(self._handoff) - MAX_HANDOFF)
            for _ in range(lost):
                self._handoff.popleft()
            self._memory_dropped += lost
            self.last_error = f"queue {self.queue.path.name}: {type(exc).__name__}: {exc}"[:300]
        logger.warning("forward %s: cannot queue ticks: %s", self.name, exc)
        if lost:
            self._count_drops(lost, now)

    def _count_drops(self, count: int, now: float) -> None:
        """Count for health; log at most once a minute (an outage at the bound drops a
        tick every tick), with how many since the last line."""
        with self._lock:
            self._drops.append((now, count))
            while self._drops and self._drops[0][0] < now - DROP_WINDOW_SECONDS:
                self._drops.popleft()
        self._unlogged_drops += count
        mono = self._clock.monotonic()
        if mono - self._drop_logged_at < DROP_LOG_SECONDS:
            return
        logger.error(
            "forward %s: dropped %d oldest unsent ticks (bound: %s, %d bytes)",
            self.name,
            self._unlogged_drops,
            format_duration(self.buffer_seconds),
            self.max_buffer_bytes,
        )
        self._drop_logged_at = mono
        self._unlogged_drops = 0

    def _send(self) -> None:
        """Oldest-first batches until the queue is empty, a send fails or we stop."""
        while not self._stop.is_set():
            batch = self.queue.peek(self.batch_ticks)
            if not batch:
                return
            snapshots: list[Snapshot] = []
            for entry in batch:
                known = self._decoded.pop(entry.seq, None)
                if known is not None:
                    snapshots.append(known)
                    continue
                try:
                    snapshots.append(decode_snapshot(entry.payload))
                except (ValueError, KeyError, TypeError, IndexError) as exc:
                    logger.error("forward %s: dropped an unreadable entry: %s", self.name, exc)
                    self.queue.discard(entry.seq, self._clock.time())
                    self._count_drops(1, self._clock.time())
            try:
                self._open_store()
                self._write(snapshots)
            except Exception as exc:  # StorageError, OSError, whatever a backend raises
                self._failed(exc)
                return
            self.queue.acknowledge(batch[-1].seq)
            self._succeeded(len(snapshots))
            self._persist()  # ticks that arrived meanwhile join the tail first

    def _open_store(self) -> None:
        if not self._store_open:
            self.store.open()
            self._store_open = True
            self._keep_rows = self.store.capabilities().process_tables

    def _write(self, snapshots: list[Snapshot]) -> None:
        write_many: Callable[[Sequence[Snapshot]], None] | None = getattr(
            self.store, "write_many", None
        )
        if write_many is not None:
            write_many(snapshots)
            return
        for snapshot in snapshots:  # all or nothing from the queue's view: resent whole
            self.store.write(snapshot)

    def _failed(self, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}"[:300]
        with self._lock:
            self._failures += 1
            self.last_error = error
            delay = min(self._backoff_max, self._backoff_initial * 2 ** (self._failures - 1))
            self._next_attempt = self._clock.monotonic() + delay
        self._streak.fail(error)

    def _succeeded(self, count: int) -> None:
        with self._lock:
            self._failures = 0
            self.failing_ticks = 0
            self._next_attempt = -math.inf
            self.last_error = None
            self.last_sent_at = self._clock.time()
            self.sent_ticks += count
        self._streak.ok()

    # --- health ---------------------------------------------------------------------

    @property
    def backoff_seconds(self) -> float:
        """How long until the next attempt (0 when not backing off)."""
        return max(0.0, self._next_attempt - self._clock.monotonic())

    def status(self, now: float) -> dict[str, Any]:
        """Cheap (no I/O): called by the tick thread for every published frame."""
        with self._lock:
            handed = len(self._handoff)
            first_handed = self._handoff[0].timestamp if self._handoff else None
            recent = sum(n for at, n in self._drops if at >= now - DROP_WINDOW_SECONDS)
            drops = [at for at in (self.queue.last_dropped_at,) if at is not None]
            drops += [self._drops[-1][0]] if self._drops else []
            last_drop = max(drops, default=None)
            oldest = self.queue.oldest if self.queue.count else first_handed
            return {
                "backend": self._backend,
                "url": self._url,
                "queued_ticks": self.queue.count + handed,
                "queued_bytes": self.queue.bytes,
                "oldest_queued_age_seconds": None
                if oldest is None
                else round(max(0.0, now - oldest), 3),
                "dropped_ticks": self.queue.dropped + self._memory_dropped,
                "dropped_last_hour": recent,
                "last_dropped_at": last_drop,
                "dropped_recently": last_drop is not None
                and last_drop >= now - DROP_WINDOW_SECONDS,
                "last_error": self.last_error,
                "last_sent_at": self.last_sent_at,
                "sent_ticks": self.sent_ticks,
                "failing_ticks": self.failing_ticks,
                "degraded_after_ticks": self.degraded_after_ticks,
                "retry_in_seconds": round(self.backoff_seconds, 3),
            }


# --------------------------------------------------------------------- all remotes


def _victoriametrics(
    config: ForwardConfig, settings: Settings, clock: Clock, token: str | None
) -> TimeSeriesStore:
    from sysmon.storage.victoria import VictoriaStore

    headers = {"Authorization": f"Bearer {token}"} if token else None
    return VictoriaStore(
        config.url,
        clock=clock,
        host=settings.agent.host_name,  # the same name the local store and alerts use
        timeout_seconds=config.timeout_seconds,
        interval_seconds=settings.collection.interval_seconds,
        headers=headers,
    )


RemoteBuilder = Callable[["ForwardConfig", "Settings", Clock, "str | None"], TimeSeriesStore]
BACKENDS: dict[str, RemoteBuilder] = {"victoriametrics": _victoriametrics}
"""``forward[].backend`` -> builder of its (unopened) store."""


def queue_path(settings: Settings, name: str) -> Path:
    """``forward-<name>.db`` in the data directory (beside the database)."""
    return Path(settings.database.path).expanduser().parent / f"forward-{name}.db"


class Forwarding:
    """Every configured remote; what the agent holds (empty when ``forward`` is)."""

    def __init__(self, forwarders: Sequence[Forwarder] = ()) -> None:
        self.forwarders = list(forwarders)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> Forwarding:
        """One ``Forwarder`` per ``forward`` entry; ``ConfigError`` (naming
        ``forward.N.token_env``) when a named token is missing. Nothing is opened."""
        out: list[Forwarder] = []
        interval = float(settings.collection.interval_seconds)
        for index, config in enumerate(settings.forward):
            store = BACKENDS[config.backend](config, settings, clock, config.token(index))
            out.append(
                Forwarder(
                    config.name,
                    store,
                    ForwardQueue(queue_path(settings, config.name)),
                    clock,
                    buffer_seconds=config.buffer_seconds,
                    max_buffer_bytes=config.max_buffer_bytes,
                    batch_ticks=config.batch_ticks,
                    backoff_initial_seconds=interval,
                    backoff_max_seconds=config.backoff_max_seconds,
                    degraded_after_ticks=config.degraded_after_ticks,
                    backend=config.backend,
                    url=config.url,
                )
            )
        return cls(out)

    def start(self, threaded: bool = True) -> None:
        for forwarder in self.forwarders:
            forwarder.start(threaded)

    def submit(self, snapshot: Snapshot) -> None:
        for forwarder in self.forwarders:
            forwarder.submit(snapshot)

    def step(self) -> None:
        """Unscheduled mode: every remote's step, inline."""
        for forwarder in self.forwarders:
            forwarder.step()

    def stop(self) -> None:
        for forwarder in self.forwarders:
            try:
                forwarder.stop()
            except Exception:
                logger.exception("stopping forward %s failed", forwarder.name)

    def status(self, now: float) -> dict[str, dict[str, Any]]:
        return {f.name: f.status(now) for f in self.forwarders}
