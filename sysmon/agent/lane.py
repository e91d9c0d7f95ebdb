"""The shared lane: quick collectors one after another on one thread, under watch.

Handing each of a dozen sub-millisecond collectors to its own thread every tick cost
more CPU than the collectors themselves (thread wake-ups and GIL hand-offs: ~2.8 ms of
~5 ms per tick, measured in ``bench/README.md``). So collectors that answer quickly
run in a ``Batch`` on one ``Lane`` thread, and the tick thread watches it: when the job
at the head of the batch has run longer than the lane's budget, ``Batch.take_over``
hands the jobs not yet started to a fresh lane at once and returns the stuck
collector, which keeps the old thread to itself until its call returns (the old lane
then exits). A hung collector therefore delays the others by at most the budget and
never costs them a sample. ``Collection`` decides who rides the lane (see there).

Every job's result goes to its own ``Outcome`` (value or error, duration, and when it
finished on the monotonic clock), so whoever looks can tell exactly whether it met its
deadline, however late it looks. Outcomes are plain slots, not ``Future`` objects: a
dozen futures (each a condition variable) per tick cost more than the quick collectors.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

_names = itertools.count(1)


class Outcome:
    """One collector call: pending until ``done``; then ``value`` or ``error``."""

    __slots__ = ("cancelled", "done", "duration", "error", "event", "finished", "value")

    def __init__(self, event: threading.Event | None = None) -> None:
        self.done = False
        self.cancelled = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.duration = 0.0
        self.finished = 0.0
        """Monotonic time the call returned."""
        self.event = event
        """Set when done, for a waiter that has no batch to wait on (a solo collector)."""

    def watchable(self) -> threading.Event:
        """An event set when done, made now for an outcome that had none (a job left
        its thread on the lane): ``run_job`` sets ``done`` before it looks for the
        event, and this looks at ``done`` after attaching it, so neither side misses."""
        if self.event is None:
            event = threading.Event()
            self.event = event
            if self.done:
                event.set()
        return self.event

    def cancel(self) -> None:
        self.cancelled = self.done = True
        if self.event is not None:
            self.event.set()


Job = tuple[Callable[[float], Any], Outcome]
"""A collector's ``collect`` and the outcome it fills in."""


def run_job(collect: Callable[[float], Any], outcome: Outcome, monotonic: float) -> None:
    """Run one collector call into its outcome (never raises)."""
    started = time.perf_counter()
    try:
        outcome.value = collect(monotonic)
    except BaseException as exc:  # the collector's failure belongs to its outcome
        outcome.error = exc
    outcome.duration = time.perf_counter() - started
    outcome.finished = time.monotonic()
    outcome.done = True  # last: a reader that sees it sees the rest (one GIL)
    if outcome.event is not None:
        outcome.event.set()


class Batch:
    """One tick's jobs for the lane, in order; see the module docstring."""

    def __init__(self, jobs: Iterable[Job], monotonic: float) -> None:
        self._jobs: deque[Job] = deque(jobs)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._owner: Lane | None = None
        self._current: Job | None = None
        self._since = 0.0
        self.done = threading.Event()
        """Set when every job has run (not set if the rest were abandoned)."""

    def run(self, lane: Lane) -> None:
        """Run jobs while ``lane`` owns the batch (the lane thread)."""
        while True:
            with self._lock:
                if self._owner is not lane:
                    return
                if not self._jobs:
                    self._current = None
                    self.done.set()
                    return
                job = self._current = self._jobs.popleft()
                self._since = time.monotonic()
            run_job(job[0], job[1], self._monotonic)

    def take_over(self, budget: float) -> Job | None:
        """If the running job has run ``budget`` seconds or more, give the jobs not yet
        started to a new lane and return the stuck job (else ``None``)."""
        with self._lock:
            job, owner = self._current, self._owner
            if job is None or owner is None or time.monotonic() - self._since < budget:
                return None
            self._current = None
            fresh = self._owner = Lane()
        owner.retire()
        fresh.put(self)
        return job

    def abandon(self) -> list[Job]:
        """Stop: the jobs not yet started are cancelled and returned."""
        with self._lock:
            owner, self._owner = self._owner, None
            stuck = self._current is not None
            rest = list(self._jobs)
            self._jobs.clear()
        if owner is not None and stuck:
            owner.retire()  # busy with a job: that thread is the job's now
        for _, outcome in rest:
            outcome.cancel()
        return rest

    def give_to(self, lane: Lane) -> None:
        with self._lock:
            self._owner = lane
        lane.put(self)

    @property
    def owner(self) -> Lane | None:
        return self._owner


class Lane:
    """One daemon thread that runs batches in order, until retired."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Batch | None] = queue.SimpleQueue()
        self.retired = False
        self._thread = threading.Thread(
            target=self._run, name=f"collect-lane-{next(_names)}", daemon=True
        )
        self._thread.start()

    def put(self, batch: Batch) -> None:
        """Queue ``batch`` (which must already name this lane its owner)."""
        self._queue.put(batch)

    def retire(self) -> None:
        """Exit after the batch at hand (a stuck job keeps the thread until it returns)."""
        self.retired = True
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            batch.run(self)
