"""The live edge: coarse tiers show the current, unfinished bucket (and closed ones the
rollup has not reached) computed from finer data, marked by ``partial_from``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.storage.base import RangeQuery, SeriesResult
from sysmon.storage.sqlite import SQLiteStore
from tests.storage.helpers import T0, cpu, retention, snap

DISK = ("disk", (("mount", "/"),))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "s.db", retention(), 1.0, clock)
    s.open()
    yield s
    s.close()


def disk_ticks(store: SQLiteStore, clock: FakeClock, start: float, n: int) -> list[float]:
    values = []
    for k in range(n):
        ts = start + k
        v = 40.0 + (k * 7919 % 97) / 10  # varied, not monotonic
        values.append(v)
        clock.set_wall(ts)
        store.write(snap(ts, {DISK: {"percent": v, "used_bytes": 1000.0 + k}}))
    return values


def q(
    store: SQLiteStore, start: float, end: float, res: str, agg: str = "mean", mp: int = 1000
) -> SeriesResult:
    return store.query(
        RangeQuery("disk", start, end, (("mount", "/"),), res, agg, mp)  # type: ignore[arg-type]
    )


def test_fresh_store_1h_max_is_the_max_of_the_raw_ticks_marked_partial(
    store: SQLiteStore, clock: FakeClock
) -> None:
    start = T0 + 600.0  # 10 minutes into an hour
    values = disk_ticks(store, clock, start, 90)
    now = clock.time()
    r = q(store, now - 3600, now, "1h", "max")
    assert r.resolution == "1h" and r.timestamps == [T0 - 3600, T0]
    assert r.fields["percent"] == [None, max(values)]
    assert r.fields["used_bytes"] == [None, 1089.0]
    assert r.partial_from == T0


def test_5m_mean_is_the_mean_of_the_raw_values_in_it(store: SQLiteStore, clock: FakeClock) -> None:
    start = T0 + 240.0  # 60 s in the bucket [T0, T0+300), 30 s in the next
    values = disk_ticks(store, clock, start, 90)
    r = q(store, T0, clock.time(), "5m", "mean")
    assert r.timestamps == [T0, T0 + 300]
    first, second = r.fields["percent"]
    assert first == pytest.approx(math.fsum(values[:60]) / 60, rel=1e-12)
    assert second == pytest.approx(math.fsum(values[60:]) / 30, rel=1e-12)
    mins = q(store, T0, clock.time(), "5m", "min").fields["percent"]
    assert mins == [min(values[:60]), min(values[60:])]
    assert r.partial_from == T0


def test_live_bucket_equals_the_rolled_bucket_once_closed(
    store: SQLiteStore, clock: FakeClock
) -> None:
    """Same arithmetic as the rollup: what the edge showed is what maintain stores."""
    disk_ticks(store, clock, T0, 3 * 3600 + 5)  # three closed hours
    before = {
        (res, agg): q(store, T0, T0 + 3 * 3600 - 1, res, agg)
        for res in ("1m", "5m", "1h")
        for agg in ("mean", "min", "max")
    }
    assert all(r.partial_from == T0 for r in before.values()), "nothing rolled up yet"
    for _ in range(200):
        store.maintain(clock.time())
    for (res, agg), live in before.items():
        rolled = q(store, T0, T0 + 3 * 3600 - 1, res, agg)
        assert rolled.partial_from is None, (res, agg)
        assert [repr(v) for v in rolled.fields["percent"]] == [
            repr(v) for v in live.fields["percent"]
        ], (res, agg)


def test_rolled_buckets_unchanged_and_only_the_edge_partial(
    store: SQLiteStore, clock: FakeClock
) -> None:
    first = disk_ticks(store, clock, T0, 7261)  # two hours and a minute
    for _ in range(200):
        store.maintain(clock.time())
    rolled = q(store, T0, T0 + 7199, "5m", "max")
    assert rolled.partial_from is None and None not in rolled.fields["percent"]
    more = disk_ticks(store, clock, T0 + 7261, 70)  # up to T0 + 7330
    store.maintain(clock.time())  # rolls 1m up to T0 + 7320; 5m stays at T0 + 7200
    r = q(store, T0, clock.time(), "5m", "max")
    assert r.fields["percent"][:24] == rolled.fields["percent"], "finished buckets as stored"
    # The open 5m bucket: two stored 1m buckets plus raw ticks not rolled into 1m yet.
    assert r.fields["percent"][24] == max(first[7200:] + more)
    assert r.partial_from == T0 + 7200
    m = q(store, T0 + 7200, clock.time(), "1m", "mean")
    assert m.partial_from == T0 + 7320
    assert m.fields["percent"][2] == pytest.approx(math.fsum(more[59:]) / 11, rel=1e-12)


def test_merged_answer_marks_the_bucket_holding_the_edge(
    store: SQLiteStore, clock: FakeClock
) -> None:
    disk_ticks(store, clock, T0, 3600)
    for _ in range(200):
        store.maintain(clock.time())
    disk_ticks(store, clock, T0 + 3600, 1500)  # 25 min not rolled into 5m... yet
    r = q(store, T0, clock.time(), "1m", "max", mp=10)  # merged: 10-minute steps
    assert r.step_seconds > 60
    assert r.partial_from is not None and r.partial_from in r.timestamps
    assert r.fields["percent"][-1] is not None


def test_raw_answers_are_never_partial(store: SQLiteStore, clock: FakeClock) -> None:
    clock.set_wall(T0)
    store.write(cpu(T0, 5.0))
    r = store.query(RangeQuery("cpu", T0 - 10, T0 + 10, (), "raw"))
    assert r.partial_from is None


def test_no_data_after_the_watermark_is_not_partial(store: SQLiteStore, clock: FakeClock) -> None:
    disk_ticks(store, clock, T0, 600)
    clock.set_wall(T0 + 4 * 3600)
    for _ in range(200):
        store.maintain(clock.time())
    r = q(store, T0 + 3 * 3600, T0 + 4 * 3600, "5m", "mean")
    assert r.partial_from is None and set(r.fields["percent"]) == {None}
