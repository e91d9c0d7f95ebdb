"""SQLiteStore's bounded resources: pooled read connections, query cost bounded by
``max_points`` (not by the span asked for), and ``stats`` without SQL."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from sysmon.clock import FakeClock
from sysmon.errors import QueryError
from sysmon.storage import sqlite as sqlite_mod
from sysmon.storage.base import RangeQuery
from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import READER_POOL_SIZE, SQLiteStore
from tests.storage.helpers import T0, cpu, retention, snap

H = 3600.0
D = 86_400.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make(
    tmp_path: Path, clock: FakeClock, interval: float = 10.0, cfg: RetentionConfig | None = None
) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "sysmon.db", cfg or RetentionConfig(), interval, clock)
    store.open()
    return store


def fds_on(db: Path) -> int:
    names = {str(db), f"{db}-wal"}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") in names
        except OSError:
            continue
    return count


def traced(store: SQLiteStore) -> list[str]:
    """Statements run by every connection the store opens from now on."""
    seen: list[str] = []
    connect = store._connect

    def tracing_connect() -> sqlite3.Connection:
        conn = connect()
        conn.set_trace_callback(seen.append)
        return conn

    store._connect = tracing_connect  # type: ignore[method-assign]
    return seen


# ---------------------------------------------------------------- read connection pool
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="/proc/self/fd")
def test_concurrent_readers_share_a_bounded_pool_closed_by_close(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = make(tmp_path, clock)
    db = tmp_path / "sysmon.db"
    clock.set_wall(T0 + 60)
    store.write(cpu(T0, 4.0))
    writer_fds = fds_on(db)
    n = 3 * READER_POOL_SIZE
    barrier = threading.Barrier(n)
    got: list[list[float | None]] = []

    def reader() -> None:
        barrier.wait()
        for _ in range(20):
            got.append(store.query(RangeQuery("cpu", T0, T0, resolution="raw")).fields["percent"])

    threads = [threading.Thread(target=reader) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == [[4.0]] * (20 * n)
    # Each pooled connection holds the file and its WAL: at most the pool's worth.
    assert 0 < fds_on(db) - writer_fds <= 2 * READER_POOL_SIZE
    store.close()
    assert fds_on(db) == 0


def test_pooled_connection_never_keeps_a_stale_snapshot(tmp_path: Path, clock: FakeClock) -> None:
    cfg = RetentionConfig(tiers=retention().tiers, processes_every="0s")
    store = make(tmp_path, clock, cfg=cfg)
    # Two process windows, so query_processes looks at two chunks and answers from the
    # first: the old code stopped reading its cursor there.
    for i in range(400):
        t = T0 + 1790 + 10 * i
        clock.set_wall(t)
        store.write(snap(t, {("cpu", ()): {"percent": float(i)}}, processes=[{"pid": i}]))
        store.maintain(t + 0.2)
    for _ in range(50):
        store.maintain(T0 + 2 * H)
    assert store.stats().rows["processes.chunks"] >= 2
    end = T0 + 1790 + 3990

    def every_read() -> None:
        assert store.query_processes(T0 + 1800 + 5) == (T0 + 1800, [{"pid": 1}])
        store.query(RangeQuery("cpu", T0, end, resolution="raw"))
        store.query(RangeQuery("cpu", T0, end, resolution="raw", max_points=7))
        assert store.series("cpu") == [()]
        assert store.ping()
        with pytest.raises(QueryError):
            store.query(RangeQuery("nope", T0, end))

    for _ in range(2):
        th = threading.Thread(target=every_read)
        th.start()
        th.join()
    # A new tick, then a checkpoint: no pooled reader may pin a snapshot older than it
    # (the checkpoint could not copy the newest frames, the next reader would miss it).
    store.write(cpu(end + 10, 99.0))
    writer = store._writer_conn()
    busy, log_frames, done = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, done) == (0, log_frames)
    result: list[float | None] = []
    th = threading.Thread(
        target=lambda: result.extend(
            store.query(RangeQuery("cpu", end + 10, end + 10, resolution="raw")).fields["percent"]
        )
    )
    th.start()
    th.join()
    assert result == [99.0]
    store.close()


# ---------------------------------------------------------------- query cost
def test_query_from_1970_is_max_points_buckets_and_fills_only_stored_slots(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make(tmp_path, clock, interval=1.0)
    now = T0 + 2 * H
    for i in range(3 * 60):
        clock.set_wall(T0 + i)
        store.write(cpu(T0 + i, float(i % 60)))
    for t in range(int(T0) + 240, int(now), 60):  # rollups advance as data arrives
        store.write(cpu(float(t), 29.5))
    clock.set_wall(now)
    for _ in range(100):
        store.maintain(now)
    filled: list[int] = []
    fill = SQLiteStore._fill

    def counting_fill(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        filled.append(args[4])  # (conn, tier, sid, t0, n, nfields): n slots
        return fill(self, *args, **kwargs)

    monkeypatch.setattr(SQLiteStore, "_fill", counting_fill)
    r = store.query(RangeQuery("cpu", 0.0, now))
    assert r.resolution == "1h" and 990 <= len(r.timestamps) <= 1000
    present = [(t, v) for t, v in zip(r.timestamps, r.fields["percent"], strict=True) if v]
    assert len(present) == 1 and present[0][0] <= T0 < present[0][0] + r.step_seconds
    assert present[0][1] == pytest.approx(29.5)  # mean of 0..59, three times over
    # Half a million hourly slots were asked for; only the buckets with data were filled.
    assert sum(filled) <= 2 * r.step_seconds / 3600
    with pytest.raises(QueryError) as err:
        store.query(RangeQuery("cpu", -1.0, now))
    assert err.value.param == "start"
    store.close()


def test_one_bucket_over_far_apart_data_merges_every_segment(
    tmp_path: Path, clock: FakeClock
) -> None:
    """max_points=1 over months: the merge factor is huge, so segments are filled apart
    and combined per bucket (count-weighted mean, min of mins, max of maxes)."""
    store = make(tmp_path, clock, interval=10.0)
    for t, v in (
        (T0, 1.0),
        (T0 + 10, 2.0),
        (T0 + 20, 3.0),
        (T0 + 20 * H, 10.0),
        (T0 + 20 * H + 10, 20.0),
    ):
        clock.set_wall(t)
        store.write(cpu(t, v))
    clock.set_wall(T0 + 21 * H)

    def one(agg: str, res: str = "raw") -> list[float | None]:
        q = RangeQuery("cpu", T0, T0 + 21 * H, resolution=res, agg=agg, max_points=1)  # type: ignore[arg-type]
        return store.query(q).fields["percent"]

    assert one("mean") == [pytest.approx(36 / 5)]
    assert (one("min"), one("max")) == ([1.0], [20.0])
    # Rollup tier: two hourly buckets 300 days apart (one compacted, one hot).
    hourly: list[
        tuple[str, tuple[tuple[str, str], ...], float, dict[str, tuple[float, float, float, float]]]
    ] = [
        ("cpu", (), T0 - 300 * D, {"percent": (2.0, 1.0, 3.0, 10.0)}),
        ("cpu", (), T0 - 1 * D, {"percent": (8.0, 5.0, 9.0, 30.0)}),
    ]
    store.close()
    store = SQLiteStore(tmp_path / "hourly.db", RetentionConfig(), 10.0, clock)
    store.open()
    store.import_buckets("1h", hourly)
    for _ in range(50):
        store.maintain(T0)
    clock.set_wall(T0)
    q = RangeQuery("cpu", T0 - 320 * D, T0 - H, resolution="1h", max_points=1)
    r = store.query(q)
    assert r.step_seconds > sqlite_mod.ALIGN_FACTOR_LIMIT * 3600
    assert r.fields["percent"] == [pytest.approx((2 * 10 + 8 * 30) / 40)]
    assert store.query(
        RangeQuery("cpu", q.start, q.end, resolution="1h", agg="max", max_points=1)
    ).fields["percent"] == [9.0]
    store.close()


# ---------------------------------------------------------------- stats
def exact_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        out: dict[str, int] = {}
        for name, code in (("raw", 0), ("1m", 1), ("5m", 2), ("1h", 3)):
            for table, suffix in (("hot", "hot"), ("chunk", "chunks")):
                q = f"SELECT count(*) FROM {table} WHERE tier = ?"
                out[f"{name}.{suffix}"] = conn.execute(q, (code,)).fetchone()[0]
        for table, key in (("proc_hot", "processes.hot"), ("proc_chunk", "processes.chunks")):
            out[key] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        out["series"] = conn.execute("SELECT count(*) FROM series").fetchone()[0]
        return out
    finally:
        conn.close()


def test_stats_runs_no_sql_and_its_row_counts_stay_exact(tmp_path: Path, clock: FakeClock) -> None:
    cfg = RetentionConfig(
        tiers=retention(raw="2h", m1="6h", m5="1d", h1="3d").tiers, processes_every="30s"
    )
    store = make(tmp_path, clock, interval=60.0, cfg=cfg)
    db = tmp_path / "sysmon.db"
    statements = traced(store)
    for i in range(6 * 60):
        t = T0 + 60 * i
        clock.set_wall(t)
        series = {
            ("cpu", ()): {"percent": float(i)},
            ("disk", (("device", f"d{i // 90}"),)): {"r": 1.0},
        }
        store.write(snap(t, series, processes=[{"pid": i}]))
        if i % 50 == 7:  # a replayed tick (replaces its rows) and a late one (new rows)
            store.write(snap(t, series, processes=[{"pid": i}]))
            store.write(cpu(t - 3 * H, 5.0))
        store.maintain(t + 1)
        if i % 60 == 0:
            assert store.stats().rows == exact_counts(db)
    for t in (T0 + 7 * H, T0 + 12 * H, T0 + 2 * D, T0 + 5 * D):
        for _ in range(100):
            store.maintain(t)
        assert store.stats().rows == exact_counts(db)
    statements.clear()
    stats = store.stats()
    assert statements == []
    assert stats.size_bytes and stats.size_bytes > 0
    assert stats.rows == exact_counts(db)
    store.close()
    reopened = make(tmp_path, clock, interval=60.0, cfg=cfg)
    assert reopened.stats().rows == exact_counts(db)
    # After a reopen the first write learns the newest stored slot: the last tick
    # replayed replaces its rows, a newer one adds them (no lookup needed for it).
    last = T0 + 60 * (6 * 60 - 1)
    reopened.write(cpu(last, 1.0))
    reopened.write(cpu(last + 60, 2.0))
    reopened.write(cpu(last + 60, 3.0))
    assert reopened.stats().rows == exact_counts(db)
    reopened.close()
