"""The API over HTTP against the real app, real collectors and a real SQLite file."""

from __future__ import annotations

import json

import httpx
import pytest

from sysmon.clock import FakeClock
from tests.api.conftest import START, tick
from tests.support.stack import Stack


def test_current_is_503_before_first_tick_then_has_every_metric(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    r = client.get("/api/v1/metrics/current")
    assert r.status_code == 503
    assert r.json() == {"detail": "no collection yet"}
    tick(server, clock, 2)
    r = client.get("/api/v1/metrics/current")
    assert r.status_code == 200
    doc = r.json()
    assert doc["timestamp"] == START + 1
    assert set(doc["metrics"]) >= {"cpu", "memory", "disk", "network", "processes"}
    assert 0.0 <= doc["metrics"]["memory"]["total"]["percent"] <= 100.0
    assert doc["metrics"]["memory"]["total"]["total_bytes"] > 0
    assert "percent" in doc["metrics"]["cpu"]["total"]  # second tick has CPU percentages
    assert doc["processes"], "the process table is live"
    assert doc["errors"] == {}


def test_range_query_returns_what_was_collected(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 5)
    r = client.get(
        "/api/v1/metrics/memory",
        params={"start": START, "end": START + 4, "resolution": "raw"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metric"] == "memory"
    assert body["resolution"] == "raw"
    assert body["labels"] == {}
    ts = body["timestamps"]
    values = dict(zip(ts, body["fields"]["total_bytes"], strict=True))
    assert [values.get(START + i) for i in range(5)] == [values[START]] * 5
    assert values[START] > 0
    assert body["units"]["total_bytes"] == "bytes"


def test_range_accepts_iso_and_defaults_to_last_hour(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 3)
    r = client.get("/api/v1/metrics/cpu")
    assert r.status_code == 200
    body = r.json()
    assert body["end"] == clock.time()
    assert body["end"] - body["start"] == 3600
    r = client.get(
        "/api/v1/metrics/cpu",
        params={"start": "2027-01-15T08:00:00Z", "end": "2027-01-15T09:00:00+01:00"},
    )
    assert r.status_code == 200
    assert r.json()["start"] == START
    assert r.json()["end"] == START


def test_per_device_series(client: httpx.Client, server: Stack, clock: FakeClock) -> None:
    tick(server, clock, 3)
    current = client.get("/api/v1/metrics/current").json()
    mount = next(iter(current["metrics"]["disk"]["mount"]))
    r = client.get(
        "/api/v1/metrics/disk",
        params={"mount": mount, "resolution": "raw", "start": START, "end": START + 2},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["labels"] == {"mount": mount}
    assert set(body["fields"]) >= {"percent", "used_bytes"}
    assert any(v is not None for v in body["fields"]["percent"])


def _loc(response: httpx.Response) -> list[str]:
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return [str(p) for p in detail[0]["loc"]]


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/api/v1/metrics/cpu", {"start": "yesterday"}, ["query", "start"]),
        ("/api/v1/metrics/cpu", {"end": "12:00"}, ["query", "end"]),
        ("/api/v1/metrics/cpu", {"start": "nan"}, ["query", "start"]),
        ("/api/v1/metrics/cpu", {"start": "2000", "end": "1000"}, ["query", "start"]),
        ("/api/v1/metrics/cpu", {"resolution": "10s"}, ["query", "resolution"]),
        ("/api/v1/metrics/cpu", {"agg": "median"}, ["query", "agg"]),
        ("/api/v1/metrics/cpu", {"max_points": "5"}, ["query", "max_points"]),
        ("/api/v1/metrics/cpu", {"max_points": "10001"}, ["query", "max_points"]),
        ("/api/v1/metrics/gpu", {}, ["path", "metric"]),
        ("/api/v1/metrics/disk", {"mount": "/definitely/not/here"}, ["query", "mount"]),
        ("/api/v1/metrics/network", {"interface": "nope0"}, ["query", "interface"]),
        ("/api/v1/metrics/cpu", {"device": "sda"}, ["query", "device"]),
        ("/api/v1/metrics/disk", {"mount": "/", "device": "sda"}, ["query", "device"]),
        ("/api/v1/metrics/processes", {"limit": "0"}, ["query", "limit"]),
        ("/api/v1/metrics/processes", {"limit": "101"}, ["query", "limit"]),
        ("/api/v1/metrics/processes", {"limit": "ten"}, ["query", "limit"]),
        ("/api/v1/metrics/processes", {"sort": "io"}, ["query", "sort"]),
        ("/api/v1/metrics/processes", {"at": "soon"}, ["query", "at"]),
    ],
)
def test_bad_input_is_422_naming_the_parameter(
    client: httpx.Client,
    server: Stack,
    clock: FakeClock,
    path: str,
    params: dict[str, str],
    loc: list[str],
) -> None:
    tick(server, clock, 2)
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    assert _loc(r) == loc


def test_unknown_name_lists_the_known_ones(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 2)
    r = client.get("/api/v1/metrics/disk", params={"mount": "/nope"})
    msg = r.json()["detail"][0]["msg"]
    assert "known" in msg
    current = client.get("/api/v1/metrics/current").json()
    for mount in current["metrics"]["disk"]["mount"]:
        assert repr(mount) in msg


def test_processes_sorted_and_limited(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 2)
    for sort, key in (("cpu", "cpu_percent"), ("memory", "memory_percent")):
        r = client.get("/api/v1/metrics/processes", params={"limit": 5, "sort": sort})
        assert r.status_code == 200
        body = r.json()
        rows = body["processes"]
        assert body["sort"] == sort and body["limit"] == 5
        assert 1 <= len(rows) <= 5
        values = [row[key] for row in rows]
        assert values == sorted(values, reverse=True)
        assert {"pid", "name", "user", "rss_bytes", "status", "threads", "cmdline"} <= set(rows[0])


def test_process_history_at_a_past_instant(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    # The default stores a process table at most every 10 s (retention.processes_every).
    tick(server, clock, 12)
    r = client.get("/api/v1/metrics/processes", params={"at": START + 11.5, "limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timestamp"] == START + 10
    assert len(body["processes"]) == 3
    cpu = [p["cpu_percent"] for p in body["processes"]]
    assert cpu == sorted(cpu, reverse=True)
    r = client.get("/api/v1/metrics/processes", params={"at": START - 3600})
    assert r.status_code == 404


def test_health_reports_database_and_freshness(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 1, step=0.5)
    body = client.get("/api/v1/health").json()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True
    assert body["database"]["size_bytes"] > 0
    assert body["last_collection_age_seconds"] == 0.5
    clock.advance(60)
    stale = client.get("/api/v1/health").json()
    assert stale["status"] == "degraded"
    assert stale["last_collection_age_seconds"] == 60.5


def test_system_info(client: httpx.Client, server: Stack, clock: FakeClock) -> None:
    body = client.get("/api/v1/system").json()
    assert body["hostname"]
    assert body["cpu_count"] >= 1
    assert body["uptime_seconds"] is None or body["uptime_seconds"] > 0
    assert "cpu" in body["collectors"]


def test_stream_sends_each_new_snapshot(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 1)
    seen: list[float] = []
    with client.stream("GET", "/api/v1/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["timestamp"])
                if len(seen) == 1:
                    tick(server, clock, 1)
                else:
                    break
    assert seen == [START, START + 1]


def test_openapi_and_docs(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/metrics/current",
        "/api/v1/metrics/{metric}",
        "/api/v1/metrics/processes",
        "/api/v1/health",
        "/api/v1/stream",
    ):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_coarse_view_of_a_fresh_install_shows_the_partial_bucket(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    """A new install's 1 h view is not ``[null, null]``: the current hour's bucket comes
    from the raw ticks (max of what was collected) and is marked ``partial_from``."""
    tick(server, clock, 5)
    raw = client.get(
        "/api/v1/metrics/cpu", params={"start": START, "end": START + 4, "resolution": "raw"}
    ).json()
    r = client.get(
        "/api/v1/metrics/cpu",
        params={"start": START - 3600, "end": START + 4, "resolution": "1h", "agg": "max"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    hour = START - START % 3600
    assert body["partial_from"] == hour
    values = dict(zip(body["timestamps"], body["fields"]["percent"], strict=True))
    assert values[hour] == max(v for v in raw["fields"]["percent"] if v is not None)
    final = client.get(
        "/api/v1/metrics/cpu", params={"start": START, "end": START + 4, "resolution": "raw"}
    ).json()
    assert final["partial_from"] is None  # raw is never partial
