"""A plugin collector for tests (``collection.plugins: [tests.support.sleepy]``): it takes
``sleep_seconds`` on every run, like a collector stuck on a slow kernel call or an
overloaded machine. Loaded by the real agent process through the plugin mechanism."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample


@register("sleepy")
class SleepyCollector:
    class Options(CollectorOptions):
        sleep_seconds: float = Field(default=0.0, ge=0, le=60)

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (MetricInfo("runs", "count", "Completed runs"),)

    def __init__(self, source: Any, options: Options) -> None:
        self._sleep = options.sleep_seconds
        self._runs = 0

    def collect(self, monotonic: float) -> Collected:
        time.sleep(self._sleep)
        self._runs += 1
        return Collected(samples=(Sample("sleepy", "runs", float(self._runs)),))

    def close(self) -> None:
        pass
