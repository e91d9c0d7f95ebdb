"""End to end: the real agent writes to a real VictoriaMetrics server through
``VictoriaStore``, and the real server app, given its own ``VictoriaStore``, answers
``/api/v1/metrics/...`` and ``/api/v1/health`` over HTTP from it.

Built like ``tests.support.stack`` (an unscheduled agent driven by a fake clock, the live
channel on a Unix socket, uvicorn on 127.0.0.1), except that the server gets the store
injected instead of opening the SQLite file. The fake clock starts at ``T0`` (2023): past
timestamps, which VictoriaMetrics accepts within its retention (the fixture's 100y);
it refuses samples more than two days in the future.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmon.agent.service import Agent
from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.main import create_app
from sysmon.models import Labels, Snapshot
from sysmon.storage.victoria import VictoriaStore
from tests.storage.helpers import T0, cpu
from tests.support.server import serve
from tests.support.stack import Stack, short_socket
from tests.support.victoria import VictoriaServer, victoria_server

HOST = "e2e-host"


@contextmanager
def victoria_stack(settings: Settings, clock: FakeClock, url: str) -> Iterator[Stack]:
    """Agent and server, each with its own ``VictoriaStore`` on ``url`` (as in production:
    two processes, one database)."""
    interval = settings.collection.interval_seconds
    sock = short_socket()
    agent = Agent(
        settings,
        clock=clock,
        store=VictoriaStore(url, clock=clock, host=HOST, interval_seconds=interval),
        channel=sock,
    )
    agent.start(schedule=False)
    try:
        server_store = VictoriaStore(url, clock=clock, host=HOST, interval_seconds=interval)
        app = create_app(settings, clock=clock, store=server_store, channel=sock, start_agent=False)
        with serve(app) as running:
            deadline = time.monotonic() + 10
            while not app.state.subscriber.connected:
                assert time.monotonic() < deadline, "server never connected to the agent"
                time.sleep(0.01)
            yield Stack(agent, app, running.base_url, clock)
    finally:
        agent.stop()
        shutil.rmtree(sock.parent, ignore_errors=True)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, database={"path": str(tmp_path / "sysmon.db")})


def group(snapshots: list[Snapshot], metric: str, labels: Labels) -> dict[str, list[Any]]:
    """Per field, its value in each snapshot (None where the tick lacked it)."""
    fields = sorted(
        {
            s.field
            for snap in snapshots
            for s in snap.samples()
            if (s.metric, s.labels) == (metric, labels)
        }
    )
    out: dict[str, list[Any]] = {f: [] for f in fields}
    for snap in snapshots:
        values = {
            s.field: s.value for s in snap.samples() if (s.metric, s.labels) == (metric, labels)
        }
        for f in fields:
            out[f].append(values.get(f))
    return out


def assert_same(got: dict[str, list[Any]], want: dict[str, list[Any]]) -> None:
    """Equal fields and gaps; values equal to VictoriaMetrics' precision: it keeps about
    12 significant decimal digits (88.63636363637538 is read back as 88.6363636363),
    and real CPU percentages use all 17. Its decimal scale is shared by a block of
    samples, so a tiny value beside large ones keeps fewer digits (9.094947017530759e-09
    came back as 9.094947e-09 beside percentages): the tolerance is relative to the
    column's largest value."""
    assert sorted(got) == sorted(want)
    for name, column in want.items():
        assert [v is None for v in got[name]] == [v is None for v in column], name
        scale = max((abs(v) for v in column if v is not None), default=0.0)
        for a, b in zip(got[name], column, strict=True):
            assert a == b or math.isclose(a, b, rel_tol=1e-11, abs_tol=scale * 1e-11), (
                name,
                a,
                b,
            )


def test_metrics_api_serves_what_the_agent_wrote(settings: Settings, tmp_path: Path) -> None:
    clock = FakeClock(T0 + 3600.0)
    with (
        victoria_server(tmp_path / "vm") as vm,
        victoria_stack(settings, clock, vm.url) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        ticks = running.tick(4)
        vm.flush()  # rows become searchable at once instead of within a second or two
        start, end = ticks[0].timestamp, ticks[-1].timestamp

        r = client.get(
            "/api/v1/metrics/cpu", params={"start": start, "end": end, "resolution": "raw"}
        )

        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["metric"], body["labels"], body["resolution"]) == ("cpu", {}, "raw")
        assert body["step_seconds"] == 1.0
        assert body["timestamps"] == [t.timestamp for t in ticks]
        expected = group(ticks, "cpu", ())
        assert expected["percent"][1:], "the cpu collector reports percent from tick 2 on"
        assert_same(body["fields"], expected)
        assert body["units"]["percent"] == "%"

        # A labelled series (one core), selected with the API's ?core=, through series().
        core = group(ticks, "cpu", (("core", "0"),))
        r = client.get(
            "/api/v1/metrics/cpu",
            params={"start": start, "end": end, "resolution": "raw", "core": "0"},
        )
        assert r.status_code == 200, r.text
        assert_same(r.json()["fields"], core)

        r = client.get(
            "/api/v1/metrics/cpu",
            params={"start": start, "end": end, "resolution": "raw", "core": "999"},
        )
        assert r.status_code == 422
        assert "unknown core '999'" in r.text

        # No process history in VictoriaMetrics: the API says none is stored.
        r = client.get("/api/v1/metrics/processes", params={"at": end})
        assert r.status_code == 404, r.text

        health = client.get("/api/v1/health").json()
        assert health["database"]["reachable"] is True
        assert health["database"]["pending_writes"] == 0


def test_a_down_server_shows_in_health_and_ticks_are_replayed(
    settings: Settings, tmp_path: Path
) -> None:
    clock = FakeClock(T0 + 7200.0)
    with (
        victoria_server(tmp_path / "vm") as vm,
        victoria_stack(settings, clock, vm.url) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        first = running.tick(2)
        vm.stop()

        down = running.tick(2)  # the agent keeps these two
        health = client.get("/api/v1/health").json()
        assert health["status"] == "degraded"
        assert health["database"]["reachable"] is False
        assert "database not reachable from the server" in health["problems"]
        assert health["database"]["pending_writes"] == 2
        assert "victoriametrics" in (health["database"]["last_error"] or "")
        r = client.get("/api/v1/metrics/cpu", params={"start": T0, "end": T0 + 7300})
        assert (r.status_code, r.json()) == (503, {"detail": "storage unavailable"})

        _restart(vm)
        last = running.tick(1)  # writes the two kept ticks first, then this one
        vm.flush()
        ticks = first + down + last
        r = client.get(
            "/api/v1/metrics/cpu",
            params={
                "start": ticks[0].timestamp,
                "end": ticks[-1].timestamp,
                "resolution": "raw",
            },
        )
        assert r.status_code == 200, r.text
        assert_same(r.json()["fields"], group(ticks, "cpu", ()))
        health = client.get("/api/v1/health").json()
        assert (health["database"]["reachable"], health["database"]["pending_writes"]) == (True, 0)


def _restart(vm: VictoriaServer) -> None:
    vm.start()  # same port and data directory


def test_answers_are_not_cached_when_others_write_the_backend(tmp_path: Path) -> None:
    """Other agents and replays write a remote backend without this server's agent
    knowing: the same fixed-range URL must show what arrived since (no response cache)."""
    clock = FakeClock(T0 + 3 * 3600.0)
    with victoria_server(tmp_path / "vm") as vm:
        settings = load_settings(
            None,
            database={
                "path": str(tmp_path / "sysmon.db"),
                "backend": "victoriametrics",
                "url": vm.url,
            },
        )
        with (
            victoria_stack(settings, clock, vm.url) as running,
            httpx.Client(base_url=running.base_url, timeout=10) as client,
        ):
            ticks = running.tick(2)
            vm.flush()
            start = ticks[0].timestamp
            params = {"start": start, "end": start + 9, "resolution": "raw"}

            def points() -> int:
                body = client.get("/api/v1/metrics/cpu", params=params).json()
                return sum(v is not None for v in body["fields"]["percent"])

            before = points()
            assert points() == before  # asked twice, nothing new
            # A replay (another writer) fills later slots; our agent ticks no more.
            other = VictoriaStore(vm.url, clock=clock, host=HOST, interval_seconds=1)
            other.open()
            other.write_many([cpu(start + k, 50.0 + k) for k in range(4, 8)])
            vm.flush()
            assert points() == before + 4
