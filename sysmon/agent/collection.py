"""Each collector on its own clock: own deadline, own gaps, never held up by another.

``Metronome`` fires on whole multiples of the interval (computed from the schedule, so it
never drifts). At each tick ``Collection.tick(ts)`` starts every due collector and waits
until all have answered or their deadlines (below the interval) have passed. Quick
collectors run one after another on the shared, watched lane (``sysmon.agent.lane``):
one that holds it past ``LANE_BUDGET`` is left its thread and the others go on on a
fresh lane at once. A collector that is slow tick after tick (``SLOW_TICKS``) gets a
single-thread executor of its own, and goes back to the lane once it has been quick
for ``QUICK_TICKS``. A collector that raises, misses its deadline, or is still running
from an earlier tick loses only its own sample for this tick: the miss is recorded in
the ``GapLog`` with the reason, and every other collector's sample is kept. A hung
collector never keeps another collector's thread, so it cannot starve them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sysmon.agent.gaps import GapLog
from sysmon.agent.lane import Batch, Lane, Outcome, run_job
from sysmon.clock import Clock
from sysmon.collectors.base import Collector
from sysmon.models import Collected, Snapshot
from sysmon.serialize import valid_labels, valid_text

logger = logging.getLogger(__name__)


class Streak:
    """Log a failure once per streak, and once when it recovers."""

    def __init__(self, what: str, level: int = logging.WARNING) -> None:
        self.what = what
        self.level = level
        """Of the first failure's line (ERROR: a bug or bad data, reported to Sentry)."""
        self.failing = False
        self.count = 0

    def fail(self, error: str, exc_info: bool = False) -> None:
        """``exc_info``: log the exception being handled with the first failure."""
        self.count += 1
        if not self.failing:
            self.failing = True
            logger.log(self.level, "%s failing: %s", self.what, error, exc_info=exc_info)

    def ok(self) -> None:
        if self.failing:
            logger.info("%s recovered after %d missed samples", self.what, self.count)
        self.failing = False
        self.count = 0


LANE_BUDGET = 0.05
"""Seconds a collector may hold the shared lane before the others go on without it."""

SLOW_TICKS = 3
"""Consecutive ticks over half the budget after which a collector gets its own thread."""

QUICK_TICKS = 60
"""Consecutive ticks under a quarter of the budget after which it rides the lane again."""


class _Slot:
    """One collector: on the shared lane, or (``solo``) on its own worker thread."""

    def __init__(self, name: str, collector: Collector, deadline: float) -> None:
        self.name = name
        self.collector = collector
        self.deadline = deadline
        self.solo = False
        self.executor: ThreadPoolExecutor | None = None
        self.running: Outcome | None = None
        self.running_since: float = 0.0
        self.last_duration: float | None = None
        self.streak = Streak(f"collector {name}")
        self._trend = 0
        """Consecutive slow ticks on the lane, or quick ticks alone."""

    def begin(self, ts: float) -> Outcome:
        self.running = Outcome(threading.Event() if self.solo else None)
        self.running_since = ts
        return self.running

    def run_alone(self, monotonic: float) -> None:
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"collect-{self.name}"
            )
        assert self.running is not None
        self.executor.submit(run_job, self.collector.collect, self.running, monotonic)

    def busy(self) -> bool:
        return self.running is not None and not self.running.done

    def go_solo(self) -> None:
        self.solo, self._trend = True, 0

    def settle(self, duration: float) -> None:
        """Move between the lane and a thread of its own by how long the calls take."""
        if not self.solo:
            self._trend = self._trend + 1 if duration > LANE_BUDGET / 2 else 0
            if self._trend >= SLOW_TICKS:
                self.go_solo()
        else:
            self._trend = self._trend + 1 if duration < LANE_BUDGET / 4 else 0
            if self._trend >= QUICK_TICKS:
                self.solo, self._trend = False, 0
                self.shutdown()

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None


class Collection:
    """Runs one tick of every collector, each in isolation (see the module docstring)."""

    def __init__(
        self,
        collectors: Mapping[str, Collector],
        clock: Clock,
        deadline_seconds: float,
        gaps: GapLog | None = None,
        deadlines: Mapping[str, float] | None = None,
    ) -> None:
        own = deadlines or {}
        self._slots = {
            name: _Slot(name, c, own.get(name, deadline_seconds)) for name, c in collectors.items()
        }
        self._clock = clock
        self._lane: Lane | None = None
        self.gaps = gaps or GapLog(self._slots)
        self.ticks = 0

    @property
    def names(self) -> list[str]:
        return sorted(self._slots)

    def reconfigure(
        self,
        replace: Mapping[str, Collector],
        remove: Iterable[str],
        deadline_seconds: float,
        deadlines: Mapping[str, float] | None = None,
    ) -> None:
        """Swap in new or changed collectors and drop removed ones (between ticks: the
        caller holds the tick lock). Unchanged collectors keep their instance."""
        own = deadlines or {}
        for name in (*remove, *replace):
            slot = self._slots.pop(name, None)
            if slot is not None:
                slot.shutdown()
                slot.collector.close()
        for name, collector in replace.items():
            self._slots[name] = _Slot(name, collector, deadline_seconds)
        for name, slot in self._slots.items():
            slot.deadline = own.get(name, deadline_seconds)

    def durations(self) -> dict[str, float | None]:
        return {name: slot.last_duration for name, slot in self._slots.items()}

    def tick(self, ts: float) -> Snapshot:
        """Collect the tick scheduled at ``ts`` (the snapshot is stamped ``ts``)."""
        mono = self._clock.monotonic()
        errors: dict[str, str] = {}
        started: dict[str, Outcome] = {}
        lane: list[_Slot] = []
        for name, slot in self._slots.items():
            if slot.busy():
                late = ts - slot.running_since
                errors[name] = (
                    f"still running since the tick {late:.0f}s ago (over its "
                    f"{slot.deadline:g}s deadline)"
                )
                continue
            started[name] = slot.begin(ts)
            if slot.solo:
                slot.run_alone(mono)
            else:
                lane.append(slot)
        began = time.monotonic()
        if lane:
            self._ride_lane(lane, mono, began)
        results: dict[str, Collected] = {}
        # Each collector against its own deadline, measured from the tick start.
        for name in sorted(started, key=lambda n: self._slots[n].deadline):
            slot = self._slots[name]
            outcome = started[name]
            remaining = slot.deadline - (time.monotonic() - began)
            if not outcome.done and remaining > 0 and outcome.event is not None:
                outcome.event.wait(remaining)
            if not outcome.done or outcome.cancelled:
                errors[name] = f"missed its {slot.deadline:g}s deadline"
                continue
            if outcome.error is not None:  # one collector's failure never stops the others
                errors[name] = valid_text(f"{type(outcome.error).__name__}: {outcome.error}"[:300])
                continue
            slot.last_duration = outcome.duration
            slot.settle(outcome.duration)
            if outcome.finished - began > slot.deadline:
                errors[name] = f"missed its {slot.deadline:g}s deadline"
                continue
            results[name] = valid_labels(outcome.value)
        for name, slot in self._slots.items():
            if name in errors:
                self.gaps.record(name, ts, errors[name])
                slot.streak.fail(errors[name])
            else:
                slot.streak.ok()
        self.ticks += 1
        return Snapshot(timestamp=ts, results=results, errors=errors)

    def _ride_lane(self, slots: list[_Slot], monotonic: float, began: float) -> None:
        """Run ``slots`` one after another on the shared lane, quickest first, and watch:
        one that holds the lane past the budget gets a thread of its own (it keeps the
        lane's), the rest go on on a fresh lane at once (``sysmon.agent.lane``)."""
        slots.sort(key=lambda s: (s.last_duration or 0.0, s.name))
        owner = {id(s.running): s for s in slots}
        batch = Batch(((s.collector.collect, s.running) for s in slots if s.running), monotonic)
        if self._lane is None or self._lane.retired:
            self._lane = Lane()
        batch.give_to(self._lane)
        budget = min(LANE_BUDGET, min(s.deadline for s in slots) / 4)
        last = max(s.deadline for s in slots)
        while not batch.done.wait(budget / 2):
            stuck = batch.take_over(budget)
            if stuck is not None:
                owner[id(stuck[1])].go_solo()
                stuck[1].watchable()  # waited for up to its own deadline below
                self._lane = batch.owner
            if time.monotonic() - began >= last:
                batch.abandon()  # the rest missed their deadlines: cancelled, not run late
                break

    def close(self) -> None:
        if self._lane is not None:
            self._lane.retire()
        for slot in self._slots.values():
            slot.shutdown()
            try:
                slot.collector.close()
            except Exception as exc:
                logger.warning("closing collector %s failed: %s", slot.name, exc)


def next_tick(now: float, interval: float, last: float | None) -> float:
    """The next whole multiple of ``interval`` after ``now`` (and after ``last``)."""
    nxt = math.floor(now / interval + 1.0) * interval
    if last is not None and nxt <= last:
        nxt = last + interval
    return nxt


class Metronome:
    """Calls ``on_tick(ts)`` at every whole multiple ``ts`` of ``interval`` until stopped.

    The schedule comes from the wall clock's whole seconds, never from when the previous
    tick ended, so ticks do not drift; a tick that overruns makes the next boundary the
    one after it (counted in ``overruns``), it never queues. ``lateness`` keeps how late
    each of the last 3,600 ticks started (actual - scheduled), for health and benchmarks.
    """

    def __init__(
        self,
        interval: float,
        clock: Clock,
        on_tick: Callable[[float], Any],
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lateness: deque[float] = deque(maxlen=3600)
        self.overruns = 0
        self._ticked = 0
        self._late_ms: dict[str, float | None] | None = None
        self._late_at = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metronome", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last: float | None = None
        while not self._stop.is_set():
            now = self._clock.time()
            ts = next_tick(now, self._interval, last)
            if last is not None and ts > last + self._interval + 1e-6:
                self.overruns += round((ts - last) / self._interval) - 1
            if self._stop.wait(max(0.0, ts - now)):
                return
            # Timer wake-ups can be a hair early: never run a tick before its time.
            early = ts - self._clock.time()
            if early > 0:
                time.sleep(early)
            self.note_lateness(self._clock.time() - ts)
            last = ts
            try:
                self._on_tick(ts)
            except Exception:  # the schedule must survive anything a tick does
                logger.exception("tick %s failed", ts)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def note_lateness(self, seconds: float) -> None:
        """Record how late a tick started (the metronome thread, at each tick)."""
        self.lateness.append(seconds)
        self._ticked += 1

    def lateness_ms(self) -> dict[str, float | None]:
        """p50, p99 and max of ``lateness`` in ms; sorted again only after
        ``LATENESS_REFRESH_TICKS`` new ticks (the status goes out every tick, and
        sorting 3,600 values each time cost more than a collector)."""
        fresh = self._ticked
        last = self._late_ms
        if last is None or last["max"] is None or fresh - self._late_at >= LATENESS_REFRESH_TICKS:
            last = self._late_ms = _percentiles_ms(self.lateness)
            self._late_at = fresh
        return dict(last)


LATENESS_REFRESH_TICKS = 10
"""Tick lateness figures are recomputed every this many ticks (and at the first ask)."""


def _percentiles_ms(samples: Iterable[float]) -> dict[str, float | None]:
    values = sorted(samples)
    if not values:
        return {"p50": None, "p99": None, "max": None}

    def pick(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)

    return {"p50": pick(0.5), "p99": pick(0.99), "max": round(values[-1] * 1000, 2)}
