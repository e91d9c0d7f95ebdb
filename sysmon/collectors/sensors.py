"""Sensors: temperatures, fan speeds and the battery, through psutil.

psutil already knows the platform quirks (hwmon vs thermal zones on Linux, the coretemp
duplicate, FreeBSD's sysctl, macOS's battery), so this collector does not read sysfs
itself. The psutil calls sit behind a tiny seam of their own, ``SensorReader``
(``PsutilSensors`` in production), rather than the shared ``SystemSource``: only this
collector needs them, and tests feed canned psutil-shaped values
(``tests/fixtures/sensors/``) through the same converters.

Cost. On Linux ``sensors_temperatures`` globs ``/sys/class/hwmon`` and reads four files
per sensor (input, max, crit, label): ~1-2 ms on a laptop with 20 sensors, too much for
every tick for values that move slowly. So sensors are read every ``refresh_seconds``
(default 5) and the last values are emitted on the ticks in between, like cpu's
``freq_mhz``. A VM or container without sensors costs a couple of empty globs per refresh.

Labels. ``sensor="<chip>/<label>"`` (``coretemp/Package id 0``, ``thinkpad/fan1``); an
unlabelled reading is numbered within its chip (``acpitz/1``), and a label repeated within
a chip (two NVMe drives are both chip ``nvme``, each with a ``Composite`` reading) gets
``#2``, ``#3``. Totals: the hottest temperature and the fastest fan.

Absent: no sensor of any kind (VMs, containers, macOS temperatures): no samples, one
INFO line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol

import psutil
from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.hostfs import Presence
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "sensors"


class Temperature(NamedTuple):
    label: str
    current: float
    """Degrees Celsius."""


class Fan(NamedTuple):
    label: str
    current: float
    """Revolutions per minute."""


class Battery(NamedTuple):
    percent: float
    seconds_left: float | None
    """``None`` when charging, full or unknown (psutil's POWER_TIME_* sentinels)."""
    power_plugged: bool | None


def temperature_from(obj: Any) -> Temperature:
    return Temperature(str(obj.label or ""), float(obj.current))


def fan_from(obj: Any) -> Fan:
    return Fan(str(obj.label or ""), float(obj.current))


def battery_from(obj: Any) -> Battery:
    secs = obj.secsleft
    known = isinstance(secs, int | float) and secs not in (
        psutil.POWER_TIME_UNKNOWN,
        psutil.POWER_TIME_UNLIMITED,
    )
    plugged = obj.power_plugged
    return Battery(
        float(obj.percent),
        float(secs) if known and secs >= 0 else None,
        None if plugged is None else bool(plugged),
    )


class SensorReader(Protocol):
    """The psutil sensor calls, converted. Each returns empty/``None`` when absent."""

    def temperatures(self) -> Mapping[str, Sequence[Temperature]]: ...

    def fans(self) -> Mapping[str, Sequence[Fan]]: ...

    def battery(self) -> Battery | None: ...


class PsutilSensors:
    """``SensorReader`` over psutil; a function the platform lacks reads as empty."""

    def temperatures(self) -> Mapping[str, Sequence[Temperature]]:
        fn = getattr(psutil, "sensors_temperatures", None)
        if fn is None:
            return {}
        return {chip: [temperature_from(t) for t in temps] for chip, temps in fn().items()}

    def fans(self) -> Mapping[str, Sequence[Fan]]:
        fn = getattr(psutil, "sensors_fans", None)
        if fn is None:
            return {}
        return {chip: [fan_from(f) for f in fans] for chip, fans in fn().items()}

    def battery(self) -> Battery | None:
        fn = getattr(psutil, "sensors_battery", None)
        batt = fn() if fn is not None else None
        return None if batt is None else battery_from(batt)


def sensor_names(chip: str, labels: Sequence[str]) -> list[str]:
    """``chip/label`` for each reading, numbered when unlabelled, ``#n`` when repeated."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, label in enumerate(labels, start=1):
        base = f"{chip}/{label.strip() or i}"
        n = seen.get(base, 0) + 1
        seen[base] = n
        names.append(base if n == 1 else f"{base}#{n}")
    return names


@register("sensors")
class SensorsCollector:
    """Temperatures and fans per sensor, battery charge."""

    class Options(CollectorOptions):
        refresh_seconds: float = Field(
            default=5.0,
            ge=0,
            le=3600,
            description="How often sensors are read (psutil reads several sysfs files "
            "per sensor); the last values are emitted in between. 0 = every tick",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("temperature_celsius", "°C", "Temperature (totals: the hottest sensor)",
                   labels=("sensor",)),
        MetricInfo("fan_rpm", "rpm", "Fan speed (totals: the fastest fan)",
                   labels=("sensor",)),
        MetricInfo("battery_percent", "%", "Battery charge"),
        MetricInfo("battery_seconds_left", "s",
                   "Estimated battery time left (absent when charging or unknown)",
                   integer=True),
        MetricInfo("battery_power_plugged", "", "1 on mains power, 0 on battery",
                   integer=True),
    )  # fmt: skip

    def __init__(
        self, source: object, options: Options, reader: SensorReader | None = None
    ) -> None:
        self._options = options
        self._reader: SensorReader = reader or PsutilSensors()
        self._last: tuple[Sample, ...] = ()
        self._read_at: float | None = None
        self._presence = Presence(logger, METRIC)

    def collect(self, monotonic: float) -> Collected:
        last = self._read_at
        if last is not None and 0 <= monotonic - last < self._options.refresh_seconds:
            return Collected(samples=self._last)
        self._read_at = monotonic
        self._last = tuple(self._read())
        if self._last:
            self._presence.present()
        else:
            self._presence.absent("psutil found no temperature, fan or battery")
        return Collected(samples=self._last)

    def _read(self) -> list[Sample]:
        samples: list[Sample] = []
        reader = self._reader
        hottest: float | None = None
        for chip, temps in sorted(reader.temperatures().items()):
            for name, temp in zip(sensor_names(chip, [t.label for t in temps]), temps, strict=True):
                samples.append(
                    Sample(METRIC, "temperature_celsius", temp.current, (("sensor", name),))
                )
                hottest = temp.current if hottest is None else max(hottest, temp.current)
        if hottest is not None:
            samples.append(Sample(METRIC, "temperature_celsius", hottest))
        fastest: float | None = None
        for chip, fans in sorted(reader.fans().items()):
            for name, fan in zip(sensor_names(chip, [f.label for f in fans]), fans, strict=True):
                samples.append(Sample(METRIC, "fan_rpm", fan.current, (("sensor", name),)))
                fastest = fan.current if fastest is None else max(fastest, fan.current)
        if fastest is not None:
            samples.append(Sample(METRIC, "fan_rpm", fastest))
        battery = reader.battery()
        if battery is not None:
            samples.append(Sample(METRIC, "battery_percent", battery.percent))
            if battery.seconds_left is not None:
                samples.append(Sample(METRIC, "battery_seconds_left", battery.seconds_left))
            if battery.power_plugged is not None:
                plugged = 1.0 if battery.power_plugged else 0.0
                samples.append(Sample(METRIC, "battery_power_plugged", plugged))
        return samples

    def close(self) -> None:
        self._last = ()
