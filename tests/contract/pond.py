"""A throwaway collector that exists only for the contract tests.

Loaded as ``collection.plugins: [tests.contract.pond]``, nothing else in the tree knows
it: metric ``pond`` with a label key no built-in collector has (``buoy``), a field under
two label keys at once (``buoy`` + ``probe``) and an integer count. The values are a
pure function of the tick number, so tests can assert exact numbers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample

MODULE = __name__
BUOYS = ("north", "south")


def depth(tick: int, buoy: str) -> float:
    return 1.25 + tick + (0.5 if buoy == "south" else 0.0)


def fish(tick: int) -> float:
    """A count, handed over as a float like every collector's values."""
    return 95.0 + tick


@register("pond")
class PondCollector:
    """Depth per buoy (and its mean as the total), a fish count, one probe temperature."""

    class Options(CollectorOptions):
        pass

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("depth_m", "m", "Water depth at a buoy (total: mean)", labels=("buoy",)),
        MetricInfo("fish", "fish", "Fish counted in the pond", integer=True),
        MetricInfo("temp_c", "°C", "Temperature of one probe of a buoy", labels=("buoy", "probe")),
    )

    def __init__(self, source: Any, options: Options) -> None:
        self._tick = 0

    def collect(self, monotonic: float) -> Collected:
        tick = self._tick
        self._tick += 1
        samples = [Sample("pond", "fish", fish(tick))]
        for buoy in BUOYS:
            samples.append(Sample("pond", "depth_m", depth(tick, buoy), (("buoy", buoy),)))
        samples.append(Sample("pond", "depth_m", sum(depth(tick, b) for b in BUOYS) / 2))
        samples.append(Sample("pond", "temp_c", 12.5, (("buoy", "north"), ("probe", "top"))))
        return Collected(samples=tuple(samples))

    def close(self) -> None:
        pass
