from __future__ import annotations

import math

import pytest

from sysmon.collectors.rates import RateTracker, counter_delta, counter_rate, per_second


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (None, 10.0, None),  # first sample
        (10.0, 15.0, 5.0),
        (10.0, 10.0, 0.0),  # idle counter: a real zero
        (2**32 - 10, 5.0, None),  # 32-bit wrap psutil could not undo: reset, not huge
        (1_000_000.0, 3.0, None),  # reset (reboot, device re-created)
        (10.0, math.inf, None),
        (10.0, math.nan, None),
    ],
    ids=["first", "normal", "unchanged", "wrap", "reset", "inf", "nan"],
)
def test_counter_delta(previous: float | None, current: float, expected: float | None) -> None:
    assert counter_delta(previous, current) == expected


@pytest.mark.parametrize(
    ("delta", "elapsed", "expected"),
    [
        (100.0, 2.0, 50.0),
        (100.0, 0.0, None),  # zero elapsed
        (100.0, -1.0, None),  # clock misuse
        (None, 1.0, None),
        (0.0, 1.0, 0.0),
        (100.0, math.nan, None),
    ],
    ids=["normal", "zero-elapsed", "negative-elapsed", "no-delta", "zero", "nan-elapsed"],
)
def test_per_second(delta: float | None, elapsed: float, expected: float | None) -> None:
    assert per_second(delta, elapsed) == expected


@pytest.mark.parametrize(
    ("previous", "current", "now", "expected"),
    [
        (None, 5.0, 1.0, None),
        ((0.0, 0.0), 5.0, 1.0, 5.0),
        ((100.0, 0.0), 400.0, 10.0, 30.0),  # gap: 10 s without a tick averages over it
        ((100.0, 5.0), 400.0, 5.0, None),  # zero elapsed
        ((100.0, 0.0), 50.0, 1.0, None),  # reset
    ],
    ids=["first", "normal", "gap", "zero-elapsed", "reset"],
)
def test_counter_rate(
    previous: tuple[float, float] | None, current: float, now: float, expected: float | None
) -> None:
    assert counter_rate(previous, current, now) == expected


@pytest.mark.parametrize(
    ("readings", "expected"),
    [
        ([(0.0, 100.0), (1.0, 150.0), (2.0, 250.0)], [None, 50.0, 100.0]),
        ([(0.0, 100.0), (1.0, 20.0), (2.0, 30.0)], [None, None, 10.0]),  # reset, then resume
        ([(0.0, 100.0), (0.0, 200.0), (1.0, 300.0)], [None, None, 100.0]),  # zero elapsed
        ([(0.0, 0.0), (4.0, 400.0)], [None, 100.0]),  # gap
    ],
    ids=["steady", "reset-resumes", "zero-elapsed", "gap"],
)
def test_tracker_sequences(
    readings: list[tuple[float, float]], expected: list[float | None]
) -> None:
    tracker: RateTracker[str] = RateTracker()
    got = []
    for now, value in readings:
        got.append(tracker.rate("x", value, now))
        tracker.end_tick()
    assert got == expected


def test_tracker_forgets_series_not_seen_in_a_tick() -> None:
    tracker: RateTracker[str] = RateTracker()
    tracker.rate("eth0", 1.0, 0.0)
    tracker.rate("eth1", 1.0, 0.0)
    tracker.end_tick()
    assert tracker.rate("eth0", 3.0, 1.0) == 2.0
    tracker.end_tick()
    assert "eth1" not in tracker and len(tracker) == 1
    # eth1 comes back: first sample again, never a rate over the missed interval
    assert tracker.rate("eth1", 10.0, 2.0) is None


def test_tracker_keys_are_independent() -> None:
    tracker: RateTracker[tuple[str, str]] = RateTracker()
    tracker.rate(("sda", "read"), 0.0, 0.0)
    tracker.rate(("sdb", "read"), 1000.0, 0.0)
    tracker.end_tick()
    assert tracker.rate(("sda", "read"), 10.0, 1.0) == 10.0
    assert tracker.rate(("sdb", "read"), 1100.0, 1.0) == 100.0
