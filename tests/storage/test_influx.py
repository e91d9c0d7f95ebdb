"""``InfluxStore``: the line-protocol bytes (golden), the config and token rules, and
writes read back from a real InfluxDB 1.x server (Debian's ``influxdb``, ``api: v1``)
through its own ``/query``, raw and grouped, compared exactly.

The v2 write request is checked against a 127.0.0.1 recorder (no InfluxDB 2 server is
packaged here); ``test_influx_victoria.py`` sends it to VictoriaMetrics for real.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.errors import ConfigError, StorageError
from sysmon.models import Labels
from sysmon.storage.base import Aggregate, RangeQuery
from sysmon.storage.factory import open_store
from sysmon.storage.influx import (
    InfluxStore,
    default_retention_seconds,
    encode_snapshots,
    integer_field_names,
    label_text,
    parse_go_duration,
    quote_ident,
    quote_string,
    read_token,
    stored_labels,
    timestamp_ns,
)
from tests.storage.helpers import T0, snap
from tests.support.influx import InfluxServer, influx_server
from tests.support.process import free_port

INTERVAL = 10.0
T0_NS = 1_699_920_000_000_000_000
assert int(T0) * 1_000_000_000 == T0_NS

ODD_MOUNTS = [
    "/mnt/my disk",
    "/mnt/a,b=c",
    "/media/\"quoted\" 'single'",
    "/mnt/ünïcødé/データ",
    r"/mnt/back\slash",
    "/mnt/tab\there",
    "/mnt/x=1,y=2 z",
]


# ---------------------------------------------------------------------- wire format
def test_line_protocol_bytes_match_the_golden_text() -> None:
    tick = snap(
        T0 + 0.004,
        {
            ("cpu", ()): {"percent": 12.5, "load_1": 0.25},
            ("cpu", (("core", "0"),)): {"percent": 3.0},
            ("memory", ()): {"used_bytes": 3421339648.0, "percent": 41.5, "swap_percent": math.nan},
            ("disk", (("mount", "C:\\x y,z=w\"'é"),)): {"used_bytes": 7.0, "percent": math.inf},
            ("network", (("host", "liar"), ("interface", "eth0"))): {"bytes_sent_per_sec": 1e-300},
        },
    )
    encoded = encode_snapshots([tick], "web 1", frozenset({"used_bytes"}))
    golden = (
        r"system_metrics,host=web\ 1,metric_type=cpu percent=12.5,load_1=0.25 1699920000004000000"
        "\n"
        r"system_metrics,core=0,host=web\ 1,metric_type=cpu percent=3.0 1699920000004000000"
        "\n"
        r"system_metrics,host=web\ 1,metric_type=memory used_bytes=3421339648i,percent=41.5 "
        "1699920000004000000\n"
        r"system_metrics,host=web\ 1,metric_type=disk,mount=C:\x\ y\,z\=w" + "\"'é "
        "used_bytes=7i 1699920000004000000\n"
        r"system_metrics,host=web\ 1,interface=eth0,metric_type=network "
        "bytes_sent_per_sec=1e-300 1699920000004000000\n"
    )
    assert encoded.body.decode() == golden
    assert (encoded.lines, encoded.fields, encoded.skipped) == (5, 7, 2)  # NaN, +Inf left out


def test_a_tick_without_writable_samples_sends_nothing() -> None:
    encoded = encode_snapshots([snap(T0, {("cpu", ()): {"percent": math.nan}})], "h")
    assert (encoded.body, encoded.skipped) == (b"", 1)


@pytest.mark.parametrize(
    ("seconds", "ns"),
    [
        (T0, T0_NS),
        (T0 + 0.004, T0_NS + 4_000_000),
        (T0 + 0.5, T0_NS + 500_000_000),
        (1.5, 1_500_000_000),
        (0.0, 0),
        (T0 + 0.123456, T0_NS + 123_456_000),
    ],
)
def test_timestamps_are_exact_nanoseconds_of_the_decimal_repr(seconds: float, ns: int) -> None:
    assert timestamp_ns(seconds) == ns


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("/mnt/my disk", "/mnt/my disk"),
        (r"/mnt/back\slash", r"/mnt/back\slash"),  # read alike by every server: kept
        ("ends\\", "ends\u29f5"),
        ("a\\ b", "a\u29f5 b"),
        ("a\\,b", "a\u29f5,b"),
        ("a\\=b", "a\u29f5=b"),
        ("a\\\\b", "a\u29f5\\b"),
        ("two\nlines\r\n", "two lines "),
    ],
)
def test_label_text_rewrites_only_what_line_protocol_cannot_carry(text: str, stored: str) -> None:
    assert label_text(text) == stored


def test_stored_labels_drop_empty_values_and_the_stores_own_tags() -> None:
    labels = (("device", ""), ("host", "x"), ("metric_type", "y"), ("mount", "/"))
    assert stored_labels(labels) == (("mount", "/"),)


def test_influxql_quoting() -> None:
    assert quote_string("it's a\\b") == r"'it\'s a\\b'"
    assert quote_ident('we"ird\\') == r'"we\"ird\\"'


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("168h0m0s", 604_800.0), ("1h30m", 5_400.0), ("500ms", 0.5), ("7d", None)],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_go_duration(text) == seconds


def test_retention_is_the_default_policy() -> None:
    series = [
        {
            "columns": ["name", "duration", "shardGroupDuration", "replicaN", "default"],
            "values": [
                ["autogen", "0s", "168h0m0s", 1, False],
                ["week", "168h0m0s", "24h0m0s", 1, True],
            ],
        }
    ]
    assert default_retention_seconds(series) == 604_800.0
    series[0]["values"] = [["autogen", "0s", "168h0m0s", 1, True]]
    assert default_retention_seconds(series) == math.inf
    assert default_retention_seconds([]) is None


def test_a_field_name_is_an_integer_only_if_no_metric_declares_it_a_float() -> None:
    integers = {"memory": ["used_bytes", "total_bytes"], "gpus": ["count"], "odd": []}
    every = {
        "memory": ["used_bytes", "total_bytes", "percent"],
        "gpus": ["count", "percent"],
        "odd": ["count"],  # a float "count" elsewhere: InfluxDB has one type per field
    }
    assert integer_field_names(integers, every) == {"used_bytes", "total_bytes"}
    assert integer_field_names(integers) == {"used_bytes", "total_bytes", "count"}


# ---------------------------------------------------------------------- config, token
def influx_settings(tmp_path: Path, **database: object) -> Any:
    base: dict[str, object] = {
        "path": str(tmp_path / "sysmon.db"),
        "backend": "influxdb",
        "url": "http://127.0.0.1:8086",
    }
    return load_settings(None, database={**base, **database})


def test_factory_builds_the_store_with_the_catalogs_integer_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSMON_INFLUX_TOKEN", "t0ken")
    s = influx_settings(tmp_path, org="acme", bucket="metrics")
    store = open_store(s, FakeClock(T0), readonly=True)
    assert isinstance(store, InfluxStore)
    assert {"used_bytes", "total_bytes", "count"} <= store.integer_fields
    assert not {"percent", "load_1", "read_bytes_per_sec"} & store.integer_fields
    caps = store.capabilities()
    assert (caps.backend, caps.process_tables, caps.writable) == ("influxdb", False, True)
    assert caps.finest_step_seconds == s.collection.interval_seconds


def test_api_v2_needs_an_org(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(influx_settings(tmp_path), FakeClock(T0), readonly=False)
    assert info.value.key == "database.org"
    store = open_store(influx_settings(tmp_path, api="v1"), FakeClock(T0), readonly=False)
    assert isinstance(store, InfluxStore)


def test_a_token_in_the_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        influx_settings(tmp_path, org="acme", token="s3cret")
    assert info.value.key == "database.token"
    assert "token_env" in info.value.message and "s3cret" not in info.value.message


def test_the_url_is_required_and_carries_no_credentials(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        influx_settings(tmp_path, url=None)
    assert info.value.key == "database.url"
    with pytest.raises(ConfigError) as info:
        influx_settings(tmp_path, url="http://me:pw@127.0.0.1:8086")
    assert info.value.key == "database.url"


def test_token_from_file_wins_over_environment(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    env = {"MY_TOKEN": "from-env"}
    assert read_token("MY_TOKEN", str(secret), env) == "from-file"
    assert read_token("MY_TOKEN", None, env) == "from-env"
    assert read_token("OTHER", None, env) is None
    assert read_token(None, None, env) is None
    with pytest.raises(ConfigError) as info:
        read_token("MY_TOKEN", str(tmp_path / "missing"), env)
    assert info.value.key == "database.token_file"


# ---------------------------------------------------------------------- the v2 request
@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """A 127.0.0.1 HTTP server that answers 204 and keeps every request."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            parts = urlsplit(self.path)
            rec.requests.append(
                Recorded(
                    self.command,
                    parts.path,
                    dict(parse_qsl(parts.query)),
                    dict(self.headers),
                    self.rfile.read(length),
                )
            )
            self.send_response(204)
            self.end_headers()

        do_GET = do_POST = _record

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_api_v2_writes_to_api_v2_write_with_org_bucket_ns_and_the_token(
    recorder: Recorder,
) -> None:
    store = InfluxStore(
        recorder.url, clock=FakeClock(T0), host="h", bucket="b1", org="acme", token="t0ken"
    )
    store.open()
    try:
        store.write_many(
            [
                snap(T0, {("cpu", ()): {"percent": 1.0}}),
                snap(T0 + 1, {("cpu", ()): {"percent": 2.0}}),
            ]
        )
    finally:
        store.close()
    writes = [r for r in recorder.requests if r.method == "POST"]
    assert len(writes) == 1
    (w,) = writes
    assert w.path == "/api/v2/write"
    assert w.params == {"org": "acme", "bucket": "b1", "precision": "ns"}
    assert w.headers["Authorization"] == "Token t0ken"
    assert (
        w.body
        == (
            f"system_metrics,host=h,metric_type=cpu percent=1.0 {T0_NS}\n"
            f"system_metrics,host=h,metric_type=cpu percent=2.0 {T0_NS + 1_000_000_000}\n"
        ).encode()
    )
    assert "t0ken" not in repr(store.stats())
    assert store.stats().rows["ticks_written"] == 2


# ---------------------------------------------------------------------- real InfluxDB 1.x
_dbs = count()


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    with influx_server(tmp_path_factory.mktemp("influx")) as server:
        yield server


@pytest.fixture
def store(influx: InfluxServer) -> Iterator[InfluxStore]:
    s = InfluxStore(
        influx.url,
        clock=FakeClock(T0),
        host="web1",
        bucket=f"t{next(_dbs)}",
        api="v1",
        interval_seconds=INTERVAL,
        integer_fields=frozenset({"used_bytes"}),
    )
    s.open()
    yield s
    s.close()


def test_the_server_under_test_is_influxdb_1(influx: InfluxServer) -> None:
    assert influx.version.startswith("1."), influx.version


def test_written_ticks_are_stored_in_the_specs_schema(
    influx: InfluxServer, store: InfluxStore
) -> None:
    for k in range(3):
        store.write(
            snap(
                T0 + INTERVAL * k,
                {
                    ("cpu", ()): {"percent": 10.5 + k, "load_1": 0.25},
                    ("cpu", (("core", "1"),)): {"percent": 50.0},
                    ("disk", (("mount", "/"),)): {"used_bytes": 1000.0 * (k + 1), "percent": 41.5},
                },
            )
        )
    db = store.bucket
    rows = influx.query(
        db, 'SELECT * FROM "system_metrics" WHERE "metric_type" = \'cpu\' GROUP BY *'
    )
    by_tags = {tuple(sorted(s["tags"].items())): s for s in rows}
    totals = by_tags[(("core", ""), ("host", "web1"), ("metric_type", "cpu"), ("mount", ""))]
    columns = totals["columns"]
    got = [dict(zip(columns, v, strict=True)) for v in totals["values"]]
    assert [(r["time"], r["percent"], r["load_1"]) for r in got] == [
        (T0_NS, 10.5, 0.25),
        (T0_NS + 10_000_000_000, 11.5, 0.25),
        (T0_NS + 20_000_000_000, 12.5, 0.25),
    ]
    assert all(r["used_bytes"] is None for r in got)  # one line per (metric, labels) group
    core = by_tags[(("core", "1"), ("host", "web1"), ("metric_type", "cpu"), ("mount", ""))]
    assert [v[columns.index("percent")] for v in core["values"]] == [50.0, 50.0, 50.0]
    types = influx.query(db, 'SHOW FIELD KEYS FROM "system_metrics"')[0]["values"]
    assert dict(map(tuple, types)) == {
        "load_1": "float",
        "percent": "float",
        "used_bytes": "integer",
    }
    disk = influx.query(db, 'SELECT "used_bytes" FROM "system_metrics" WHERE "mount" = \'/\'')
    assert [v[1] for v in disk[0]["values"]] == [1000, 2000, 3000]  # JSON integers


def test_grouped_reads_match_the_servers_own_influxql(
    influx: InfluxServer, store: InfluxStore
) -> None:
    values = [3.0, 9.0, 1.5, 7.25, 4.0, 2.0, 8.0, 6.5, 5.0, 0.5, 11.0, 10.0]  # two minutes
    for k, v in enumerate(values):
        store.write(snap(T0 + INTERVAL * k, {("cpu", ()): {"percent": v}}))
    aggs: tuple[Aggregate, ...] = ("mean", "min", "max")
    for agg in aggs:
        ours = store.query(RangeQuery("cpu", T0, T0 + 60, resolution="1m", agg=agg))
        theirs = influx.query(
            store.bucket,
            f'SELECT {agg}("percent") FROM "system_metrics" WHERE time >= {T0_NS} '
            f"AND time < {T0_NS + 120_000_000_000} GROUP BY time(1m)",
        )[0]["values"]
        assert ours.timestamps == [T0, T0 + 60]
        assert [[t, v] for t, v in theirs] == [
            [T0_NS, ours.fields["percent"][0]],
            [T0_NS + 60_000_000_000, ours.fields["percent"][1]],
        ]
    assert store.query(RangeQuery("cpu", T0, T0 + 60, resolution="1m")).fields["percent"] == [
        sum(values[:6]) / 6,
        sum(values[6:]) / 6,
    ]
    raw = store.query(RangeQuery("cpu", T0, T0 + 110, resolution="raw"))
    assert raw.fields["percent"] == values


def test_integer_fields_read_back_as_whole_numbers(store: InfluxStore) -> None:
    for k in range(6):
        store.write(snap(T0 + INTERVAL * k, {("memory", ()): {"used_bytes": 3421339648.0 + k}}))
    r = store.query(RangeQuery("memory", T0, T0 + 50, resolution="raw"))
    assert r.fields["used_bytes"] == [3421339648.0 + k for k in range(6)]
    m = store.query(RangeQuery("memory", T0, T0, resolution="1m", agg="max"))
    assert m.fields["used_bytes"] == [3421339653.0]


def test_odd_mount_names_round_trip(influx: InfluxServer, store: InfluxStore) -> None:
    series: dict[tuple[str, Labels], dict[str, float]] = {
        ("disk", (("mount", m),)): {"percent": float(i)} for i, m in enumerate(ODD_MOUNTS)
    }
    series[("disk", (("mount", "/trailing\\"),))] = {"percent": 99.0}
    series[("disk", (("mount", "/new\nline"),))] = {"percent": 98.0}
    store.write(snap(T0, series))
    listed = store.series("disk")
    expected: list[Labels] = sorted(
        [(("mount", m),) for m in ODD_MOUNTS]
        + [(("mount", "/trailing\u29f5"),), (("mount", "/new line"),)]
    )
    assert sorted(listed) == expected
    # The server holds the exact text (its own JSON, not our parser).
    tags = influx.query(store.bucket, 'SHOW TAG VALUES FROM "system_metrics" WITH KEY = "mount"')
    assert sorted(v for _k, v in tags[0]["values"]) == sorted(
        [*ODD_MOUNTS, "/trailing\u29f5", "/new line"]
    )
    for i, mount in enumerate(ODD_MOUNTS):
        r = store.query(RangeQuery("disk", T0, T0, labels=(("mount", mount),), resolution="raw"))
        assert r.fields["percent"] == [float(i)], mount
    # A query names the label as the collector did; the same rewriting finds it.
    r = store.query(
        RangeQuery("disk", T0, T0, labels=(("mount", "/trailing\\"),), resolution="raw")
    )
    assert (r.labels, r.fields["percent"]) == ((("mount", "/trailing\u29f5"),), [99.0])


def test_write_many_sends_several_ticks_at_once(store: InfluxStore) -> None:
    store.write_many(
        [snap(T0 + INTERVAL * k, {("cpu", ()): {"percent": float(k)}}) for k in range(4)]
    )
    assert store.query(RangeQuery("cpu", T0, T0 + 30, resolution="raw")).fields["percent"] == [
        0.0,
        1.0,
        2.0,
        3.0,
    ]
    assert store.stats().rows == {
        "ticks_written": 4,
        "samples_written": 4,
        "samples_skipped": 0,
        "lines_rejected": 0,
    }


def test_a_rewritten_tick_overwrites_instead_of_doubling(store: InfluxStore) -> None:
    tick = snap(T0, {("cpu", ()): {"percent": 5.0}})
    store.write(tick)
    store.write(tick)  # the agent's retry of a write whose answer was lost
    r = store.query(RangeQuery("cpu", T0, T0 + 50, resolution="1m"))
    assert r.fields["percent"] == [5.0]


def test_non_finite_samples_are_skipped_and_counted(store: InfluxStore) -> None:
    store.write(snap(T0, {("cpu", ()): {"percent": math.inf, "load_1": 1.0, "iowait": math.nan}}))
    assert store.stats().rows["samples_skipped"] == 2
    r = store.query(RangeQuery("cpu", T0, T0, resolution="raw"))
    assert r.fields == {"load_1": [1.0]}


def test_a_partial_write_is_counted_and_shown_not_retried(
    influx: InfluxServer, store: InfluxStore
) -> None:
    db = store.bucket
    answer = influx.write(db, f"system_metrics,host=other,metric_type=cpu percent=1i {T0_NS}")
    assert answer.status_code == 204  # "percent" is now an integer field of this shard
    store.write(snap(T0, {("cpu", ()): {"percent": 2.5}, ("memory", ()): {"used_bytes": 40.0}}))
    stats = store.stats()
    assert stats.rows["lines_rejected"] == 1
    assert stats.last_write_error is not None and "field type conflict" in stats.last_write_error
    # Every other line of the tick is stored.
    assert store.series("memory") == [()]
    store.write(snap(T0 + INTERVAL, {("memory", ()): {"used_bytes": 41.0}}))
    assert store.stats().last_write_error is None


def test_retention_is_read_from_the_default_policy(influx: InfluxServer) -> None:
    influx.query("", 'CREATE DATABASE "short" WITH DURATION 2d NAME "two_days"')
    s = InfluxStore(influx.url, clock=FakeClock(T0), host="h", bucket="short", api="v1")
    s.open()
    try:
        assert s.capabilities().max_retention_seconds == 2 * 86_400
    finally:
        s.close()


def test_a_server_that_is_down_fails_the_write_and_the_ping() -> None:
    s = InfluxStore(
        f"http://127.0.0.1:{free_port()}", clock=FakeClock(T0), host="h", bucket="b", api="v1"
    )
    s.open()  # not an error: the agent keeps the ticks until it is back
    try:
        assert s.ping() is False
        with pytest.raises(StorageError, match=r"write failed: influxdb at http://127\.0\.0\.1"):
            s.write(snap(T0, {("cpu", ()): {"percent": 1.0}}))
        assert s.stats().last_write_error is not None
        assert s.capabilities().max_retention_seconds == math.inf  # unknown: not assumed
    finally:
        s.close()


def test_a_missing_database_is_a_failed_write(influx: InfluxServer) -> None:
    s = InfluxStore(influx.url, clock=FakeClock(T0), host="h", bucket="nope", api="v1")
    s.open()
    influx.query("", 'DROP DATABASE "nope"')  # gone after open created it
    try:
        with pytest.raises(StorageError, match=r'database not found: \\?"nope'):
            s.write(snap(T0, {("cpu", ()): {"percent": 1.0}}))
    finally:
        s.close()
