from __future__ import annotations

from typing import Any

import pytest

from sysmon.collectors.network import NetworkCollector

from .fakes import FakeSource, label_values, labelled, run_ticks, totals


def make(state: dict[str, Any], **opts: Any) -> tuple[NetworkCollector, FakeSource]:
    source = FakeSource(state)
    return NetworkCollector(source, NetworkCollector.Options(**opts)), source


def test_rates_and_totals_exclude_loopback(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    first, second, _ = run_ticks(collector, source, ticks)
    assert first.samples == ()
    assert labelled(second, "interface", "eth0") == pytest.approx(
        {"bytes_sent_per_sec": 2048, "bytes_recv_per_sec": 4096, "packets_sent_per_sec": 20,
         "packets_recv_per_sec": 40, "errin_per_sec": 1, "errout_per_sec": 0,
         "dropin_per_sec": 2, "dropout_per_sec": 0}
    )  # fmt: skip
    # lo (by name) and loopx (by kernel flag) have samples but stay out of the totals
    assert labelled(second, "interface", "lo")["bytes_sent_per_sec"] == 100_000
    assert totals(second) == pytest.approx(
        {"bytes_sent_per_sec": 2048 + 1024, "bytes_recv_per_sec": 4096 + 512,
         "packets_sent_per_sec": 24, "packets_recv_per_sec": 42, "errin_per_sec": 1,
         "errout_per_sec": 0, "dropin_per_sec": 2, "dropout_per_sec": 0}
    )  # fmt: skip


def test_interface_reset_drops_its_rates_and_the_totals(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    third = run_ticks(collector, source, ticks)[2]
    assert "eth0" not in label_values(third, "interface")
    assert labelled(third, "interface", "wlan0")["bytes_sent_per_sec"] == 1024
    assert totals(third) == {}


def test_exclude_patterns(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0], exclude_interfaces=["lo", "wlan*"])
    second = run_ticks(collector, source, ticks[:2])[1]
    assert totals(second)["bytes_sent_per_sec"] == 2048


def test_loopback_flags_are_read_only_when_interfaces_change(
    ticks: list[dict[str, Any]],
) -> None:
    collector, source = make(ticks[0])
    run_ticks(collector, source, ticks[:2])
    assert source.calls.count("net_if_stats") == 1
    ticks[1]["net_io_counters"]["tun0"] = ticks[1]["net_io_counters"]["wlan0"]
    run_ticks(collector, source, ticks[1:2])
    assert source.calls.count("net_if_stats") == 2


def test_net_if_stats_failure_is_not_fatal(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    source.fail["net_if_stats"] = OSError("ioctl failed")
    second = run_ticks(collector, source, ticks[:2])[1]
    # loopx is no longer known as loopback; lo is still excluded by name
    assert totals(second)["bytes_sent_per_sec"] == 2048 + 1024 + 200
