"""The collection loop: one tick = run every collector, then hand the snapshot on.

``CollectionLoop.tick`` is the whole per-tick path and is what APScheduler calls:

1. every enabled collector runs in a worker thread with a timeout; a collector that
   raises, or is still running from an earlier tick (hung), is skipped for this tick and
   named in ``Snapshot.errors``; the others go on;
2. the snapshot is published to the ``Latest`` holder (``/current`` reads it from memory);
3. it goes to each consumer (store writer, alert engine, live hub) in isolation: one
   consumer raising never stops the others.

APScheduler runs ``tick`` on an interval trigger anchored to whole seconds, with
``max_instances=1`` and ``coalesce=True``: a slow tick never piles up, missed runs collapse
into one, and because the trigger computes each run from the schedule (not from when the
previous run finished) collection does not drift.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.clock import Clock
from app.collectors.base import Collector
from app.models import Collected, Snapshot
from app.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)


class Consumer(Protocol):
    def consume(self, snapshot: Snapshot) -> None: ...


@dataclass(frozen=True, slots=True)
class LatestView:
    snapshot: Snapshot
    body: bytes
    monotonic: float


class Latest:
    """The most recent snapshot and its serialised JSON, swapped atomically."""

    def __init__(self) -> None:
        self._view: LatestView | None = None

    def set(self, view: LatestView) -> None:
        self._view = view

    def get(self) -> LatestView | None:
        return self._view


class _Streak:
    """Log a failure once per streak, and once when it recovers."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failing = False
        self.count = 0

    def fail(self, error: str) -> None:
        self.count += 1
        if not self.failing:
            self.failing = True
            logger.warning("%s failing: %s", self.what, error)

    def ok(self) -> None:
        if self.failing:
            logger.info("%s recovered after %d failures", self.what, self.count)
        self.failing = False
        self.count = 0


class CollectionLoop:
    def __init__(
        self,
        collectors: Mapping[str, Collector],
        clock: Clock,
        consumers: Sequence[tuple[str, Consumer]],
        on_snapshot: Callable[[Snapshot, float], None],
        timeout_seconds: float,
    ) -> None:
        self._collectors = dict(collectors)
        self._clock = clock
        self._consumers = list(consumers)
        self._on_snapshot = on_snapshot
        self._timeout = timeout_seconds
        self._pool = ThreadPoolExecutor(
            max_workers=max(2, len(self._collectors) + 1), thread_name_prefix="collector"
        )
        self._in_flight: dict[str, Future[Collected]] = {}
        self._streaks = {name: _Streak(f"collector {name}") for name in self._collectors}
        self._consumer_streaks = {name: _Streak(f"consumer {name}") for name, _ in consumers}
        self._lock = threading.Lock()
        self.ticks = 0
        self.skipped = 0

    def tick(self) -> Snapshot:
        with self._lock:
            return self._tick()

    def tick_unless_busy(self) -> Snapshot | None:
        """What the scheduler calls: a tick that finds another still running is skipped
        (counted in ``skipped``), never queued behind it."""
        if not self._lock.acquire(blocking=False):
            self.skipped += 1
            logger.warning("collection tick skipped: the previous one is still running")
            return None
        try:
            return self._tick()
        finally:
            self._lock.release()

    def _tick(self) -> Snapshot:
        wall = self._clock.time()
        mono = self._clock.monotonic()
        errors: dict[str, str] = {}
        futures: dict[str, Future[Collected]] = {}
        for name, collector in self._collectors.items():
            pending = self._in_flight.get(name)
            if pending is not None and not pending.done():
                errors[name] = "still running from an earlier tick (hung?)"
                continue
            futures[name] = self._pool.submit(collector.collect, mono)
        deadline = time.monotonic() + self._timeout
        results: dict[str, Collected] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
                self._in_flight.pop(name, None)
                self._streaks[name].ok()
            except FutureTimeout:
                self._in_flight[name] = future
                errors[name] = f"timed out after {self._timeout:g}s"
            except Exception as exc:  # one collector's failure must not stop the tick
                self._in_flight.pop(name, None)
                errors[name] = f"{type(exc).__name__}: {exc}"[:300]
        for name, message in errors.items():
            self._streaks[name].fail(message)
        snapshot = Snapshot(timestamp=wall, results=results, errors=errors)
        self._on_snapshot(snapshot, mono)
        for cname, consumer in self._consumers:
            try:
                consumer.consume(snapshot)
                self._consumer_streaks[cname].ok()
            except Exception as exc:  # isolation: the next consumer still runs
                self._consumer_streaks[cname].fail(f"{type(exc).__name__}: {exc}")
        self.ticks += 1
        return snapshot

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for collector in self._collectors.values():
            try:
                collector.close()
            except Exception as exc:
                logger.warning("closing collector failed: %s", exc)


class BufferedWriter:
    """Writes each snapshot to the store; failed ticks are kept and retried in order.

    A tick that could not be written (disk full, database locked) stays in memory, up to
    ``max_pending`` ticks, and is written before newer ones once the store recovers.
    Only beyond ``max_pending`` is the oldest tick dropped, with an error logged.
    """

    def __init__(
        self,
        store: TimeSeriesStore,
        max_pending: int,
        clock: Clock,
        maintain_every_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._pending: deque[Snapshot] = deque()
        self._max_pending = max_pending
        self._clock = clock
        self._maintain_every = maintain_every_seconds
        self._last_maintain = -math.inf
        self._streak = _Streak("store write")
        self.last_error: str | None = None
        self.dropped = 0
        self.generation = 0
        """Counts changes to the store's contents (writes, maintenance): readers that cache
        query results compare it to know whether the store changed since."""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def consume(self, snapshot: Snapshot) -> None:
        self._pending.append(snapshot)
        while len(self._pending) > self._max_pending:
            self._pending.popleft()
            self.dropped += 1
            logger.error("write buffer full: dropped the oldest unwritten tick")
        self.flush()
        now = self._clock.monotonic()
        if not self._pending and now - self._last_maintain >= self._maintain_every:
            self._last_maintain = now
            try:
                self._store.maintain(self._clock.time())
            except Exception as exc:
                logger.warning("store maintenance failed: %s", exc)
            finally:
                self.generation += 1

    def flush(self) -> None:
        while self._pending:
            try:
                self._store.write(self._pending[0])
            except Exception as exc:  # StorageError, OSError, sqlite errors
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self._streak.fail(self.last_error)
                return
            self._pending.popleft()
            self.generation += 1
            self.last_error = None
            self._streak.ok()


def start_scheduler(tick: Callable[[], Any], interval_seconds: int, clock: Clock) -> Any:
    """Run ``tick`` every ``interval_seconds`` on an APScheduler background thread."""
    scheduler = BackgroundScheduler(timezone=UTC)
    now = clock.time()
    first = math.floor(now / interval_seconds + 1) * interval_seconds
    # Runs land on whole multiples of the interval (an IntervalTrigger computes each run
    # from the previous *scheduled* time, so it never drifts). One extra run right away
    # fills /current without waiting up to a whole interval; ``tick`` must skip when a
    # run is still going (``CollectionLoop.tick_unless_busy``) so the two never overlap.
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=interval_seconds, start_date=datetime.fromtimestamp(first, tz=UTC)),
        id="collect",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=interval_seconds,
    )
    scheduler.add_job(tick, id="collect-now", misfire_grace_time=interval_seconds)
    scheduler.start()
    return scheduler
