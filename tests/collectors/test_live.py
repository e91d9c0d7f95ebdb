"""Every collector on this machine, through the real psutil (no fakes)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Collection, Iterator
from typing import Any

import pytest

from sysmon.collectors.registry import discover
from sysmon.collectors.source import ProcessInfo, PsutilSource
from sysmon.models import Collected

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


class _CountingSource(PsutilSource):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[set[int]] = []

    def read_processes(self, pids: Collection[int]) -> Iterator[ProcessInfo]:
        self.asked.append(set(pids))
        return super().read_processes(pids)


def test_processes_skips_idle_children_and_catches_busy_and_exited_ones() -> None:
    """Real kernel, real clock: idle children are read once per refresh period, a busy
    one is read every tick with a real CPU %, an exited one is gone the next tick."""
    source = _CountingSource()
    factory: Any = discover().get("processes")
    collector = factory(source, factory.Options(top_n=10_000, idle_refresh_seconds=0.6))
    idle = [subprocess.Popen(["sleep", "60"]) for _ in range(12)]
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        rows: dict[int, Any] = {}
        stamps: list[float] = []
        for _ in range(14):
            stamps.append(time.monotonic())
            rows = {r["pid"]: r for r in collector.collect(stamps[-1]).rows}
            assert all(p.pid in rows for p in idle)
            time.sleep(0.15)
        assert rows[busy.pid]["cpu_percent"] > 5.0  # a real share, even on a loaded host
        assert all(busy.pid in asked for asked in source.asked[1:])
        longest_tick = max(b - a for a, b in itertools.pairwise(stamps))
        skipped = 0
        for p in idle:  # read at least once per period (0.6 s, plus a tick)
            at = [stamps[i] for i, asked in enumerate(source.asked) if p.pid in asked]
            assert max(b - a for a, b in itertools.pairwise(at)) <= 0.6 + longest_tick
            skipped += len(stamps) - len(at)
        assert skipped > len(idle) * 2  # ... and not every tick
        gone = idle.pop()
        gone.kill()
        gone.wait()
        rows = {r["pid"]: r for r in collector.collect(time.monotonic()).rows}
        assert gone.pid not in rows and all(p.pid in rows for p in idle)
    finally:
        for p in [*idle, busy]:
            p.kill()
            p.wait()
        collector.close()
        source.close()
