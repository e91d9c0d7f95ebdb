"""Behaviour of SQLiteStore on a real file, driven through simulated days by a fake clock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.errors import QueryError, StorageError, StorageFullError
from sysmon.models import Collected, Sample, Snapshot
from sysmon.storage.base import RangeQuery, TimeSeriesStore
from sysmon.storage.config import RetentionConfig
from sysmon.storage.migrations import LATEST_VERSION
from sysmon.storage.sqlite import SQLiteStore
from tests.storage.helpers import T0, cpu, retention, snap

H = 3600.0
D = 86_400.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make(
    path: Path,
    clock: FakeClock,
    interval: float = 10.0,
    cfg: RetentionConfig | None = None,
    **kw: int,
) -> SQLiteStore:
    store = SQLiteStore(path / "sysmon.db", cfg or RetentionConfig(), interval, clock, **kw)
    store.open()
    return store


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SQLiteStore]:
    s = make(tmp_path, clock)
    yield s
    s.close()


def run(
    store: SQLiteStore, clock: FakeClock, start: float, end: float, step: float, value: object
) -> None:
    """Write one cpu tick every ``step`` in [start, end) and call maintain like the service."""
    t = start
    while t < end:
        clock.set_wall(t)
        v = value(t) if callable(value) else value
        store.write(cpu(t, float(v)))  # type: ignore[arg-type]
        store.maintain(t + 0.2)
        t += step


def settle(store: SQLiteStore, now: float, calls: int = 200) -> None:
    """Call maintain until all bounded work is done (the service calls it every tick)."""
    for _ in range(calls):
        store.maintain(now)


def values(store: SQLiteStore, q: RangeQuery, field: str = "percent") -> list[float | None]:
    return store.query(q).fields[field]


def test_satisfies_protocol(store: SQLiteStore) -> None:
    s: TimeSeriesStore = store
    assert s.ping()


def test_snapshot_round_trip(store: SQLiteStore, clock: FakeClock) -> None:
    ts = T0 + 100
    clock.set_wall(ts + 1)
    store.write(
        snap(
            ts,
            {
                ("cpu", ()): {"percent": 12.5, "load_1": 0.3},
                ("cpu", (("core", "0"),)): {"percent": 10.0},
                ("disk", (("device", "sda"),)): {"read_bytes_per_sec": 1.0 / 3},
                ("disk", (("mount", "/"),)): {"percent": 50.1},
            },
        )
    )
    r = store.query(RangeQuery("cpu", ts, ts, resolution="raw"))
    assert (r.resolution, r.agg, r.step_seconds, r.timestamps) == ("raw", "mean", 10.0, [ts])
    assert r.fields == {"percent": [12.5], "load_1": [0.3]}
    core = store.query(RangeQuery("cpu", ts, ts, labels=(("core", "0"),), resolution="raw"))
    assert core.fields == {"percent": [10.0]}
    sda = store.query(RangeQuery("disk", ts, ts, labels=(("device", "sda"),), resolution="raw"))
    assert sda.fields["read_bytes_per_sec"] == [1.0 / 3]  # full float64 precision
    assert list(store.series("cpu")) == [(), (("core", "0"),)]
    assert list(store.series("disk")) == [(("device", "sda"),), (("mount", "/"),)]
    assert list(store.series("network")) == []


def test_unknown_series_and_bad_parameters(store: SQLiteStore) -> None:
    store.write(cpu(T0, 1.0))
    with pytest.raises(QueryError) as info:
        store.query(RangeQuery("gpu", T0, T0 + 60))
    assert info.value.param == "metric"
    with pytest.raises(QueryError) as info:
        store.query(RangeQuery("cpu", T0, T0 + 60, labels=(("core", "9"),)))
    assert info.value.param == "labels"
    with pytest.raises(QueryError) as info:
        store.query(RangeQuery("cpu", T0 + 60, T0))
    assert info.value.param == "end"
    with pytest.raises(QueryError) as info:
        store.query(RangeQuery("cpu", T0, T0 + 60, max_points=10_001))
    assert info.value.param == "max_points"


def test_raw_grid_gaps_and_slot_mapping(store: SQLiteStore, clock: FakeClock) -> None:
    clock.set_wall(T0 + 120)
    store.write(cpu(T0 + 0.004, 1.0))  # a few ms late
    store.write(cpu(T0 + 19.997, 3.0))  # a few ms early
    store.write(cpu(T0 + 40.0, 5.0, load_1=2.0))  # a field that only this tick has
    r = store.query(RangeQuery("cpu", T0, T0 + 60, resolution="raw"))
    assert r.timestamps == [T0 + 10 * i for i in range(7)]
    assert r.fields["percent"] == [1.0, None, 3.0, None, 5.0, None, None]
    assert r.fields["load_1"] == [None, None, None, None, 2.0, None, None]


def test_one_minute_buckets_exact_aggregates_and_boundaries(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = make(tmp_path, clock, interval=10.0)
    # Minute 0: 0..5; minute 1: a counter-reset-like collapse inside the bucket.
    seq = [0, 1, 2, 3, 4, 5, 100, 200, 5, 10, 300, 50]
    for i, v in enumerate(seq):
        clock.set_wall(T0 + 10 * i)
        store.write(cpu(T0 + 10 * i, float(v)))
    settle(store, T0 + 130)
    q = RangeQuery("cpu", T0, T0 + 60, resolution="1m")
    assert values(store, q) == [2.5, 665 / 6]
    assert values(store, RangeQuery("cpu", T0, T0 + 60, resolution="1m", agg="min")) == [0.0, 5.0]
    assert values(store, RangeQuery("cpu", T0, T0 + 60, resolution="1m", agg="max")) == [5.0, 300.0]
    # The tick at exactly T0+60 opens minute 1; the one at T0+50 closes minute 0.
    assert store.query(q).timestamps == [T0, T0 + 60]
    store.close()


def test_five_minute_and_hour_tiers_are_count_weighted(tmp_path: Path, clock: FakeClock) -> None:
    store = make(tmp_path, clock, interval=30.0)
    # Hour 0: value = minute index (0..59), two ticks per minute; minute 7 is missing.
    for m in range(60):
        if m == 7:
            continue
        for s in (0, 30):
            t = T0 + 60 * m + s
            clock.set_wall(t)
            store.write(cpu(t, float(m)))
    now = T0 + H + 60
    clock.set_wall(now)
    settle(store, now)
    m5 = store.query(RangeQuery("cpu", T0, T0 + H - 1, resolution="5m"))
    assert m5.step_seconds == 300
    assert m5.fields["percent"][0] == 2.0
    assert m5.fields["percent"][1] == (5 + 6 + 8 + 9) / 4  # weighted by count, gap skipped
    h1 = store.query(RangeQuery("cpu", T0, T0, resolution="1h"))
    expected = (sum(range(60)) - 7) / 59
    assert h1.fields["percent"] == [pytest.approx(expected, rel=1e-15)]
    assert store.query(RangeQuery("cpu", T0, T0, resolution="1h", agg="max")).fields["percent"] == [
        59.0
    ]
    store.close()


@pytest.mark.parametrize(
    ("seconds", "resolution", "step"),
    [
        (300, "raw", 1.0),
        (H, "1m", 60.0),
        (24 * H, "5m", 300.0),
        (7 * D, "1h", 3600.0),
        (30 * D, "1h", 3600.0),
        (365 * D, "1h", 9 * 3600.0),  # 8761 hourly points > 1000: 9 buckets merged
    ],
)
def test_auto_resolution(
    tmp_path: Path, clock: FakeClock, seconds: float, resolution: str, step: float
) -> None:
    store = make(tmp_path, clock, interval=1.0)
    now = T0 + 400 * D
    clock.set_wall(now)
    store.write(cpu(now - 1, 1.0))
    r = store.query(RangeQuery("cpu", now - seconds, now))
    assert (r.resolution, r.step_seconds) == (resolution, step)
    assert len(r.timestamps) <= 1000
    assert r.timestamps[0] <= now - seconds < r.timestamps[0] + step
    assert r.timestamps[-1] <= now < r.timestamps[-1] + step
    assert all(b - a == step for a, b in zip(r.timestamps, r.timestamps[1:], strict=False))
    store.close()


def test_max_points_merges_buckets(store: SQLiteStore, clock: FakeClock) -> None:
    run(store, clock, T0, T0 + 600, 10.0, lambda t: (t - T0) / 10)
    r = store.query(RangeQuery("cpu", T0, T0 + 590, resolution="raw", max_points=10))
    assert (r.resolution, r.step_seconds, len(r.timestamps)) == ("raw", 60.0, 10)
    assert r.fields["percent"] == [2.5 + 6 * i for i in range(10)]
    mx = store.query(RangeQuery("cpu", T0, T0 + 590, resolution="raw", max_points=10, agg="max"))
    assert mx.fields["percent"][:2] == [5.0, 11.0]
    settle(store, T0 + 700)
    m1 = store.query(RangeQuery("cpu", T0, T0 + 599, resolution="1m", max_points=5))
    assert (m1.resolution, m1.step_seconds) == ("1m", 120.0)
    assert m1.fields["percent"] == [pytest.approx(5.5 + 12 * i, rel=1e-12) for i in range(5)]
    lo = store.query(RangeQuery("cpu", T0, T0 + 599, resolution="1m", max_points=5, agg="min"))
    assert lo.fields["percent"] == [12.0 * i for i in range(5)]


def test_range_older_than_raw_is_served_by_coarser_tier(tmp_path: Path, clock: FakeClock) -> None:
    cfg = retention(raw="2h", m1="6h", m5="1d", h1="3d")
    store = make(tmp_path, clock, interval=60.0, cfg=cfg)
    run(store, clock, T0, T0 + 4 * H, 60.0, 7.0)
    now = T0 + 4 * H
    clock.set_wall(now)
    settle(store, now)
    # The raw tier reaches back exactly 2 h: a range starting there is still raw ...
    assert store.query(RangeQuery("cpu", now - 2 * H, now, resolution="raw")).resolution == "raw"
    # ... one second earlier needs the 1m tier, and auto agrees.
    older = store.query(RangeQuery("cpu", now - 2 * H - 1, now, resolution="raw"))
    assert older.resolution == "1m"
    assert older.fields["percent"][0] == 7.0
    assert store.query(RangeQuery("cpu", now - 2 * H - 1, now)).resolution == "1m"
    assert store.query(RangeQuery("cpu", now - 6 * H - 1, now)).resolution == "5m"
    store.close()


def test_retention_deletes_each_tier_at_its_boundary(tmp_path: Path, clock: FakeClock) -> None:
    cfg = retention(raw="2h", m1="6h", m5="1d", h1="3d")
    store = make(tmp_path, clock, interval=60.0, cfg=cfg)
    run(store, clock, T0, T0 + 3 * H, 60.0, 1.0)
    settle(store, T0 + 3 * H)

    def rows(tier: str) -> int:
        s = store.stats().rows
        return s[f"{tier}.hot"] + s[f"{tier}.chunks"]

    assert all(rows(t) > 0 for t in ("raw", "1m", "5m", "1h"))
    # Raw keeps 2 h: data ended at 3 h, so at 5 h + one chunk window all raw rows are gone.
    settle(store, T0 + 5 * H + 1800)
    assert rows("raw") == 0 and rows("1m") > 0
    settle(store, T0 + 9 * H + 6 * H)
    assert rows("1m") == 0 and rows("5m") > 0
    settle(store, T0 + 3 * H + 2 * D)
    assert rows("5m") == 0 and rows("1h") > 0
    settle(store, T0 + 3 * H + 3 * D + 7 * D)
    assert rows("1h") == 0
    # What is gone is a gap, never an error.
    now = T0 + 3 * H + 3 * D + 7 * D
    clock.set_wall(now)
    r = store.query(RangeQuery("cpu", now - 3 * D, now))
    assert set(r.fields["percent"]) == {None}
    store.close()


def test_expired_slots_are_masked_before_deletion(tmp_path: Path, clock: FakeClock) -> None:
    cfg = retention(raw="2h", m1="6h", m5="1d", h1="3d")
    store = make(tmp_path, clock, interval=60.0, cfg=cfg)
    run(store, clock, T0, T0 + 3 * H, 60.0, 1.0)
    now = T0 + 4 * D  # beyond every tier; chunks may still exist until maintain runs
    clock.set_wall(now)
    r = store.query(RangeQuery("cpu", T0, T0 + 3 * H, resolution="1h"))
    assert r.resolution == "1h"
    assert set(r.fields["percent"]) == {None}
    store.close()


def test_catch_up_after_outage_keeps_gaps(tmp_path: Path, clock: FakeClock) -> None:
    store = make(tmp_path, clock, interval=10.0)
    run(store, clock, T0, T0 + H, 10.0, 1.0)
    store.close()
    # 3 hours down: nothing written, maintain not called. Then back up.
    store = make(tmp_path, clock, interval=10.0)
    run(store, clock, T0 + 4 * H, T0 + 5 * H, 10.0, 3.0)
    now = T0 + 6 * H
    clock.set_wall(now)
    settle(store, now)
    m1 = store.query(RangeQuery("cpu", T0, T0 + 5 * H - 60, resolution="1m", max_points=10_000))
    p = m1.fields["percent"]
    assert p[:60] == [1.0] * 60
    assert p[60:240] == [None] * 180
    assert p[240:300] == [3.0] * 60
    h1 = store.query(RangeQuery("cpu", T0, T0 + 4 * H, resolution="1h"))
    assert h1.fields["percent"] == [1.0, None, None, None, 3.0]
    store.close()


def _all_tiers(store: SQLiteStore, start: float, end: float) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for res in ("raw", "1m", "5m", "1h"):
        for agg in ("mean", "min", "max"):
            q = RangeQuery("cpu", start, end, resolution=res, agg=agg, max_points=10_000)  # type: ignore[arg-type]
            out[f"{res}/{agg}"] = store.query(q).fields["percent"]
    return out


def test_rollups_idempotent_across_restarts(tmp_path: Path) -> None:
    def value(t: float) -> float:
        return float(int(t) % 97)

    clock_a = FakeClock(T0)
    a = make(tmp_path / "a", clock_a, interval=10.0)
    run(a, clock_a, T0, T0 + 3 * H, 10.0, value)
    settle(a, T0 + 3 * H + 120)
    ref = _all_tiers(a, T0, T0 + 3 * H)

    # Same data, but the process restarts (reopens the file) every 7 minutes, and after
    # the last restart maintain runs twice as often as needed.
    clock_b = FakeClock(T0)
    b = make(tmp_path / "b", clock_b, interval=10.0)
    t = T0
    while t < T0 + 3 * H:
        run(b, clock_b, t, min(t + 420, T0 + 3 * H), 10.0, value)
        b.close()
        b = make(tmp_path / "b", clock_b, interval=10.0)
        t += 420
    settle(b, T0 + 3 * H + 120)
    b.close()
    b = make(tmp_path / "b", clock_b, interval=10.0)
    settle(b, T0 + 3 * H + 120)
    assert _all_tiers(b, T0, T0 + 3 * H) == ref
    assert sum(v is not None for v in ref["1m/mean"]) == 180
    with sqlite3.connect(tmp_path / "b" / "sysmon.db") as conn:
        dup = conn.execute(
            "SELECT count(*) FROM (SELECT tier, series_id, ts FROM hot "
            "GROUP BY 1, 2, 3 HAVING count(*) > 1)"
        ).fetchone()[0]
    assert dup == 0
    a.close()
    b.close()


def test_late_write_is_rolled_up(store: SQLiteStore, clock: FakeClock) -> None:
    run(store, clock, T0, T0 + 600, 10.0, 1.0)
    settle(store, T0 + 600)
    assert values(store, RangeQuery("cpu", T0 + 120, T0 + 120, resolution="1m")) == [1.0]
    # A buffered tick replayed after a failure lands in an already rolled-up minute.
    store.write(cpu(T0 + 125, 7.0))
    settle(store, T0 + 610)
    assert values(store, RangeQuery("cpu", T0 + 120, T0 + 120, resolution="1m")) == [2.0]
    assert values(store, RangeQuery("cpu", T0 + 120, T0 + 120, resolution="1m", agg="max")) == [7.0]


def test_late_write_into_compacted_window(store: SQLiteStore, clock: FakeClock) -> None:
    run(store, clock, T0, T0 + 2 * H, 10.0, 1.0)
    settle(store, T0 + 2 * H)
    assert store.stats().rows["raw.chunks"] >= 2
    store.write(cpu(T0 + 5, 9.0))  # slot T0+10 already held 1.0 in a chunk
    settle(store, T0 + 2 * H + 60)
    r = store.query(RangeQuery("cpu", T0, T0 + 20, resolution="raw"))
    assert r.fields["percent"] == [1.0, 9.0, 1.0]
    assert store.stats().rows["raw.hot"] < 720


def test_maintain_is_cheap_when_nothing_is_due(store: SQLiteStore, clock: FakeClock) -> None:
    run(store, clock, T0, T0 + 2 * H, 10.0, 1.0)
    settle(store, T0 + 2 * H + 0.5)
    statements: list[str] = []
    store._writer_conn().set_trace_callback(statements.append)
    store.maintain(T0 + 2 * H + 0.6)
    assert statements == []


def test_process_history(tmp_path: Path, clock: FakeClock) -> None:
    cfg = RetentionConfig(
        tiers=retention(raw="2h", m1="6h", m5="1d", h1="3d").tiers, processes_every="30s"
    )
    store = make(tmp_path, clock, interval=10.0, cfg=cfg)
    for i in range(360):  # one hour
        t = T0 + 10 * i
        clock.set_wall(t)
        rows = [
            {"pid": 1, "name": "init", "cpu_percent": float(i)},
            {"pid": 2, "name": "x", "cpu_percent": 0.5},
        ]
        store.write(snap(t, {("processes", ()): {"count": 2.0}}, processes=rows))
        store.maintain(t + 0.2)
    settle(store, T0 + H)
    assert store.stats().rows["processes.chunks"] >= 1
    found = store.query_processes(T0 + 125)  # stored every 30 s: T0+120 is the nearest before
    assert found is not None
    assert found[0] == T0 + 120
    assert found[1][0] == {"pid": 1, "name": "init", "cpu_percent": 12.0}
    assert store.query_processes(T0 + 3590) == (
        T0 + 3570,
        [
            {"pid": 1, "name": "init", "cpu_percent": 357.0},
            {"pid": 2, "name": "x", "cpu_percent": 0.5},
        ],
    )
    assert store.query_processes(T0 - 1) is None
    assert store.query_processes(T0 + 2 * H) is None  # nothing within 2 x 30 s
    # Kept as long as raw (2 h).
    settle(store, T0 + 4 * H)
    assert store.query_processes(T0 + 125) is None
    store.close()


def test_process_every_tick(store: SQLiteStore, clock: FakeClock) -> None:
    cfg_store = SQLiteStore(store._path + "2", RetentionConfig(processes_every="0s"), 10.0, clock)
    cfg_store.open()
    for i in range(3):
        cfg_store.write(snap(T0 + 10 * i, {}, processes=[{"pid": i}]))
    assert cfg_store.query_processes(T0 + 15) == (T0 + 10, [{"pid": 1}])
    cfg_store.close()


def test_disk_full_maps_to_storage_full_and_stores_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = make(tmp_path, clock, interval=1.0, max_size_bytes=64 * 1024)
    store.write(cpu(T0, 1.0))
    big = snap(
        T0 + 1,
        {
            ("disk", (("device", f"d{i}"),)): {f"f{j}": float(j) for j in range(60)}
            for i in range(400)
        },
    )
    with pytest.raises(StorageFullError, match="disk full"):
        store.write(big)
    assert store.stats().last_write_error is not None
    # Nothing of the failed tick is there, the store still works.
    assert store.series("disk") == []
    store.write(cpu(T0 + 2, 3.0))
    clock.set_wall(T0 + 3)
    assert values(store, RangeQuery("cpu", T0, T0 + 2, resolution="raw")) == [1.0, None, 3.0]
    assert store.stats().last_write_error is None
    store.close()


def test_other_errors_are_storage_error(tmp_path: Path, clock: FakeClock) -> None:
    store = make(tmp_path, clock)
    store.close()
    with pytest.raises(StorageError):
        store.write(cpu(T0, 1.0))
    assert not store.ping()


def test_ping_false_when_file_is_gone(tmp_path: Path, clock: FakeClock) -> None:
    store = make(tmp_path, clock)
    assert store.ping()
    (tmp_path / "sysmon.db").unlink()
    assert store.ping() is False
    store.close()


def test_schema_version_and_newer_file_refused(tmp_path: Path, clock: FakeClock) -> None:
    store = make(tmp_path, clock)
    store.close()
    with sqlite3.connect(tmp_path / "sysmon.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    with pytest.raises(StorageError, match="newer than this sysmon supports"):
        make(tmp_path, clock)


def test_concurrent_reads_during_writes(store: SQLiteStore, clock: FakeClock) -> None:
    errors: list[BaseException] = []
    seen: list[int] = []
    stop = threading.Event()
    clock.set_wall(T0 + 3000)

    def reader() -> None:
        try:
            while not stop.is_set():
                r = store.query(RangeQuery("cpu", T0, T0 + 2990, resolution="raw"))
                p, l1 = r.fields["percent"], r.fields.get("load_1", [])
                # Both fields come from the same tick row: never one without the other.
                assert all((a is None) == (b is None) for a, b in zip(p, l1, strict=True))
                seen.append(sum(v is not None for v in p))
                store.stats()
                store.series("cpu")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    store.write(cpu(T0, 0.0, load_1=0.0))
    threads = [threading.Thread(target=reader) for _ in range(3)]
    for th in threads:
        th.start()
    for i in range(1, 300):
        store.write(cpu(T0 + 10 * i, float(i), load_1=float(i)))
        store.maintain(T0 + 10 * i + 1)
    stop.set()
    for th in threads:
        th.join()
    assert errors == []
    assert len(seen) > 0
    assert values(store, RangeQuery("cpu", T0, T0 + 2990, resolution="raw"))[-1] == 299.0


def test_file_shrinks_after_retention(tmp_path: Path, clock: FakeClock) -> None:
    cfg = retention(raw="2h", m1="6h", m5="1d", h1="3d")
    store = make(tmp_path, clock, interval=1.0, cfg=cfg)
    wide = {
        ("net", (("interface", f"eth{i}"),)): {f"f{j}": 0.0 for j in range(8)} for i in range(20)
    }
    for i in range(0, 1500):
        t = T0 + i
        for fields in wide.values():
            for k in fields:
                fields[k] = (i * 7919 + hash(k)) % 100003 / 7.0
        store.write(snap(t, wide))
    store._writer_conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    big = store.stats().size_bytes
    assert big is not None
    settle(store, T0 + 20 * D, calls=400)
    store._writer_conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    small = store.stats().size_bytes
    assert small is not None and small < big / 2
    store.close()


def test_snapshot_with_collector_rows_only(store: SQLiteStore) -> None:
    # A tick with no samples at all (every collector failed) is fine.
    store.write(Snapshot(timestamp=T0, results={}, errors={"cpu": "boom"}))
    store.write(
        Snapshot(
            timestamp=T0 + 10, results={"cpu": Collected(samples=(Sample("cpu", "percent", 1.0),))}
        )
    )
    assert list(store.series("cpu")) == [()]


def test_shared_file_with_other_tables_gets_incremental_vacuum(
    tmp_path: Path, clock: FakeClock
) -> None:
    # The alert store may create its tables in the same file before the metrics store.
    with sqlite3.connect(tmp_path / "sysmon.db") as conn:
        conn.execute("CREATE TABLE alert_meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO alert_meta VALUES ('schema_version', '1')")
    store = make(tmp_path, clock)
    store.write(cpu(T0, 1.0))
    store.close()
    with sqlite3.connect(tmp_path / "sysmon.db") as conn:
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert conn.execute("SELECT value FROM alert_meta").fetchone()[0] == "1"
