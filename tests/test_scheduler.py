"""The collection loop: isolation of collectors and consumers, timeouts, write buffering."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import ClassVar

from app.clock import FakeClock
from app.models import Collected, MetricInfo, Sample, Snapshot
from app.scheduler import BufferedWriter, CollectionLoop, Consumer
from app.storage.base import RangeQuery, SeriesResult, StoreStats


class Steady:
    name: ClassVar[str] = "steady"
    fields: ClassVar[Sequence[MetricInfo]] = (MetricInfo("value", "count", "a number"),)

    def __init__(self) -> None:
        self.calls: list[float] = []

    def collect(self, monotonic: float) -> Collected:
        self.calls.append(monotonic)
        return Collected(samples=(Sample("steady", "value", float(len(self.calls))),))

    def close(self) -> None:
        pass


class Broken(Steady):
    def collect(self, monotonic: float) -> Collected:
        raise PermissionError("psutil.AccessDenied (pid=1)")


class Hanging(Steady):
    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def collect(self, monotonic: float) -> Collected:
        self.calls.append(monotonic)
        self.release.wait(10)
        return Collected()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Snapshot] = []

    def consume(self, snapshot: Snapshot) -> None:
        self.seen.append(snapshot)


class Exploding:
    def consume(self, snapshot: Snapshot) -> None:
        raise RuntimeError("boom")


def make_loop(
    collectors: dict[str, Steady],
    consumers: list[tuple[str, Consumer]],
    clock: FakeClock,
    timeout: float = 2.0,
) -> tuple[CollectionLoop, list[Snapshot]]:
    published: list[Snapshot] = []
    loop = CollectionLoop(collectors, clock, consumers, lambda s, m: published.append(s), timeout)
    return loop, published


def test_tick_stamps_wall_time_and_passes_monotonic() -> None:
    clock = FakeClock(start=1_800_000_000.0)
    steady = Steady()
    loop, published = make_loop({"steady": steady}, [], clock)
    snap = loop.tick()
    clock.advance(1)
    loop.tick()
    assert snap.timestamp == 1_800_000_000.0
    assert steady.calls == [1000.0, 1001.0]
    assert [s.results["steady"].samples[0].value for s in published] == [1.0, 2.0]
    loop.close()


def test_failing_collector_is_skipped_others_go_on() -> None:
    clock = FakeClock()
    loop, _ = make_loop({"steady": Steady(), "broken": Broken()}, [], clock)
    snap = loop.tick()
    assert "steady" in snap.results
    assert "broken" not in snap.results
    assert snap.errors["broken"].startswith("PermissionError")
    loop.close()


def test_hung_collector_times_out_and_is_skipped_until_it_returns() -> None:
    clock = FakeClock()
    hanging = Hanging()
    loop, _ = make_loop({"steady": Steady(), "hanging": hanging}, [], clock, timeout=0.2)
    first = loop.tick()
    assert first.errors["hanging"] == "timed out after 0.2s"
    assert "steady" in first.results
    second = loop.tick()
    assert "still running" in second.errors["hanging"]
    assert len(hanging.calls) == 1  # not called again while stuck
    hanging.release.set()
    hanging.release = threading.Event()
    hanging.release.set()
    # Give the stuck call a moment to finish, then it runs again.
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(hanging.calls) < 2:
        third = loop.tick()
        if "hanging" in third.results:
            break
        time.sleep(0.05)
    assert len(hanging.calls) == 2
    loop.close()


def test_consumer_failure_does_not_stop_other_consumers() -> None:
    clock = FakeClock()
    recorder = Recorder()
    loop, _ = make_loop({"steady": Steady()}, [("bad", Exploding()), ("rec", recorder)], clock)
    loop.tick()
    loop.tick()
    assert len(recorder.seen) == 2
    loop.close()


class FlakyStore:
    """A store whose writes fail while ``down`` is set."""

    def __init__(self) -> None:
        self.down = False
        self.written: list[float] = []
        self.maintained: list[float] = []

    def open(self) -> None: ...
    def write(self, snapshot: Snapshot) -> None:
        if self.down:
            raise OSError(28, "No space left on device")
        self.written.append(snapshot.timestamp)

    def query(self, q: RangeQuery) -> SeriesResult:  # pragma: no cover - unused
        raise NotImplementedError

    def series(self, metric: str) -> list[tuple[tuple[str, str], ...]]:
        return []

    def query_processes(self, at: float) -> None:
        return None

    def maintain(self, now: float) -> None:
        self.maintained.append(now)

    def ping(self) -> bool:
        return not self.down

    def stats(self) -> StoreStats:
        return StoreStats(backend="fake", path=None, size_bytes=None)

    def close(self) -> None: ...


def snap(ts: float) -> Snapshot:
    return Snapshot(timestamp=ts, results={})


def test_buffered_writer_keeps_failed_ticks_and_writes_them_in_order() -> None:
    store = FlakyStore()
    clock = FakeClock()
    writer = BufferedWriter(store, max_pending=100, clock=clock)
    writer.consume(snap(1))
    store.down = True
    writer.consume(snap(2))
    writer.consume(snap(3))
    assert writer.pending == 2
    assert writer.last_error is not None and "No space" in writer.last_error
    store.down = False
    writer.consume(snap(4))
    assert store.written == [1, 2, 3, 4]
    assert writer.pending == 0
    assert writer.last_error is None
    assert writer.dropped == 0


def test_buffered_writer_drops_oldest_only_beyond_its_bound() -> None:
    store = FlakyStore()
    store.down = True
    writer = BufferedWriter(store, max_pending=3, clock=FakeClock())
    for ts in range(1, 6):
        writer.consume(snap(ts))
    assert writer.pending == 3
    assert writer.dropped == 2
    store.down = False
    writer.flush()
    assert store.written == [3, 4, 5]


def test_maintenance_runs_periodically_not_every_tick() -> None:
    store = FlakyStore()
    clock = FakeClock()
    writer = BufferedWriter(store, max_pending=10, clock=clock, maintain_every_seconds=10)
    for _ in range(25):
        writer.consume(snap(clock.time()))
        clock.advance(1)
    assert len(store.maintained) == 3  # t=0, 10, 20


def test_apscheduler_runs_on_whole_interval_boundaries_without_overlap() -> None:
    """Real APScheduler, real clock: runs land on whole seconds and never overlap."""
    import time

    from app.clock import SystemClock
    from app.scheduler import start_scheduler

    fired: list[float] = []
    busy = threading.Lock()
    skipped = 0

    def slow_tick() -> None:
        # Shaped like CollectionLoop.tick_unless_busy: a run that finds one going skips.
        nonlocal skipped
        if not busy.acquire(blocking=False):
            skipped += 1
            return
        try:
            fired.append(time.time())
            time.sleep(1.3)  # slower than the interval: must not pile up
        finally:
            busy.release()

    scheduler = start_scheduler(slow_tick, 1, SystemClock())
    try:
        deadline = time.monotonic() + 8
        while len(fired) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert len(fired) >= 3
    assert all(b - a >= 1.3 for a, b in itertools.pairwise(fired)), "runs never overlap"
    # After the immediate first run, runs are anchored to whole seconds (no drift) and,
    # since each run takes 1.3 s, every other slot is skipped rather than queued.
    later = fired[1:]
    for t in later:
        assert abs(t - round(t)) < 0.3, later
    gaps = [b - a for a, b in itertools.pairwise(later)]
    assert all(1.5 < g < 2.5 for g in gaps), gaps


def test_tick_unless_busy_skips_instead_of_queueing() -> None:
    clock = FakeClock()
    hanging = Hanging()
    loop, published = make_loop({"hanging": hanging}, [], clock, timeout=5)
    worker = threading.Thread(target=loop.tick)
    worker.start()
    import time

    deadline = time.monotonic() + 5
    while not hanging.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loop.tick_unless_busy() is None
    assert loop.skipped == 1
    hanging.release.set()
    worker.join(5)
    assert loop.tick_unless_busy() is not None
    assert len(published) == 2
    loop.close()
