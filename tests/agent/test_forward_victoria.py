"""Forwarding against a real VictoriaMetrics server (``tests.support.victoria``).

The whole stack is real (``tests.support.stack``): real collectors, the agent writing
its local SQLite file and forwarding through ``forward-vm.db``, the live channel, the
server answering ``/api/v1/health`` over HTTP. Only time is fake (ticks on demand), so
the outage is a few ticks long without waiting for it. The remote is stopped for some
ticks and started again on the same port and data; afterwards every tick the local
store holds is in VictoriaMetrics with the same values, and health showed the queue
while it was down and went back to ok.
"""

from __future__ import annotations

import math
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmon.agent.service import Agent
from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.storage.base import RangeQuery, TimeSeriesStore
from sysmon.storage.victoria import VictoriaStore
from tests.support.stack import short_socket, stack
from tests.support.victoria import VictoriaServer, victoria_server

T0 = 1_700_000_000.0  # 2023: within the fixture server's 100y retention


def forward_settings(tmp_path: Path, url: str) -> Settings:
    return load_settings(
        None,
        database={"path": str(tmp_path / "data" / "sysmon.db")},
        forward=[
            {
                "name": "vm",
                "backend": "victoriametrics",
                "url": url,
                "degraded_after_ticks": 3,
                "backoff_max": "2s",
                "timeout": "2s",
            }
        ],
    )


def columns(store: TimeSeriesStore, metric: str, start: float, end: float) -> dict[str, Any]:
    res = store.query(RangeQuery(metric, start, end, resolution="raw", max_points=10_000))
    return {"timestamps": res.timestamps, **res.fields}


def assert_same_series(local: dict[str, Any], remote: dict[str, Any]) -> None:
    """Same slots, same gaps, same values to VictoriaMetrics' ~12 decimal digits (its
    decimal scale is shared by a block, so relative to the column's largest value)."""
    assert remote["timestamps"] == local["timestamps"]
    assert sorted(remote) == sorted(local)
    for name, column in local.items():
        assert [v is None for v in remote[name]] == [v is None for v in column], name
        scale = max((abs(v) for v in column if v is not None), default=0.0)
        for got, want in zip(remote[name], column, strict=True):
            if got == want:
                continue
            assert math.isclose(got, want, rel_tol=1e-11, abs_tol=scale * 1e-11), (name, got, want)


def remote_store(vm: VictoriaServer) -> VictoriaStore:
    store = VictoriaStore(vm.url, clock=FakeClock(), host=socket.gethostname())
    store.open()
    return store


def test_ticks_wait_out_an_outage_and_arrive_whole_health_shows_it(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    with victoria_server(tmp_path / "vm") as vm:
        settings = forward_settings(tmp_path, vm.url)
        with stack(settings, clock) as running, httpx.Client(base_url=running.base_url) as http:
            ticks = running.tick(3)
            forward = http.get("/api/v1/health").json()["forward"]["vm"]
            assert forward["queued_ticks"] == 0 and forward["last_sent_at"] == ticks[-1].timestamp

            vm.stop()
            ticks += running.tick(6)
            health = http.get("/api/v1/health").json()
            forward = health["forward"]["vm"]
            assert forward["queued_ticks"] == 6
            assert forward["queued_bytes"] > 0
            assert forward["oldest_queued_age_seconds"] == 5.0  # stamped t+3, now t+8
            assert forward["dropped_ticks"] == 0
            assert "ConnectError" in forward["last_error"]
            assert health["status"] == "degraded"
            assert [p for p in health["problems"] if p.startswith("forward vm")] == [
                f"forward vm failing for 5 ticks, 6 queued (oldest 5s): {forward['last_error']}"
            ]
            assert (tmp_path / "data" / "forward-vm.db").stat().st_mode & 0o777 == 0o600

            vm.start()  # same port, same data
            for _ in range(4):  # the backoff (at most 2 s) lets a tick through soon
                ticks += running.tick(1)
                if http.get("/api/v1/health").json()["forward"]["vm"]["queued_ticks"] == 0:
                    break
            health = http.get("/api/v1/health").json()
            assert health["forward"]["vm"]["queued_ticks"] == 0
            assert health["forward"]["vm"]["last_error"] is None
            assert health["forward"]["vm"]["sent_ticks"] == len(ticks)
            assert health["status"] == "ok", health["problems"]

            vm.flush()
            start, end = ticks[0].timestamp, ticks[-1].timestamp
            remote = remote_store(vm)
            try:
                for metric in ("cpu", "memory", "processes"):
                    local = columns(running.agent.store, metric, start, end)
                    assert local["timestamps"] == [t.timestamp for t in ticks]
                    assert_same_series(local, columns(remote, metric, start, end))
            finally:
                remote.close()


def test_ticks_queued_while_the_remote_was_down_are_sent_after_an_agent_restart(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0 + 3600)
    with victoria_server(tmp_path / "vm") as vm:
        settings = forward_settings(tmp_path, vm.url)
        vm.stop()
        agent = Agent(settings, clock=clock, channel=short_socket())
        agent.start(schedule=False)
        stamps = []
        try:
            for _ in range(5):
                stamps.append(agent.tick(clock.time()).timestamp)
                clock.advance(1)
        finally:
            agent.stop()
        assert agent.status(clock.time())["forward"]["vm"]["queued_ticks"] == 5

        vm.start()
        again = Agent(settings, clock=clock, channel=short_socket())
        again.start(schedule=False)
        try:
            assert again.status(clock.time())["forward"]["vm"]["queued_ticks"] == 5
            stamps.append(again.tick(clock.time()).timestamp)
            status = again.status(clock.time())["forward"]["vm"]
            assert (status["queued_ticks"], status["sent_ticks"]) == (0, 6)
            vm.flush()
            remote = remote_store(vm)
            try:
                got = columns(remote, "memory", stamps[0], stamps[-1])
                assert got["timestamps"] == stamps
                assert all(v is not None for v in got["percent"])
            finally:
                remote.close()
        finally:
            again.stop()


@pytest.fixture(autouse=True)
def _quiet_httpx(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="httpx")
