"""Memory: RAM and swap gauges, plus swap-in/out rates from the cumulative counters.

``used``/``percent``/``available`` are psutil's (on Linux ``available`` is the kernel's
MemAvailable estimate, the number that matters for "are we about to OOM").
``buffers``/``cached`` exist on Linux and BSD only and are absent elsewhere. With no
swap configured the swap gauges read 0; they are absent only if the platform cannot
report swap at all.
"""

from __future__ import annotations

from typing import ClassVar

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.rates import RateTracker
from sysmon.collectors.registry import register
from sysmon.collectors.source import SystemSource
from sysmon.models import Collected, MetricInfo, Sample

METRIC = "memory"


@register("memory")
class MemoryCollector:
    """Physical memory and swap usage."""

    class Options(CollectorOptions):
        pass

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("total_bytes", "bytes", "Physical memory", integer=True),
        MetricInfo("available_bytes", "bytes", "Memory available without swapping", integer=True),
        MetricInfo("used_bytes", "bytes", "Used memory (psutil's definition)", integer=True),
        MetricInfo("percent", "%", "(total - available) / total"),
        MetricInfo("buffers_bytes", "bytes", "Kernel buffers (Linux/BSD)", integer=True),
        MetricInfo("cached_bytes", "bytes", "Page cache (Linux/BSD)", integer=True),
        MetricInfo("swap_total_bytes", "bytes", "Swap size", integer=True),
        MetricInfo("swap_used_bytes", "bytes", "Swap in use", integer=True),
        MetricInfo("swap_percent", "%", "Swap in use share (0 without swap)"),
        MetricInfo("swap_in_bytes_per_sec", "bytes/s", "Swapped in from disk", kind="rate"),
        MetricInfo("swap_out_bytes_per_sec", "bytes/s", "Swapped out to disk", kind="rate"),
    )

    def __init__(self, source: SystemSource, options: Options) -> None:
        self._source = source
        self._options = options
        self._rates: RateTracker[str] = RateTracker()

    def collect(self, monotonic: float) -> Collected:
        vm, swap = self._source.memory_reading()
        samples = [
            Sample(METRIC, "total_bytes", float(vm.total)),
            Sample(METRIC, "available_bytes", float(vm.available)),
            Sample(METRIC, "used_bytes", float(vm.used)),
            Sample(METRIC, "percent", vm.percent),
        ]
        if vm.buffers is not None:
            samples.append(Sample(METRIC, "buffers_bytes", float(vm.buffers)))
        if vm.cached is not None:
            samples.append(Sample(METRIC, "cached_bytes", float(vm.cached)))

        if swap is not None:
            samples.append(Sample(METRIC, "swap_total_bytes", float(swap.total)))
            samples.append(Sample(METRIC, "swap_used_bytes", float(swap.used)))
            samples.append(Sample(METRIC, "swap_percent", swap.percent))
            for field, counter in (
                ("swap_in_bytes_per_sec", swap.sin),
                ("swap_out_bytes_per_sec", swap.sout),
            ):
                r = self._rates.rate(field, counter, monotonic)
                if r is not None:
                    samples.append(Sample(METRIC, field, r))
        self._rates.end_tick()
        return Collected(samples=tuple(samples))

    def close(self) -> None:
        """Nothing to release; present for the collector lifecycle."""
