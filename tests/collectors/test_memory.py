from __future__ import annotations

from typing import Any

from sysmon.collectors.memory import MemoryCollector

from .fakes import FakeSource, run_ticks, totals

GiB = 1024**3
MiB = 1024**2


def make(state: dict[str, Any]) -> tuple[MemoryCollector, FakeSource]:
    source = FakeSource(state)
    return MemoryCollector(source, MemoryCollector.Options()), source


def test_gauges_and_swap_rates(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    first, second, third = run_ticks(collector, source, ticks)
    gauges = {
        "total_bytes": 8 * GiB,
        "available_bytes": 4 * GiB,
        "used_bytes": 3 * GiB,
        "percent": 50.0,
        "buffers_bytes": 100 * MiB,
        "cached_bytes": 1 * GiB,
        "swap_total_bytes": 2 * GiB,
        "swap_used_bytes": 512 * MiB,
        "swap_percent": 25.0,
    }
    assert totals(first) == gauges  # no swap rates on the first tick
    assert totals(second) == {
        **gauges,
        "swap_in_bytes_per_sec": 4096.0,
        "swap_out_bytes_per_sec": 8192.0,
    }
    assert totals(third)["swap_in_bytes_per_sec"] == 0.0


def test_no_swap_configured_reads_zero(ticks: list[dict[str, Any]]) -> None:
    for t in ticks:
        t["swap_memory"] = {"total": 0, "used": 0, "free": 0, "percent": 0.0, "sin": 0, "sout": 0}
    collector, source = make(ticks[0])
    second = totals(run_ticks(collector, source, ticks[:2])[1])
    assert second["swap_total_bytes"] == 0 and second["swap_percent"] == 0.0
    assert second["swap_in_bytes_per_sec"] == 0.0


def test_platform_without_swap_or_buffers_omits_them(ticks: list[dict[str, Any]]) -> None:
    for t in ticks:
        t["swap_memory"] = None
        del t["virtual_memory"]["buffers"], t["virtual_memory"]["cached"]
    collector, source = make(ticks[0])
    second = totals(run_ticks(collector, source, ticks[:2])[1])
    assert set(second) == {"total_bytes", "available_bytes", "used_bytes", "percent"}


def test_swap_counter_reset(ticks: list[dict[str, Any]]) -> None:
    ticks[1]["swap_memory"]["sin"] = 0
    collector, source = make(ticks[0])
    second = totals(run_ticks(collector, source, ticks[:2])[1])
    assert "swap_in_bytes_per_sec" not in second
    assert second["swap_out_bytes_per_sec"] == 8192.0
