"""Plain, frozen values that cross layers (collectors -> store/alerts/API).

A *sample* is one number of one series at one instant. A series is identified by
``(metric, field, labels)``: ``("cpu", "percent", ())`` is total CPU,
``("disk", "used_percent", (("mount", "/"),))`` one mount's usage. Samples without
labels are the metric's *totals*; the API serves those by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Labels = tuple[tuple[str, str], ...]
"""Sorted ``(key, value)`` pairs, e.g. ``(("device", "sda"),)``. Empty means totals."""

Kind = Literal["gauge", "rate"]


class Sample(NamedTuple):
    metric: str
    field: str
    value: float
    labels: Labels = ()


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """Declarative description of one field a collector emits.

    ``kind="rate"`` marks values that were already derived from counters (per second);
    rollups average them like gauges, they are never re-derived from stored values.
    ``labels`` names the label key the field is emitted under (``""`` = totals only).
    """

    field: str
    unit: str
    description: str
    kind: Kind = "gauge"
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Collected:
    """What one collector produced in one tick.

    ``samples`` are numeric series (stored, queryable, alertable); ``rows`` are tabular
    records that are not series (the top-process table).
    """

    samples: tuple[Sample, ...] = ()
    rows: tuple[Mapping[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One collection tick: every enabled collector's result at ``timestamp``.

    ``timestamp`` is UTC epoch seconds from the wall clock. A collector that failed this
    tick is absent from ``results`` and present in ``errors`` with a short message.
    """

    timestamp: float
    results: Mapping[str, Collected]
    errors: Mapping[str, str] = field(default_factory=dict)

    def samples(self) -> Sequence[Sample]:
        out: list[Sample] = []
        for collected in self.results.values():
            out.extend(collected.samples)
        return out
