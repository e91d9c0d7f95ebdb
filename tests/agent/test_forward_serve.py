"""Forwarding in the real service: ``sysmon serve`` with a YAML ``forward:`` entry, real
time, the forwarder on its own thread, a real ``victoria-metrics`` stopped for a few
seconds and started again. Afterwards every slot the local database holds for the
window is in VictoriaMetrics too, and health went degraded with the queue, then ok."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from sysmon.clock import SystemClock
from sysmon.storage.base import RangeQuery
from sysmon.storage.victoria import VictoriaStore
from tests.faults.stack_process import Monitor, monitor, wait_for
from tests.support.victoria import victoria_server


def forward_status(mon: Monitor) -> dict[str, Any]:
    return dict(mon.health().get("forward", {}).get("vm") or {})


def test_sysmon_serve_forwards_through_an_outage(tmp_path: Path) -> None:
    with victoria_server(tmp_path / "vm") as vm:
        config = {
            "forward": [
                {
                    "name": "vm",
                    "backend": "victoriametrics",
                    "url": vm.url,
                    "degraded_after_ticks": 2,
                    "backoff_max": "1s",
                    "timeout": "1s",
                }
            ]
        }
        with monitor(tmp_path, config) as mon:
            wait_for(lambda: (forward_status(mon).get("sent_ticks") or 0) >= 2, 15, "first sends")
            start = float(int(time.time()))
            vm.stop()
            wait_for(lambda: mon.health()["status"] == "degraded", 15, "degraded health")
            health = mon.health()
            lines = [p for p in health["problems"] if p.startswith("forward vm failing")]
            assert lines, health["problems"]
            assert health["forward"]["vm"]["queued_ticks"] >= 3
            vm.start()
            wait_for(lambda: forward_status(mon).get("queued_ticks") == 0, 20, "queue drained")
            wait_for(lambda: mon.health()["status"] == "ok", 10, "health ok again")
            end = float(int(time.time())) - 2
            mon.wait_stored(end)
            local_missing = mon.missing("memory", start, end)
        vm.flush()
        store = VictoriaStore(vm.url, clock=SystemClock(), host=socket.gethostname())
        store.open()
        try:
            res = store.query(RangeQuery("memory", start, end, resolution="raw"))
        finally:
            store.close()
        remote_missing = [
            t for i, t in enumerate(res.timestamps) if res.fields["percent"][i] is None
        ]
        assert remote_missing == local_missing, "VictoriaMetrics lacks a tick the agent stored"
        assert len(res.timestamps) >= 5
