"""Every collector on this machine, through the real psutil (no fakes)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.collectors.registry import discover
from app.collectors.source import PsutilSource
from app.models import Collected

pytestmark = pytest.mark.live

PERCENT_FIELDS = {"percent", "user_percent", "system_percent", "iowait_percent",
                  "steal_percent", "idle_percent", "swap_percent", "busy_percent"}  # fmt: skip


def test_every_collector_on_this_host() -> None:
    registry = discover()
    source = PsutilSource()
    collectors = {n: registry.get(n)(source, registry.get(n).Options()) for n in registry.names()}
    results: list[dict[str, Collected]] = []
    for _ in range(3):
        now = time.monotonic()
        results.append({n: c.collect(now) for n, c in collectors.items()})
        time.sleep(0.3)  # real kernel counters need real time to move
    first, second, _ = results

    cpu1 = {s.field for s in first["cpu"].samples if not s.labels}
    assert "percent" not in cpu1 and "ctx_switches_per_sec" not in cpu1
    cpu2 = {s.field: s.value for s in second["cpu"].samples if not s.labels}
    assert "percent" in cpu2 and cpu2["ctx_switches_per_sec"] > 0
    mem = {s.field: s.value for s in second["memory"].samples}
    assert mem["total_bytes"] > 0
    assert any(s.field == "bytes_recv_per_sec" for s in second["network"].samples)

    for tick in results:
        for name, out in tick.items():
            for s in out.samples:
                assert s.value >= 0, (name, s)
                if s.field in PERCENT_FIELDS:
                    assert 0.0 <= s.value <= 100.0, (name, s)
    rows: Any = second["processes"].rows
    assert rows and all(r["cpu_percent"] >= 0 for r in rows)  # may exceed 100 (threads)
    assert all(0.0 <= r["memory_percent"] <= 100.0 for r in rows)
    for c in collectors.values():
        c.close()
