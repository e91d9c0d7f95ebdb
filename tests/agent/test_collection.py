"""Each collector on its own thread and deadline; misses are recorded with the reason."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from sysmon.agent.collection import (
    LANE_BUDGET,
    LATENESS_REFRESH_TICKS,
    QUICK_TICKS,
    SLOW_TICKS,
    Collection,
    Metronome,
    next_tick,
)
from sysmon.agent.gaps import GapLog
from sysmon.clock import FakeClock, SystemClock
from tests.agent.fakes import Broken, Hanging, Sleepy, Steady


def test_tick_is_stamped_with_its_scheduled_time_and_passes_monotonic() -> None:
    clock = FakeClock(start=1000.0)
    steady = Steady()
    collection = Collection({"steady": steady}, clock, deadline_seconds=0.5)
    snapshot = collection.tick(1001.0)
    assert snapshot.timestamp == 1001.0
    assert steady.calls == [clock.monotonic()]
    assert snapshot.results["steady"].samples[0].value == 1.0
    assert snapshot.errors == {}


def test_quick_collectors_share_one_lane_thread_off_the_tick_thread() -> None:
    a, b = Steady(), Steady()
    collection = Collection({"a": a, "b": b}, FakeClock(), deadline_seconds=0.5)
    collection.tick(1.0)
    collection.tick(2.0)
    assert a.threads == b.threads, "one hand-off per tick, not one per collector"
    assert len(a.threads) == 1 and next(iter(a.threads)).startswith("collect-lane-")
    assert threading.current_thread().name not in a.threads
    collection.close()


def test_a_collector_that_holds_the_lane_gets_its_own_thread_and_others_go_on() -> None:
    hanging, steady = Hanging(), Steady()
    collection = Collection(
        {"a-hung": hanging, "steady": steady}, FakeClock(), deadline_seconds=0.8
    )
    try:
        t0 = time.monotonic()
        first = collection.tick(1.0)
        took = time.monotonic() - t0
        hanging.release.set()
        deadline = time.monotonic() + 5
        while collection._slots["a-hung"].busy() and time.monotonic() < deadline:
            time.sleep(0.01)
        second = collection.tick(2.0)
    finally:
        hanging.release.set()
    # "a-hung" sorts first, so it held the lane; "steady" ran on a fresh lane meanwhile.
    assert "steady" in first.results and first.errors == {"a-hung": "missed its 0.8s deadline"}
    assert steady.calls and 0.7 < took < 2.0
    assert second.errors == {} and "a-hung" in second.results
    (own,) = hanging.threads - {t for t in hanging.threads if t.startswith("collect-lane-")}
    assert own.startswith("collect-a-hung"), "after holding the lane it runs on its own thread"
    assert steady.threads and all(t.startswith("collect-lane-") for t in steady.threads)
    assert steady.threads.isdisjoint(hanging.threads), "the held lane was left to a-hung"
    collection.close()


def test_a_slow_collector_moves_to_its_own_thread_and_back_when_quick() -> None:
    slow = Sleepy(seconds=LANE_BUDGET * 0.6)
    collection = Collection({"slow": slow, "quick": Steady()}, FakeClock(), deadline_seconds=0.5)
    for second in range(SLOW_TICKS):
        assert collection.tick(float(second)).errors == {}
    assert collection._slots["slow"].solo
    assert collection.tick(10.0).errors == {}
    assert any(t.startswith("collect-slow") for t in slow.threads)
    slow.seconds = 0.0
    for second in range(QUICK_TICKS + 1):
        collection.tick(20.0 + second)
    assert not collection._slots["slow"].solo, "quick again: back on the lane"
    collection.close()


def test_failing_collector_loses_only_its_own_sample_and_the_reason_is_kept() -> None:
    collection = Collection({"ok": Steady(), "broken": Broken()}, FakeClock(), deadline_seconds=0.5)
    snapshot = collection.tick(10.0)
    assert set(snapshot.results) == {"ok"}
    assert snapshot.errors == {"broken": "PermissionError: psutil.AccessDenied (pid=1)"}
    report = collection.gaps.report(10.0)
    assert report["broken"]["missed_last_minute"] == 1
    assert report["broken"]["last_reason"] == "PermissionError: psutil.AccessDenied (pid=1)"
    assert report["ok"]["missed_last_hour"] == 0


def test_hung_collector_misses_its_deadline_then_is_not_waited_for_again() -> None:
    hanging, steady = Hanging(), Steady()
    collection = Collection({"hung": hanging, "steady": steady}, FakeClock(), deadline_seconds=0.2)
    try:
        t0 = time.monotonic()
        first = collection.tick(1.0)
        first_took = time.monotonic() - t0
        t0 = time.monotonic()
        second = collection.tick(2.0)
        second_took = time.monotonic() - t0
    finally:
        hanging.release.set()
    assert 0.15 < first_took < 2.0
    assert second_took < 0.15, "a collector still running is skipped, not waited for"
    assert first.errors == {"hung": "missed its 0.2s deadline"}
    assert second.errors == {"hung": "still running since the tick 1s ago (over its 0.2s deadline)"}
    assert "steady" in first.results and "steady" in second.results
    assert len(hanging.calls) == 1, "never a second run while the first hangs"
    assert collection.gaps.report(2.0)["hung"]["missed_last_minute"] == 2


def test_own_deadline_per_collector() -> None:
    hanging = Hanging()
    collection = Collection(
        {"hung": hanging, "steady": Steady()},
        FakeClock(),
        deadline_seconds=0.9,
        deadlines={"hung": 0.05},
    )
    try:
        t0 = time.monotonic()
        snapshot = collection.tick(1.0)
        took = time.monotonic() - t0
    finally:
        hanging.release.set()
    assert snapshot.errors == {"hung": "missed its 0.05s deadline"}
    assert took < 0.5


def test_a_collector_that_recovers_is_back_next_tick() -> None:
    hanging = Hanging()
    collection = Collection({"c": hanging}, FakeClock(), deadline_seconds=0.05)
    collection.tick(1.0)
    hanging.release.set()
    deadline = time.monotonic() + 5
    while collection._slots["c"].busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert collection.tick(2.0).errors == {}


@pytest.mark.parametrize(
    ("now", "interval", "last", "expected"),
    [
        (10.2, 1, None, 11.0),
        (10.0, 1, None, 11.0),  # exactly on a boundary: the next one
        (10.9999, 1, 11.0, 12.0),  # woke a hair early for 11: never 11 twice
        (125.0, 60, None, 180.0),
        (13.5, 1, 11.0, 14.0),  # after an overrun: the next boundary, not the missed ones
    ],
)
def test_next_tick_is_the_next_whole_multiple(
    now: float, interval: float, last: float | None, expected: float
) -> None:
    assert next_tick(now, interval, last) == expected


def test_metronome_fires_on_whole_seconds() -> None:
    seen: list[float] = []
    done = threading.Event()

    def on_tick(ts: float) -> None:
        seen.append(ts)
        if len(seen) >= 3:
            done.set()

    metronome = Metronome(1, SystemClock(), on_tick)
    metronome.start()
    try:
        assert done.wait(6)
    finally:
        metronome.stop()
    assert all(ts == int(ts) for ts in seen)
    assert [b - a for a, b in itertools.pairwise(seen)] == [1.0] * (len(seen) - 1)
    late = metronome.lateness_ms()
    assert late["max"] is not None and late["max"] >= 0


def test_lateness_figures_are_refreshed_every_few_ticks() -> None:
    metronome = Metronome(1, FakeClock(), lambda ts: None)
    assert metronome.lateness_ms() == {"p50": None, "p99": None, "max": None}
    metronome.note_lateness(0.002)
    assert metronome.lateness_ms()["max"] == 2.0, "no figures yet: computed at once"
    for _ in range(LATENESS_REFRESH_TICKS - 1):
        metronome.note_lateness(0.5)
    assert metronome.lateness_ms()["max"] == 2.0, "kept until enough new ticks"
    metronome.note_lateness(0.5)
    assert metronome.lateness_ms() == {"p50": 500.0, "p99": 500.0, "max": 500.0}


def test_gap_log_windows() -> None:
    gaps = GapLog(["a"])
    gaps.record("a", 100.0, "boom")
    gaps.record("a", 150.0, "slow")
    report = gaps.report(200.0)["a"]
    assert report["missed_last_minute"] == 1
    assert report["missed_last_hour"] == 2
    assert report["last_reason"] == "slow"
    assert gaps.missing_now(200.0)
    assert not gaps.missing_now(211.0)
    assert gaps.report(100.0 + 3601)["a"]["missed_last_hour"] == 1
