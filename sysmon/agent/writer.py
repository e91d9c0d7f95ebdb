"""The store writer: its own thread, so a slow disk never delays a tick.

``submit`` (the tick thread) appends a snapshot and returns at once. The writer thread
stores snapshots in order, one transaction each, and runs maintenance (rollups,
compaction, retention) every ``maintain_every_seconds`` between writes. A tick that
could not be written (disk full, database locked or damaged) stays in memory, up to
``max_pending`` ticks, and is written before newer ones once the store recovers; only
beyond that bound is the oldest tick dropped, counted in ``dropped`` and logged.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque

from sysmon.agent.collection import Streak
from sysmon.clock import Clock
from sysmon.models import Snapshot
from sysmon.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)


class BufferedWriter:
    def __init__(
        self,
        store: TimeSeriesStore,
        max_pending: int,
        clock: Clock,
        maintain_every_seconds: float = 10.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self._store = store
        self._pending: deque[Snapshot] = deque()
        self._max_pending = max_pending
        self._clock = clock
        self._maintain_every = maintain_every_seconds
        self._retry = retry_seconds
        self._last_maintain = -math.inf
        self._streak = Streak("store write")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.dropped = 0
        self.written = 0
        self.generation = 0
        """Counts changes to the store's contents (writes, maintenance): servers that
        cache query results compare it to know whether the store changed since."""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._pending.append(snapshot)
            while len(self._pending) > self._max_pending:
                self._pending.popleft()
                self.dropped += 1
                logger.error("write buffer full: dropped the oldest unwritten tick")
        self._wake.set()

    # The thread -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._retry)
            self._wake.clear()
            self.step()

    def step(self) -> None:
        """Write what is pending, then maintain when due (the thread's one iteration)."""
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
            snapshot = self._pending[0]
            try:
                self._store.write(snapshot)
            except Exception as exc:  # StorageError, OSError, sqlite errors
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self._streak.fail(self.last_error)
                return
            with self._lock:
                if self._pending and self._pending[0] is snapshot:
                    self._pending.popleft()
            self.written += 1
            self.generation += 1
            self.last_error = None
            self._streak.ok()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, then write what is still pending (last chance)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()
