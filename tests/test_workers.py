"""``server.workers: 2``: two API processes, both fed every tick by the one agent."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.faults.stack_process import monitor


def test_two_server_workers_share_one_agent(tmp_path: Path) -> None:
    with monitor(tmp_path, {"server": {"workers": 2}}) as mon:
        seen: dict[int, list[float]] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            # A new connection each time: the kernel spreads them over the workers.
            with httpx.Client(base_url=mon.base, timeout=5) as client:
                pid = client.get("/api/v1/health").json()["server"]["pid"]
                current = client.get("/api/v1/metrics/current")
            if current.status_code == 200:
                seen.setdefault(pid, []).append(current.json()["timestamp"])
            if len(seen) == 2 and all(len(set(ts)) >= 2 for ts in seen.values()):
                break
            time.sleep(0.05)
        assert len(seen) == 2, f"answers came from {sorted(seen)} only"
        for pid, stamps in seen.items():
            assert len(set(stamps)) >= 2, f"worker {pid} did not see new ticks: {stamps}"
        agents = {mon.health()["agent"]["pid"] for _ in range(10)}
        assert len(agents) == 1, "one agent for both workers"
