"""CPU: utilisation from ``cpu_times`` deltas, load average, scheduler rates, frequency.

Percentages are computed from the difference of two ``cpu_times`` readings, the way
``psutil.cpu_percent`` does it internally, but with our own previous reading: psutil's
hidden module-level state would be shared with (and reset by) any other caller, and its
first call returns a meaningless 0.0. So the first tick emits no percentages at all.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.rates import RateTracker
from sysmon.collectors.registry import register
from sysmon.collectors.source import CpuTimes, SystemSource
from sysmon.models import Collected, Labels, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "cpu"


def _total(t: CpuTimes) -> float:
    # guest/guest_nice are already included in user/nice on Linux (psutil does the same).
    total = t.user + t.nice + t.system + t.idle
    for extra in (t.iowait, t.irq, t.softirq, t.steal):
        if extra is not None:
            total += extra
    return total


def _idle(t: CpuTimes) -> float:
    # iowait is idle time with I/O pending: the CPU itself is free.
    return t.idle + (t.iowait or 0.0)


def busy_percent(prev: CpuTimes, curr: CpuTimes) -> float | None:
    """Share of non-idle time between two readings, 0-100; ``None`` if not computable.

    A backwards total (counters reset, CPU hot-unplugged and back) yields ``None``.
    """
    all_delta = _total(curr) - _total(prev)
    if all_delta <= 0:
        return None
    busy_delta = (_total(curr) - _idle(curr)) - (_total(prev) - _idle(prev))
    return min(100.0, max(0.0, busy_delta / all_delta * 100.0))


def field_percent(prev: CpuTimes, curr: CpuTimes, name: str) -> float | None:
    """One ``cpu_times`` field's share of elapsed CPU time; ``None`` if the field is absent."""
    a: float | None = getattr(prev, name)
    b: float | None = getattr(curr, name)
    if a is None or b is None:
        return None
    all_delta = _total(curr) - _total(prev)
    if all_delta <= 0:
        return None
    return min(100.0, max(0.0, (b - a) / all_delta * 100.0))


_BREAKDOWN = (
    ("user_percent", "user"),
    ("system_percent", "system"),
    ("iowait_percent", "iowait"),
    ("steal_percent", "steal"),
    ("idle_percent", "idle"),
)


@register("cpu")
class CpuCollector:
    """Total and per-core utilisation, load averages, context switches, interrupts."""

    class Options(CollectorOptions):
        per_core: bool = True
        """Emit ``percent`` per core (``core=N``) in addition to the total."""
        freq_refresh_seconds: float = Field(default=10.0, ge=0, le=3600)
        """How often the frequency is re-read (the last value is emitted in between).

        psutil's Linux ``cpu_freq`` parses ``/proc/cpuinfo``, which on bare metal makes
        the kernel sample every core; the gauge is informative, not worth that each
        second. 0 = every tick."""

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("percent", "%", "Non-idle CPU time share (100 = all cores busy)",
                   labels=("core",)),
        MetricInfo("user_percent", "%", "User time share (nice excluded)"),
        MetricInfo("system_percent", "%", "Kernel time share"),
        MetricInfo("iowait_percent", "%", "Idle with I/O pending (Linux)"),
        MetricInfo("steal_percent", "%", "Time stolen by the hypervisor (Linux VMs)"),
        MetricInfo("idle_percent", "%", "Idle time share"),
        MetricInfo("load_1", "", "Load average over 1 minute"),
        MetricInfo("load_5", "", "Load average over 5 minutes"),
        MetricInfo("load_15", "", "Load average over 15 minutes"),
        MetricInfo("ctx_switches_per_sec", "switches/s", "Context switches", kind="rate"),
        MetricInfo("interrupts_per_sec", "interrupts/s", "Hardware interrupts", kind="rate"),
        MetricInfo("freq_mhz", "MHz", "Current CPU frequency (absent in most VMs)"),
    )  # fmt: skip

    def __init__(self, source: SystemSource, options: Options) -> None:
        self._source = source
        self._options = options
        self._prev_total: CpuTimes | None = None
        self._prev_cores: list[CpuTimes] | None = None
        self._rates: RateTracker[str] = RateTracker()
        self._freq: float | None = None
        self._freq_at: float | None = None

    def collect(self, monotonic: float) -> Collected:
        src = self._source
        samples: list[Sample] = []
        add = samples.append

        reading = src.cpu_reading(self._options.per_core)
        total = reading.total
        prev = self._prev_total
        self._prev_total = total
        if prev is not None:
            pct = busy_percent(prev, total)
            if pct is not None:
                add(Sample(METRIC, "percent", pct))
            for field, attr in _BREAKDOWN:
                value = field_percent(prev, total, attr)
                if value is not None:
                    add(Sample(METRIC, field, value))

        cores = reading.cores
        if cores is not None:
            prev_cores = self._prev_cores
            self._prev_cores = cores
            # A changed core count (hotplug) makes indices meaningless: start over.
            if prev_cores is not None and len(prev_cores) == len(cores):
                for i, (a, b) in enumerate(zip(prev_cores, cores, strict=True)):
                    pct = busy_percent(a, b)
                    if pct is not None:
                        labels: Labels = (("core", str(i)),)
                        add(Sample(METRIC, "percent", pct, labels))

        load = src.getloadavg()
        if load is not None:
            add(Sample(METRIC, "load_1", load[0]))
            add(Sample(METRIC, "load_5", load[1]))
            add(Sample(METRIC, "load_15", load[2]))

        stats = reading.stats
        for field, value in (
            ("ctx_switches_per_sec", stats.ctx_switches),
            ("interrupts_per_sec", stats.interrupts),
        ):
            r = self._rates.rate(field, value, monotonic)
            if r is not None:
                add(Sample(METRIC, field, r))
        self._rates.end_tick()

        freq = self._freq
        if self._freq_at is None or not (
            0 <= monotonic - self._freq_at < self._options.freq_refresh_seconds
        ):
            freq = self._freq = src.cpu_freq()
            self._freq_at = monotonic
        if freq is not None:
            add(Sample(METRIC, "freq_mhz", freq))

        return Collected(samples=tuple(samples))

    def close(self) -> None:
        self._prev_total = None
        self._prev_cores = None
        self._freq_at = None
