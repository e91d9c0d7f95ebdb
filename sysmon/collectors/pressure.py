"""Pressure stall information (PSI): how much of the time tasks waited for CPU, memory, I/O.

Load averages and utilisation say how busy a resource is; PSI says what that costs:
``some`` is the share of time at least one runnable task was stalled on the resource,
``full`` the share when *all* non-idle tasks were (the machine did no useful work). The
kernel (4.20+, ``CONFIG_PSI``) exposes ``/proc/pressure/{cpu,memory,io}``::

    some avg10=1.50 avg60=1.20 avg300=1.03 total=8826964
    full avg10=0.16 avg60=0.66 avg300=0.76 total=7148987

``avgN`` are the kernel's own exponentially decaying averages (percent) over 10, 60 and
300 s. ``total`` is the cumulative stall time in microseconds; its rate
(µs of stall per second of wall time / 10,000) is the exact stall percentage over *our*
interval, which the averages smooth over. It is a rate: absent on the first tick and
after a counter reset.

Absent on this host: no ``/proc/pressure`` (old kernel, ``CONFIG_PSI`` off) or
``EOPNOTSUPP`` on read (booted with ``psi=0``): no samples, one INFO line. A missing
``full`` line (system-level ``cpu`` before Linux 5.13) leaves those fields out.
"""

from __future__ import annotations

import logging
import os
from typing import ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.hostfs import KernelFiles, Presence, is_absent
from sysmon.collectors.rates import RateTracker
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "pressure"
RESOURCES = ("cpu", "memory", "io")
KINDS = ("some", "full")
WINDOWS = ("avg10", "avg60", "avg300")

_RESOURCE_TEXT = {"cpu": "CPU", "memory": "memory", "io": "I/O"}
_KIND_TEXT = {
    "some": "at least one task stalled on",
    "full": "all non-idle tasks stalled on",
}


def _fields() -> tuple[MetricInfo, ...]:
    out: list[MetricInfo] = []
    for res in RESOURCES:
        for kind in KINDS:
            what = f"{_KIND_TEXT[kind]} {_RESOURCE_TEXT[res]}"
            for win in WINDOWS:
                secs = win.removeprefix("avg")
                out.append(
                    MetricInfo(
                        f"{res}_{kind}_{win}",
                        "%",
                        f"Share of time {what}, kernel's {secs} s average",
                    )
                )
            out.append(
                MetricInfo(
                    f"{res}_{kind}_stall_percent",
                    "%",
                    f"Share of time {what} over the last interval (from the stall counter)",
                    kind="rate",
                )
            )
    return tuple(out)


def parse_pressure(data: bytes) -> dict[str, dict[str, float]]:
    """``{"some": {"avg10": 1.5, ..., "total": 8826964.0}, "full": {...}}``.

    Lines the kernel does not print are missing; an unparsable line is skipped.
    """
    out: dict[str, dict[str, float]] = {}
    for line in data.decode("ascii", "replace").splitlines():
        kind, _, rest = line.partition(" ")
        if kind not in KINDS:
            continue
        values: dict[str, float] = {}
        try:
            for item in rest.split():
                key, _, value = item.partition("=")
                values[key] = float(value)
        except ValueError:
            continue
        out[kind] = values
    return out


@register("pressure")
class PressureCollector:
    """PSI averages and stall percentages for CPU, memory and I/O (totals only)."""

    class Options(CollectorOptions):
        proc_root: str = Field(
            default="/proc",
            description="Where procfs is mounted (e.g. /host/proc for a host's /proc "
            "seen from a container)",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = _fields()

    def __init__(self, source: object, options: Options) -> None:
        self._options = options
        self._paths = {r: os.path.join(options.proc_root, "pressure", r) for r in RESOURCES}
        self._rates: RateTracker[tuple[str, str]] = RateTracker()
        self._presence = Presence(logger, METRIC)
        self._files = KernelFiles()

    def collect(self, monotonic: float) -> Collected:
        samples: list[Sample] = []
        missing: list[str] = []
        for res, path in self._paths.items():
            try:
                data = self._files.read(path)
            except OSError as exc:
                if not is_absent(exc):
                    raise
                missing.append(f"{path}: {exc.strerror or exc}")
                continue
            for kind, values in parse_pressure(data).items():
                prefix = f"{res}_{kind}"
                for win in WINDOWS:
                    if win in values:
                        samples.append(Sample(METRIC, f"{prefix}_{win}", values[win]))
                total = values.get("total")
                if total is not None:
                    rate = self._rates.rate((res, kind), total, monotonic)
                    if rate is not None:
                        # µs of stall per second / 1e6 * 100 = percent; clamp jitter.
                        pct = min(100.0, rate / 10_000.0)
                        samples.append(Sample(METRIC, f"{prefix}_stall_percent", pct))
        self._rates.end_tick()
        if len(missing) == len(self._paths):
            self._presence.absent("; ".join(missing))
        else:
            self._presence.present()
        return Collected(samples=tuple(samples))

    def close(self) -> None:
        self._files.close()
