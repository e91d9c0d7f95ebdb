"""Builders for storage tests: snapshots from plain dicts, short retention configs."""

from __future__ import annotations

from collections.abc import Mapping

from sysmon.models import Collected, Labels, Sample, Snapshot
from sysmon.storage.config import RetentionConfig, TierConfig

T0 = 1_700_000_000.0 - (1_700_000_000.0 % 86_400)  # a UTC midnight: every bucket aligned


def snap(
    ts: float,
    series: Mapping[tuple[str, Labels], Mapping[str, float]],
    processes: list[dict[str, object]] | None = None,
) -> Snapshot:
    results: dict[str, Collected] = {}
    by_metric: dict[str, list[Sample]] = {}
    for (metric, labels), fields in series.items():
        for name, value in fields.items():
            by_metric.setdefault(metric, []).append(Sample(metric, name, value, labels))
    for metric, samples in by_metric.items():
        results[metric] = Collected(samples=tuple(samples))
    if processes is not None:
        prev = results.get("processes", Collected())
        results["processes"] = Collected(samples=prev.samples, rows=tuple(processes))
    return Snapshot(timestamp=ts, results=results)


def cpu(ts: float, percent: float, **extra: float) -> Snapshot:
    return snap(ts, {("cpu", ()): {"percent": percent, **extra}})


def retention(
    raw: str = "1d", m1: str = "7d", m5: str = "30d", h1: str = "365d"
) -> RetentionConfig:
    return RetentionConfig(
        tiers=[
            TierConfig(resolution="raw", keep=raw),
            TierConfig(resolution="1m", keep=m1),
            TierConfig(resolution="5m", keep=m5),
            TierConfig(resolution="1h", keep=h1),
        ]
    )
