"""A single background thread that runs the alert engine's persistence jobs in order.

Why: an SQLite commit is usually ~100 µs but a WAL checkpoint or a busy disk can take
tens of milliseconds; the collection tick must not absorb that. Jobs run strictly in
submission order, so the state table and the history stay consistent, and notifications
are dispatched only after their event is stored (delivery rows can reference it).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

Job = Callable[[], None]


class BackgroundWriter:
    def __init__(self, max_pending: int = 10_000) -> None:
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="alerts-store", daemon=True)
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Never blocks: if the writer is hopelessly behind, the job is dropped (logged)."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            log.error("alert store writer queue full: state change dropped total=%d", self.dropped)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every job submitted so far has run (tests, shutdown)."""
        done = threading.Event()
        self.submit(done.set)
        return done.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if not self._thread.is_alive():
            return
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # one bad job must not stop persistence
                log.exception("alert store job failed")
