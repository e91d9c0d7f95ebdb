"""Delivery off the collection path: one queue and one worker thread per channel.

Why per channel: SMTP being down or a webhook that accepts the connection and never
answers must not delay the other channels, let alone the collection tick. ``submit``
only does ``put_nowait`` on bounded queues, so the collection thread never waits; a
full queue drops the new message and logs it (a channel that is that far behind is
broken, and memory must stay bounded).

Each attempt is bounded by the channel's ``timeout_seconds``; a retryable failure is
retried ``retries`` times with exponential backoff (``backoff_seconds``, doubling).
Backoff waits on the stop event, so ``stop`` never hangs behind a retry schedule.
Logs carry the channel name, the kind, the status code and a short error, never a URL
or a password.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from sysmon.alerts.notifiers.base import DeliveryError, Notification, Notifier
from sysmon.alerts.store import Delivery
from sysmon.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChannelPolicy:
    retries: int
    backoff_seconds: float
    queue_size: int


@dataclass(slots=True)
class _Job:
    notification: Notification
    retries: int
    future: Future[None] | None = None


_STOP = object()

DeliveryCallback = Callable[[Delivery], None]


class ChannelWorker:
    def __init__(
        self,
        notifier: Notifier,
        policy: ChannelPolicy,
        clock: Clock,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        self.name = notifier.name
        self._notifier = notifier
        self._policy = policy
        self._clock = clock
        self._on_delivery = on_delivery
        self._queue: queue.Queue[_Job | object] = queue.Queue(maxsize=policy.queue_size)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"alerts-{self.name}", daemon=True)
        self.dropped = 0
        self.sent = 0
        self.failed = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, notification: Notification, *, retries: int | None = None) -> Future[None]:
        """Queue without blocking. The future fails at once if the queue is full."""
        future: Future[None] = Future()
        job = _Job(notification, self._policy.retries if retries is None else retries, future)
        if self._stopping.is_set():
            future.set_exception(DeliveryError("alerting is shutting down", retryable=False))
            return future
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            log.error(
                "alert notification dropped: queue full channel=%s kind=%s rule=%s dropped=%d",
                self.name,
                notification.kind,
                notification.rule,
                self.dropped,
            )
            future.set_exception(DeliveryError("queue full", retryable=False))
        return future

    def begin_stop(self) -> None:
        """Stop retrying and accepting work (``stop`` then waits for the thread)."""
        self._stopping.set()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        # On a full queue the worker still sees the stop flag after its current job.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("alert channel worker still busy at shutdown channel=%s", self.name)
        self._notifier.close()

    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or not isinstance(item, _Job):
                break
            if self._stopping.is_set():
                self._finish(item, "dropped", 0, "shutdown", None)
                continue
            self._deliver(item)

    def _deliver(self, job: _Job) -> None:
        n = job.notification
        delay = self._policy.backoff_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                self._notifier.send(n)
            except DeliveryError as exc:
                error: DeliveryError = exc
            except Exception as exc:  # a notifier bug must not kill the worker thread
                error = DeliveryError(f"{type(exc).__name__}", retryable=True)
            else:
                self.sent += 1
                log.info(
                    "alert notification sent channel=%s kind=%s rule=%s attempts=%d",
                    self.name,
                    n.kind,
                    n.rule,
                    attempt,
                )
                self._finish(job, "sent", attempt, None, None)
                return
            last = not error.retryable or attempt > job.retries or self._stopping.is_set()
            if last:
                self.failed += 1
                log.error(
                    "alert notification failed, giving up channel=%s kind=%s rule=%s "
                    "attempts=%d status=%s error=%s",
                    self.name,
                    n.kind,
                    n.rule,
                    attempt,
                    error.status,
                    error,
                )
                self._finish(job, "failed", attempt, str(error), error)
                return
            log.warning(
                "alert notification attempt failed, retrying channel=%s kind=%s rule=%s "
                "attempt=%d status=%s error=%s retry_in_s=%.2f",
                self.name,
                n.kind,
                n.rule,
                attempt,
                error.status,
                error,
                delay,
            )
            if self._stopping.wait(delay):
                self.failed += 1
                self._finish(job, "failed", attempt, f"{error} (shutdown)", error)
                return
            delay *= 2

    def _finish(
        self,
        job: _Job,
        status: str,
        attempts: int,
        error_text: str | None,
        error: DeliveryError | None,
    ) -> None:
        if self._on_delivery is not None and job.notification.kind != "test":
            try:
                self._on_delivery(
                    Delivery(
                        event_id=job.notification.event_id,
                        timestamp=self._clock.time(),
                        channel=self.name,
                        kind=job.notification.kind,
                        status=status,
                        attempts=attempts,
                        error=error_text,
                    )
                )
            except Exception as exc:  # history is best effort; delivery already happened
                log.warning("cannot record alert delivery channel=%s error=%s", self.name, exc)
        if job.future is not None and not job.future.done():
            if status == "sent":
                job.future.set_result(None)
            else:
                job.future.set_exception(error or DeliveryError(error_text or status))


class Dispatcher:
    """Routes a notification to the named channels' workers."""

    def __init__(self, workers: Mapping[str, ChannelWorker]) -> None:
        self._workers = dict(workers)

    @property
    def channels(self) -> list[str]:
        return list(self._workers)

    def start(self) -> None:
        for worker in self._workers.values():
            worker.start()

    def submit(self, notification: Notification, channels: tuple[str, ...] | list[str]) -> None:
        for name in channels:
            worker = self._workers.get(name)
            if worker is not None:
                worker.submit(notification)

    def submit_one(
        self, channel: str, notification: Notification, *, retries: int | None = None
    ) -> Future[None]:
        return self._workers[channel].submit(notification, retries=retries)

    def pending(self) -> dict[str, int]:
        return {name: w.pending() for name, w in self._workers.items()}

    def stop(self, timeout: float = 5.0) -> None:
        for worker in self._workers.values():
            worker.begin_stop()
        for worker in self._workers.values():
            worker.stop(timeout)
