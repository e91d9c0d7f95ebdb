"""VictoriaStore against a real VictoriaMetrics server (Debian's ``victoria-metrics``).

Every test writes snapshots built by hand at fixed past timestamps (``T0`` is a UTC
midnight in 2023) and reads them back through the store, so numbers are exact. One
server serves the module; each test writes under its own ``host`` label, which the store
puts on every series and filters every read by, so tests never see each other's data.
After writing, ``vm.flush()`` (``/internal/force_flush``) makes the rows searchable:
the server otherwise buffers them for a second or two, and a test would have to poll.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from sysmon.agent.writer import BufferedWriter
from sysmon.clock import FakeClock
from sysmon.errors import QueryError, StorageError
from sysmon.models import Labels, Snapshot
from sysmon.storage.base import NativeResolution, RangeQuery, TimeSeriesStore
from sysmon.storage.victoria import (
    VictoriaStore,
    encode_snapshot,
    plan_query,
    range_expression,
    retention_period_seconds,
)
from tests.storage.helpers import T0, cpu, retention, snap
from tests.support.process import free_port
from tests.support.victoria import VictoriaServer, victoria_server

IMPORT_PATH = "/api/v1/import/prometheus"


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaServer]:
    with victoria_server(tmp_path_factory.mktemp("victoria")) as server:
        yield server


def _host(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)


@pytest.fixture
def store(vm: VictoriaServer, request: pytest.FixtureRequest) -> Iterator[VictoriaStore]:
    s = VictoriaStore(vm.url, clock=FakeClock(T0 + 86_400), host=_host(request))
    s.open()
    yield s
    s.close()


def write_all(store: VictoriaStore, vm: VictoriaServer, snapshots: Sequence[Snapshot]) -> None:
    for snapshot in snapshots:
        store.write(snapshot)
    vm.flush()


def raw(
    store: VictoriaStore, start: float, end: float, metric: str = "cpu", labels: Labels = ()
) -> dict[str, list[float | None]]:
    """Every field of one series group at the raw step."""
    return store.query(RangeQuery(metric, start, end, labels=labels, resolution="raw")).fields


# --------------------------------------------------------------------------- reads


def test_raw_resolution_returns_each_tick_with_gaps_and_absent_fields(
    store: VictoriaStore, vm: VictoriaServer
) -> None:
    ticks = [cpu(T0, 12.5)]  # first tick: no rate yet
    ticks += [cpu(T0 + i, 12.5 + i, ctx_switches_per_sec=100.0 * i) for i in (1, 2, 4)]  # 3 lost
    write_all(store, vm, ticks)

    result = store.query(RangeQuery("cpu", T0, T0 + 5, resolution="raw", agg="max"))

    assert result.metric == "cpu"
    assert result.labels == ()
    assert (result.resolution, result.agg, result.step_seconds) == ("raw", "max", 1.0)
    assert result.timestamps == [T0 + i for i in range(6)]
    assert result.fields == {
        "percent": [12.5, 13.5, 14.5, None, 16.5, None],
        "ctx_switches_per_sec": [None, 100.0, 200.0, None, 400.0, None],
    }


def test_raw_slot_is_the_nearest_tick_like_sqlite(store: VictoriaStore, vm: VictoriaServer) -> None:
    """A tick a few hundred ms early or late belongs to its own second:
    ``floor(ts + 0.5)``, the SQLite store's slot rule."""
    write_all(
        store,
        vm,
        [cpu(T0 + 0.4, 1.0), cpu(T0 + 1.6, 2.0), cpu(T0 + 3.5, 3.0), cpu(T0 + 5.499, 4.0)],
    )

    result = store.query(RangeQuery("cpu", T0, T0 + 6, resolution="raw"))

    assert result.fields["percent"] == [1.0, None, 2.0, None, 3.0, 4.0, None]


def _minute_ticks(minutes: int, skip_minute: int | None = None) -> list[Snapshot]:
    """One tick a second; the value walks a sawtooth so min, max and mean all differ."""
    return [
        cpu(T0 + i, float((i * 7) % 23) + 0.25, load_1=(i % 60) / 4)
        for i in range(minutes * 60)
        if skip_minute is None or i // 60 != skip_minute
    ]


@pytest.mark.parametrize(
    ("agg", "reduce"),
    [("mean", statistics.fmean), ("min", min), ("max", max)],
)
def test_one_minute_buckets_aggregate_exactly_their_own_samples(
    store: VictoriaStore, vm: VictoriaServer, agg: str, reduce: object
) -> None:
    ticks = _minute_ticks(4, skip_minute=2)
    write_all(store, vm, ticks)
    assert callable(reduce)

    result = store.query(RangeQuery("cpu", T0 + 10, T0 + 239, resolution="1m", agg=agg))  # type: ignore[arg-type]

    assert (result.resolution, result.step_seconds) == ("1m", 60.0)
    assert result.timestamps == [T0, T0 + 60, T0 + 120, T0 + 180]
    for field in ("percent", "load_1"):
        expected: list[float | None] = []
        for m in range(4):
            bucket = [
                s.value
                for t in ticks
                for s in t.samples()
                if s.field == field and m * 60 <= t.timestamp - T0 < (m + 1) * 60
            ]
            expected.append(reduce(bucket) if bucket else None)
        assert result.fields[field] == expected, field
    # A sample exactly on a boundary starts the next bucket: minute 1's min of load_1 is
    # 0.0 (second 60), not minute 0's 14.75.
    if agg == "min":
        assert result.fields["load_1"][1] == 0.0


def test_coarser_steps_and_merging_fit_max_points(store: VictoriaStore, vm: VictoriaServer) -> None:
    ticks = [cpu(T0 + 10 * i, float(i % 30)) for i in range(6 * 60)]  # one hour, 10 s apart
    write_all(store, vm, ticks)
    values = [float(i % 30) for i in range(6 * 60)]

    five = store.query(RangeQuery("cpu", T0, T0 + 3599, resolution="5m", agg="max"))
    assert (five.resolution, five.step_seconds, len(five.timestamps)) == ("5m", 300.0, 12)
    assert five.fields["percent"] == [max(values[k * 30 : (k + 1) * 30]) for k in range(12)]

    hour = store.query(RangeQuery("cpu", T0, T0 + 3599, resolution="1h", agg="mean"))
    assert (hour.resolution, hour.step_seconds, hour.timestamps) == ("1h", 3600.0, [T0])
    assert hour.fields["percent"] == [statistics.fmean(values)]

    # 1m asked for, but 60 points do not fit in 20: buckets of 3 minutes, still "1m".
    merged = store.query(
        RangeQuery("cpu", T0, T0 + 3599, resolution="1m", agg="min", max_points=20)
    )
    assert (merged.resolution, merged.step_seconds, len(merged.timestamps)) == ("1m", 180.0, 20)
    assert merged.fields["percent"] == [min(values[k * 18 : (k + 1) * 18]) for k in range(20)]

    # auto: the finest step with at most max_points points.
    auto = store.query(RangeQuery("cpu", T0, T0 + 3599, resolution="auto", max_points=100))
    assert (auto.resolution, auto.step_seconds) == ("1m", 60.0)
    assert auto.fields["percent"][0] == statistics.fmean(values[:6])


def test_labelled_series_are_kept_apart(store: VictoriaStore, vm: VictoriaServer) -> None:
    odd_mount = '/mnt/my "data" é\\x'
    write_all(
        store,
        vm,
        [
            snap(
                T0 + i,
                {
                    ("disk", ()): {"percent": 40.0 + i, "read_bytes_per_sec": 1000.0 * i},
                    ("disk", (("device", "sda"),)): {
                        "read_bytes_per_sec": 600.0 * i,
                        "busy_percent": 3.5,
                    },
                    ("disk", (("device", "sdb"),)): {
                        "read_bytes_per_sec": 400.0 * i,
                        "busy_percent": 1.25,
                    },
                    ("disk", (("mount", "/"),)): {
                        "percent": 50.0,
                        "total_bytes": 512_110_190_592.0,
                    },
                    ("disk", (("mount", odd_mount),)): {"percent": 30.0 + i},
                },
            )
            for i in range(3)
        ],
    )

    assert store.series("disk") == [
        (),
        (("device", "sda"),),
        (("device", "sdb"),),
        (("mount", "/"),),
        (("mount", odd_mount),),
    ]
    assert raw(store, T0, T0 + 2, "disk") == {
        "percent": [40.0, 41.0, 42.0],
        "read_bytes_per_sec": [0.0, 1000.0, 2000.0],
    }
    assert raw(store, T0, T0 + 2, "disk", (("device", "sda"),)) == {
        "busy_percent": [3.5, 3.5, 3.5],
        "read_bytes_per_sec": [0.0, 600.0, 1200.0],
    }
    assert raw(store, T0, T0 + 2, "disk", (("mount", "/"),)) == {
        "percent": [50.0, 50.0, 50.0],
        "total_bytes": [512_110_190_592.0] * 3,
    }
    result = store.query(
        RangeQuery("disk", T0, T0 + 2, labels=(("mount", odd_mount),), resolution="raw")
    )
    assert result.labels == (("mount", odd_mount),)
    assert result.fields == {"percent": [30.0, 31.0, 32.0]}


def test_hosts_sharing_a_server_do_not_mix(
    store: VictoriaStore, vm: VictoriaServer, request: pytest.FixtureRequest
) -> None:
    other = VictoriaStore(vm.url, clock=FakeClock(T0), host=_host(request) + "-other")
    other.open()
    try:
        store.write(cpu(T0, 10.0))
        other.write(
            snap(T0, {("cpu", ()): {"percent": 90.0}, ("cpu", (("core", "0"),)): {"percent": 95.0}})
        )
        vm.flush()
        assert store.series("cpu") == [()]
        assert raw(store, T0, T0) == {"percent": [10.0]}
        assert other.series("cpu") == [(), (("core", "0"),)]
        assert raw(other, T0, T0) == {"percent": [90.0]}
    finally:
        other.close()


def test_series_of_a_metric_never_written_is_empty(store: VictoriaStore) -> None:
    assert store.series("network") == []


def test_values_round_trip_and_nan_means_absent(store: VictoriaStore, vm: VictoriaServer) -> None:
    """Typical magnitudes come back bit for bit; +-Inf survive (why the text format was
    chosen); NaN is "absent", as in the SQLite store."""
    values = [512_110_190_592.0, 12345.678, 99.99, -3.25, math.inf, -math.inf, 1e-6, math.nan]
    write_all(store, vm, [cpu(T0 + i, v) for i, v in enumerate(values)])

    got = raw(store, T0, T0 + len(values) - 1)["percent"]

    assert got == [*values[:-1], None]


def test_long_fractions_keep_about_twelve_digits(store: VictoriaStore, vm: VictoriaServer) -> None:
    """Not bit-exact (the server stores decimals): a full-mantissa CPU percentage comes
    back cut after 10-12 decimal places, within 1e-11 relative, never rounded up."""
    values = [88.63636363637538, 11.363636363624618, 2 / 3 * 1000, 0.1 + 0.2]
    write_all(store, vm, [cpu(T0 + i, v) for i, v in enumerate(values)])

    got = raw(store, T0, T0 + len(values) - 1)["percent"]

    for stored, sent in zip(got, values, strict=True):
        assert stored is not None
        assert math.isclose(stored, sent, rel_tol=1e-11)
        assert abs(stored) <= abs(sent)


def test_query_errors_name_the_parameter(store: VictoriaStore, vm: VictoriaServer) -> None:
    sda: Labels = (("device", "sda"),)
    write_all(store, vm, [snap(T0, {("disk", sda): {"busy_percent": 1.0}})])

    cases: list[tuple[RangeQuery, str]] = [
        (RangeQuery("memory", T0, T0 + 1), "metric"),
        (RangeQuery("disk", T0, T0 + 1), "labels"),  # no totals stored
        (RangeQuery("disk", T0, T0 + 1, labels=(("device", "sdz"),)), "labels"),
        (RangeQuery("disk", T0, T0 + 1, agg="median"), "agg"),  # type: ignore[arg-type]
        (RangeQuery("disk", T0, T0 + 1, sda, resolution="10s"), "resolution"),  # type: ignore[arg-type]
        (RangeQuery("disk", T0, T0 + 1, max_points=0), "max_points"),
        (RangeQuery("disk", T0 + 1, T0), "end"),
        (RangeQuery("disk", -5.0, T0), "start"),
        (RangeQuery("disk", T0, math.inf), "start"),
    ]
    for q, param in cases:
        with pytest.raises(QueryError) as caught:
            store.query(q)
        assert caught.value.param == param, q
    with pytest.raises(QueryError, match="no series 'device=sdz' stored for metric 'disk'"):
        store.query(cases[2][0])


# --------------------------------------------------------------------------- same answers as SQLite


PARITY_INTERVAL = 10.0


def _parity_ticks() -> list[Snapshot]:
    """Two hours at a 10 s interval with jitter inside the slot, a 7-minute outage and a
    rate absent on the first tick; every value a multiple of 0.25."""
    out = []
    for k in range(720):
        if 300 <= k < 342:
            continue  # outage
        ts = T0 + k * PARITY_INTERVAL + (0.0, 0.2, 1.5, 3.9)[k % 4]
        fields = {"percent": float((k * 13) % 41) * 0.25, "load_1": float(k % 7)}
        if k:
            fields["ctx_switches_per_sec"] = float((k * 5) % 17)
        out.append(
            snap(ts, {("cpu", ()): fields, ("cpu", (("core", "1"),)): {"percent": float(k % 9)}})
        )
    return out


@pytest.fixture(scope="module")
def parity(
    vm: VictoriaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VictoriaStore, TimeSeriesStore]]:
    from sysmon.storage.sqlite import SQLiteStore  # the reference answers

    now = T0 + 3 * 3600.0
    clock = FakeClock(now)
    victoria = VictoriaStore(vm.url, clock=clock, host="parity", interval_seconds=PARITY_INTERVAL)
    sqlite = SQLiteStore(
        tmp_path_factory.mktemp("parity") / "s.db",
        retention(),
        interval_seconds=PARITY_INTERVAL,
        clock=clock,
    )
    victoria.open()
    sqlite.open()
    for snapshot in _parity_ticks():
        victoria.write(snapshot)
        sqlite.write(snapshot)
    for _ in range(400):  # every rollup bucket computed (bounded work per call)
        sqlite.maintain(now)
    vm.flush()
    yield victoria, sqlite
    victoria.close()
    sqlite.close()


@pytest.mark.parametrize("agg", ["mean", "min", "max"])
@pytest.mark.parametrize(
    ("resolution", "start", "end", "max_points"),
    [
        ("raw", T0 + 2990.0, T0 + 3500.0, 1000),  # across the outage
        ("raw", T0, T0 + 7199.0, 100),  # merged raw slots (step 80 s)
        ("1m", T0 + 45.0, T0 + 7000.0, 1000),
        ("1m", T0, T0 + 7199.0, 25),  # merged: 5-minute buckets of the 1m tier
        ("5m", T0, T0 + 7199.0, 1000),
        ("1h", T0, T0 + 7199.0, 1000),
        ("auto", T0, T0 + 7199.0, 200),
        ("auto", T0 + 600.0, T0 + 1200.0, 1000),
    ],
)
def test_answers_match_the_sqlite_store(
    parity: tuple[VictoriaStore, TimeSeriesStore],
    resolution: str,
    start: float,
    end: float,
    max_points: int,
    agg: str,
) -> None:
    """Same grid, same gaps, same numbers as the default backend. min, max and raw values
    are exact; means to 1e-12 relative, because SQLite builds 5m/1h means from the 1m
    tier's means (count-weighted) and VictoriaMetrics sums the raw samples directly."""
    victoria, sqlite = parity
    for labels in [(), (("core", "1"),)]:
        q = RangeQuery("cpu", start, end, labels, resolution, agg, max_points)  # type: ignore[arg-type]
        want = sqlite.query(q)
        got = victoria.query(q)
        assert (got.resolution, got.agg, got.step_seconds) == (
            want.resolution,
            want.agg,
            want.step_seconds,
        )
        assert got.timestamps == want.timestamps
        assert sorted(got.fields) == sorted(want.fields)
        for name, column in want.fields.items():
            assert [v is None for v in got.fields[name]] == [v is None for v in column], name
            if agg == "mean" and resolution != "raw":
                for a, b in zip(got.fields[name], column, strict=True):
                    assert a == b or math.isclose(a or 0, b or 1, rel_tol=1e-12), (name, a, b)
            else:
                assert got.fields[name] == column, name


# --------------------------------------------------------------------------- writes, health


def test_each_snapshot_is_one_import_request(tmp_path: Path) -> None:
    # A server of its own: the module's shared one counted 695 imports from elsewhere
    # during this test once in CI (a writer from another test; not found yet).
    with victoria_server(tmp_path / "vm") as vm:
        store = VictoriaStore(vm.url, clock=FakeClock(T0 + 86_400), host="one-request")
        store.open()
        try:
            before = vm.counter("vm_http_requests_total", path=IMPORT_PATH)
            for i in range(5):
                store.write(
                    snap(
                        T0 + i,
                        {
                            ("cpu", ()): {"percent": 1.0},
                            ("disk", (("device", "sda"),)): {"busy_percent": 2.0},
                        },
                    )
                )
            # The server counts a request after it has answered it, so the count can lag
            # the client by a moment: wait (bounded) for the five, then check no sixth.
            deadline = time.monotonic() + 5
            while vm.counter("vm_http_requests_total", path=IMPORT_PATH) - before < 5:
                assert time.monotonic() < deadline, "the server never counted five imports"
                time.sleep(0.02)
            assert vm.counter("vm_http_requests_total", path=IMPORT_PATH) - before == 5
            assert store.stats().rows == {"ticks_written": 5, "samples_written": 10}
        finally:
            store.close()


def test_ping_stats_capabilities_and_no_process_history(
    store: VictoriaStore, vm: VictoriaServer
) -> None:
    write_all(store, vm, [cpu(T0, 1.0)])

    assert store.ping() is True
    assert store.query_processes(T0) is None
    stats = store.stats()
    assert (stats.backend, stats.path, stats.last_write_error) == ("victoriametrics", vm.url, None)
    assert stats.rows == {"ticks_written": 1, "samples_written": 1}

    store.maintain(T0)  # at most once a minute (fake monotonic clock): nothing new read
    size = store.stats().size_bytes
    assert size is not None and size > 0  # read by open (the server held data already)

    caps = store.capabilities()
    assert caps.backend == "victoriametrics"
    assert caps.process_tables is False
    assert caps.writable is True
    # One native step, the write interval, kept as long as the server's -retentionPeriod
    # (100y in the fixture: 100 x 365 days, VictoriaMetrics' year).
    assert caps.resolutions == (NativeResolution("raw", 1.0, 100 * 365 * 86_400.0),)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1", 31 * 86_400.0),
        ("100y", 100 * 365 * 86_400.0),
        ("2w", 14 * 86_400.0),
        ("1y6d", 371 * 86_400.0),
        ("12h", 43_200.0),
        ("0.5", 15.5 * 86_400.0),
        ("soon", None),
    ],
)
def test_retention_period_is_read_the_way_victoriametrics_reads_it(
    value: str, seconds: float | None
) -> None:
    assert retention_period_seconds(value) == seconds


def test_credentials_are_not_shown(vm: VictoriaServer) -> None:
    s = VictoriaStore(vm.url.replace("http://", "http://user:secret@"), clock=FakeClock(), host="x")
    assert s.stats().path == vm.url


def test_unreachable_server_raises_storage_error_and_ping_is_false() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    s = VictoriaStore(url, clock=FakeClock(T0), host="down", timeout_seconds=2.0)
    s.open()
    try:
        assert s.ping() is False
        with pytest.raises(
            StorageError,
            match=r"write failed: victoriametrics at http://127\.0\.0\.1:\d+: ConnectError",
        ):
            s.write(cpu(T0, 1.0))
        assert (s.stats().last_write_error or "").startswith("write failed")
        with pytest.raises(StorageError, match="series lookup failed"):
            s.query(RangeQuery("cpu", T0, T0 + 1))
        with pytest.raises(StorageError):
            s.series("cpu")
        s.maintain(T0)  # never raises; size and retention stay unknown
        assert s.stats().size_bytes is None
        assert s.capabilities().max_retention_seconds == math.inf
    finally:
        s.close()
    with pytest.raises(StorageError, match="not open"):
        s.write(cpu(T0, 1.0))


def test_http_errors_become_storage_errors(store: VictoriaStore) -> None:
    """A server that answers but refuses (here: a query it cannot parse) is a
    StorageError with its message, not an httpx exception."""
    with pytest.raises(StorageError, match="HTTP 4"):
        store._request("probe", "GET", "/api/v1/query_range", params=(("query", "sum("),))


def test_writes_fail_while_the_server_is_down_and_the_writer_replays_them_in_order(
    tmp_path: Path,
) -> None:
    """The agent's BufferedWriter keeps the ticks a down server refused and writes them,
    oldest first, once it is back (same port, same data)."""
    with victoria_server(tmp_path) as server:
        clock = FakeClock(T0)
        s = VictoriaStore(server.url, clock=clock, host="restart", timeout_seconds=2.0)
        s.open()
        writer = BufferedWriter(s, max_pending=100, clock=clock, maintain_every_seconds=1e9)
        writer.submit(cpu(T0, 1.0))
        writer.step()
        assert (writer.written, writer.pending) == (1, 0)

        server.stop()
        for i in (1, 2, 3):
            writer.submit(cpu(T0 + i, float(i + 1)))
            writer.step()
        assert writer.pending == 3
        assert (writer.last_error or "").startswith("StorageError: write failed")
        assert s.ping() is False

        server.start()
        assert s.ping() is True
        writer.step()
        assert (writer.written, writer.pending, writer.last_error) == (4, 0, None)
        server.flush()
        assert raw(s, T0, T0 + 4) == {"percent": [1.0, 2.0, 3.0, 4.0, None]}
        s.close()


# --------------------------------------------------------------------------- pure parts


def test_wire_format_escapes_label_values_and_skips_nan() -> None:
    snapshot = snap(
        1_700_000_000.1234,
        {
            ("disk", (("mount", 'a"b\\c\nd'),)): {"percent": 0.1, "free_bytes": math.nan},
            ("cpu", (("core", "0"),)): {"percent": math.inf},
        },
    )
    assert encode_snapshot(snapshot, host='h"1').decode().splitlines() == [
        'sysmon_disk_percent{host="h\\"1",mount="a\\"b\\\\c\\nd"} 0.1 1700000000123',
        'sysmon_cpu_percent{core="0",host="h\\"1"} +Inf 1700000000123',
    ]
    assert encode_snapshot(snap(T0, {}), host="h") == b""


@pytest.mark.parametrize(
    ("resolution", "span", "max_points", "interval", "name", "step", "function"),
    [
        ("raw", 300.0, 1000, 1.0, "raw", 1.0, "last_over_time"),
        ("raw", 3599.0, 1000, 1.0, "raw", 4.0, "avg_over_time"),  # 3600 slots -> merged x4
        ("auto", 300.0, 1000, 1.0, "raw", 1.0, "last_over_time"),
        ("auto", 3599.0, 1000, 1.0, "1m", 60.0, "avg_over_time"),
        ("auto", 86_399.0, 1000, 1.0, "5m", 300.0, "avg_over_time"),
        ("auto", 30 * 86_400.0, 1000, 1.0, "1h", 3600.0, "avg_over_time"),
        ("auto", 365 * 86_400.0, 1000, 1.0, "1h", 9 * 3600.0, "avg_over_time"),
        ("auto", 300.0, 1000, 5.0, "raw", 5.0, "last_over_time"),
        ("5m", 600.0, 1000, 1.0, "5m", 300.0, "avg_over_time"),
    ],
)
def test_plan_picks_the_step_like_sqlite(
    resolution: str,
    span: float,
    max_points: int,
    interval: float,
    name: str,
    step: float,
    function: str,
) -> None:
    q = RangeQuery("cpu", T0, T0 + span, resolution=resolution, max_points=max_points)  # type: ignore[arg-type]
    plan = plan_query(q, interval)
    assert (plan.resolution, plan.step, plan.function) == (name, step, function)
    assert plan.points <= max_points
    assert plan.t0 == math.floor(T0 / step) * step


def test_windows_cover_exactly_the_bucket() -> None:
    """PromQL windows are (a, b]; one millisecond less of offset makes them [a, b)."""
    one_minute = plan_query(RangeQuery("cpu", T0, T0 + 600, resolution="1m", agg="min"), 1.0)
    assert (
        range_expression(one_minute, "{x}")
        == "min_over_time({x}[60000ms] offset -59999ms) keep_metric_names"
    )
    raw_slot = plan_query(RangeQuery("cpu", T0, T0 + 60, resolution="raw"), 1.0)
    assert (
        range_expression(raw_slot, "{x}")
        == "last_over_time({x}[1000ms] offset -499ms) keep_metric_names"
    )
