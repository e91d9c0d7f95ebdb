"""The spec's commands work: ``uvicorn app.main:app`` and ``sysmon serve``, with the real
scheduler collecting every second into a real SQLite file."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.faults.stack_process import alive
from tests.support.process import free_port, running_service, service_env


@pytest.mark.parametrize("how", ["uvicorn", "sysmon"])
def test_service_collects_and_serves(tmp_path: Path, how: str) -> None:
    port = free_port()
    db = tmp_path / "sysmon.db"
    argv = (
        ["uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        if how == "uvicorn"
        else ["sysmon", "serve", "--port", str(port)]
    )
    with running_service(argv, service_env(db), port) as proc:
        base = f"http://127.0.0.1:{port}"
        first = httpx.get(f"{base}/api/v1/metrics/current").json()["timestamp"]
        deadline = time.monotonic() + 10
        later = first
        while later == first and time.monotonic() < deadline:
            time.sleep(0.2)
            later = httpx.get(f"{base}/api/v1/metrics/current").json()["timestamp"]
        assert later > first, "the scheduler keeps collecting"
        assert abs(later - round(later)) < 0.5
        # `current` is published before the tick's write commits: poll the history.
        stored = False
        while not stored and time.monotonic() < deadline:
            cpu = httpx.get(f"{base}/api/v1/metrics/cpu", params={"resolution": "raw"}).json()
            stored = any(v is not None for v in cpu["fields"]["percent"])
            time.sleep(0.1)
        assert stored, "CPU percentages reach the database"
        health = httpx.get(f"{base}/api/v1/health").json()
        agent = health["agent"]["pid"]
        assert agent != proc.pid and health["server"]["pid"] != agent, "collection is apart"
        if how == "sysmon":  # forked from the supervisor, each named by its command line
            for pid, role in ((agent, "agent"), (health["server"]["pid"], "server")):
                child = psutil.Process(pid)
                assert child.ppid() == proc.pid
                words = " ".join(child.cmdline()).split()  # the title, padded with NULs
                assert words[1:3] == ["-m", "sysmon"] and role in words, child.cmdline()
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in proc.log_text()
        assert not alive(agent), "the supervised agent stops with the service"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_service_binds_localhost_by_default(tmp_path: Path) -> None:
    port = free_port()
    with running_service(
        ["sysmon", "serve", "--port", str(port)], service_env(tmp_path / "d.db"), port
    ):
        body = httpx.get(f"http://127.0.0.1:{port}/api/v1/health").json()
        assert body["status"] == "ok"
        import socket

        # Not reachable on any non-loopback address of this host.
        for addr in {
            i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        }:
            if addr.startswith("127."):
                continue
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"http://{addr}:{port}/api/v1/health", timeout=2)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_server_runs_on_the_configured_event_loop(tmp_path: Path, loop: str) -> None:
    """``server.event_loop``: asyncio by default (uvicorn alone would take uvloop whenever
    it is installed, as it is here); uvloop when asked."""
    port = free_port()
    env = service_env(tmp_path / "d.db")
    if loop != "asyncio":
        env["SYSMON_SERVER__EVENT_LOOP"] = loop
    with running_service(["sysmon", "serve", "--port", str(port)], env, port):
        server = httpx.get(f"http://127.0.0.1:{port}/api/v1/health").json()["server"]["pid"]
        mapped = Path(f"/proc/{server}/maps").read_text()
        assert ("uvloop" in mapped) == (loop == "uvloop")
