"""Sensors collector on canned psutil sensor values (tests/fixtures/sensors, hand-written)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from sysmon.collectors.sensors import (
    Battery,
    Fan,
    PsutilSensors,
    SensorsCollector,
    Temperature,
    battery_from,
    fan_from,
    sensor_names,
    temperature_from,
)

from .fakes import FIXTURES, label_values, labelled, totals


def load() -> list[dict[str, Any]]:
    doc = json.loads((FIXTURES / "sensors" / "laptop.json").read_text())
    ticks: list[dict[str, Any]] = doc["ticks"]
    return ticks


class FakeSensors:
    """A ``SensorReader`` over psutil-shaped dicts, through the real converters."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.reads = 0

    def temperatures(self) -> Mapping[str, Sequence[Temperature]]:
        self.reads += 1
        temps = self.state.get("temperatures") or {}
        return {c: [temperature_from(SimpleNamespace(**t)) for t in ts] for c, ts in temps.items()}

    def fans(self) -> Mapping[str, Sequence[Fan]]:
        fans = self.state.get("fans") or {}
        return {c: [fan_from(SimpleNamespace(**f)) for f in fs] for c, fs in fans.items()}

    def battery(self) -> Battery | None:
        batt = self.state.get("battery")
        return None if batt is None else battery_from(SimpleNamespace(**batt))


def make(state: dict[str, Any], **options: float) -> tuple[SensorsCollector, FakeSensors]:
    reader = FakeSensors(state)
    return SensorsCollector(None, SensorsCollector.Options(**options), reader), reader


def test_laptop_temperatures_fans_battery() -> None:
    collector, _ = make(load()[0])
    out = collector.collect(1.0)
    assert label_values(out, "sensor") == {
        "acpitz/1", "acpitz/2", "coretemp/Core 0", "coretemp/Core 1", "coretemp/Package id 0",
        "iwlwifi_1/1", "nvme/Composite", "nvme/Composite#2", "nvme/Sensor 1",
        "thinkpad/1", "dell_smm/Processor Fan",
    }  # fmt: skip
    assert labelled(out, "sensor", "nvme/Composite#2") == {"temperature_celsius": 44.85}
    assert labelled(out, "sensor", "thinkpad/1") == {"fan_rpm": 2328.0}
    assert totals(out) == {
        "temperature_celsius": 63.0,  # the hottest
        "fan_rpm": 2328.0,  # the fastest
        "battery_percent": 93.0,
        "battery_power_plugged": 1.0,  # charging: no time left
    }


def test_refresh_period_repeats_last_values() -> None:
    ticks = load()
    collector, reader = make(ticks[0], refresh_seconds=5)
    first = collector.collect(100.0)
    reader.state = ticks[1]
    assert collector.collect(104.0).samples == first.samples
    assert reader.reads == 1
    later = collector.collect(105.0)
    assert reader.reads == 2
    assert totals(later) == {
        "temperature_celsius": 72.0,
        "battery_percent": 92.5,
        "battery_seconds_left": 13440.0,
        "battery_power_plugged": 0.0,
    }
    assert label_values(later, "sensor") == {"coretemp/Package id 0"}


def test_refresh_zero_reads_every_tick() -> None:
    collector, reader = make(load()[0], refresh_seconds=0)
    for i in range(3):
        collector.collect(float(i))
    assert reader.reads == 3


def test_no_sensors_is_empty_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    collector, _ = make({}, refresh_seconds=0)
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.sensors"):
        for i in range(4):
            assert collector.collect(float(i)).samples == ()
    assert len([r for r in caplog.records if "not available" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("secsleft", "plugged", "expected"),
    [
        (psutil.POWER_TIME_UNLIMITED, True, Battery(50.0, None, True)),
        (psutil.POWER_TIME_UNKNOWN, None, Battery(50.0, None, None)),
        (3600, False, Battery(50.0, 3600.0, False)),
    ],
)
def test_battery_sentinels(secsleft: int, plugged: bool | None, expected: Battery) -> None:
    obj = SimpleNamespace(percent=50, secsleft=secsleft, power_plugged=plugged)
    assert battery_from(obj) == expected


def test_sensor_names() -> None:
    assert sensor_names("nvme", ["Composite", "", "Composite", " "]) == [
        "nvme/Composite",
        "nvme/2",
        "nvme/Composite#2",
        "nvme/4",
    ]


def test_psutil_reader_on_a_platform_without_sensor_functions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for fn in ("sensors_temperatures", "sensors_fans", "sensors_battery"):
        monkeypatch.delattr(psutil, fn, raising=False)
    reader = PsutilSensors()
    assert reader.temperatures() == {} and reader.fans() == {} and reader.battery() is None


@pytest.mark.live
def test_live_sensors_through_psutil() -> None:
    """Whatever this host has; on a VM without sensors: empty, no error."""
    collector = SensorsCollector(None, SensorsCollector.Options())
    out = collector.collect(1.0)
    expected_any = bool(
        psutil.sensors_temperatures() or psutil.sensors_fans() or psutil.sensors_battery()
    )
    assert bool(out.samples) == expected_any
    for s in out.samples:
        if s.field == "temperature_celsius":
            assert -50.0 < s.value < 150.0
