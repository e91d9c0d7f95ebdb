from __future__ import annotations

from typing import Any

import pytest

from sysmon.collectors.cpu import CpuCollector, busy_percent
from sysmon.collectors.source import CpuTimes

from .fakes import FakeSource, labelled, run_ticks, totals


def make(state: dict[str, Any], **opts: Any) -> tuple[CpuCollector, FakeSource]:
    source = FakeSource(state)
    return CpuCollector(source, CpuCollector.Options(**opts)), source


def test_first_tick_has_no_percentages_or_rates(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    first = run_ticks(collector, source, ticks[:1])[0]
    assert totals(first) == {"load_1": 0.5, "load_5": 0.4, "load_15": 0.3, "freq_mhz": 2400.0}
    assert labelled(first, "core", "0") == {}


def test_percentages_and_rates_over_three_ticks(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    _, second, third = run_ticks(collector, source, ticks)
    assert totals(second) == pytest.approx(
        {
            "percent": 36.0,
            "user_percent": 20.0,
            "system_percent": 10.0,
            "iowait_percent": 4.0,
            "steal_percent": 6.0,
            "idle_percent": 60.0,
            "load_1": 0.5,
            "load_5": 0.4,
            "load_15": 0.3,
            "ctx_switches_per_sec": 2000.0,
            "interrupts_per_sec": 500.0,
            "freq_mhz": 2400.0,
        }
    )
    assert labelled(second, "core", "0") == pytest.approx({"percent": 56.0})
    assert labelled(second, "core", "1") == pytest.approx({"percent": 16.0})
    t3 = totals(third)
    assert t3["percent"] == pytest.approx(35.0)
    assert t3["iowait_percent"] == pytest.approx(0.0)
    assert t3["ctx_switches_per_sec"] == pytest.approx(2500.0)
    assert labelled(third, "core", "0") == pytest.approx({"percent": 34.0})
    assert labelled(third, "core", "1") == pytest.approx({"percent": 36.0})


def test_missing_sensors_are_absent_not_zero(ticks: list[dict[str, Any]]) -> None:
    for t in ticks:
        t["cpu_freq"] = None
        t["getloadavg"] = None
        for key in ("cpu_times",):
            t[key].pop("iowait")
            t[key].pop("steal")
    collector, source = make(ticks[0])
    second = totals(run_ticks(collector, source, ticks[:2])[1])
    assert "freq_mhz" not in second and "load_1" not in second
    assert "iowait_percent" not in second and "steal_percent" not in second
    # without iowait/steal the same deltas give user 10/45, busy 15/45
    assert second["percent"] == pytest.approx(100 * 15 / 45)


def test_counter_reset_gives_no_values_for_that_tick(ticks: list[dict[str, Any]]) -> None:
    ticks[1]["cpu_stats"] = {"ctx_switches": 5, "interrupts": 1}
    collector, source = make(ticks[0])
    _, second, third = run_ticks(collector, source, ticks)
    assert "ctx_switches_per_sec" not in totals(second)
    assert totals(third)["ctx_switches_per_sec"] == pytest.approx(14_495.0)


def test_core_count_change_skips_per_core_for_one_tick(ticks: list[dict[str, Any]]) -> None:
    ticks[1]["cpu_times_percpu"] = ticks[1]["cpu_times_percpu"][:1]
    collector, source = make(ticks[0])
    _, second, _ = run_ticks(collector, source, ticks)
    assert labelled(second, "core", "0") == {}


def test_per_core_can_be_disabled(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0], per_core=False)
    run_ticks(collector, source, ticks[:2])
    assert "cpu_times_percpu" not in source.calls


def test_busy_percent_clamps_and_refuses_backwards_totals() -> None:
    a = CpuTimes(user=10, nice=0, system=0, idle=10)
    assert busy_percent(a, a) is None
    assert busy_percent(CpuTimes(100, 0, 0, 100), a) is None
    assert busy_percent(a, CpuTimes(user=20, nice=0, system=0, idle=10)) == 100.0


def test_total_failure_raises(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    source.fail["cpu_times"] = OSError("no /proc/stat")
    with pytest.raises(OSError, match="no /proc/stat"):
        collector.collect(1.0)


def test_frequency_is_reread_every_refresh_period(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0], freq_refresh_seconds=10)
    source.state["cpu_freq"] = {"current": 2400.0}
    assert totals(collector.collect(100.0))["freq_mhz"] == 2400.0
    source.state["cpu_freq"] = {"current": 1800.0}
    assert totals(collector.collect(109.5))["freq_mhz"] == 2400.0  # held
    assert source.calls.count("cpu_freq") == 1
    assert totals(collector.collect(110.0))["freq_mhz"] == 1800.0
    source.state["cpu_freq"] = None  # sensor gone: absent after the next refresh
    assert "freq_mhz" not in totals(collector.collect(120.0))
