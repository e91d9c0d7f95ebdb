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
    ``labels`` names the label keys the field is emitted under besides the totals
    (``()`` = totals only). These declarations are the one list of metrics: alert-rule
    validation, the API's selectors and catalog, and docs/CONTRACTS.md derive from them
    (``sysmon.catalog``).

    ``integer=True`` marks a whole number (bytes, a count): every JSON answer writes it
    as an integer (``"count": 95``, never ``95.0``), rollup means included (rounded), so
    a client can type the field from the catalog once. Rates and percentages stay floats.
    """

    field: str
    unit: str
    description: str
    kind: Kind = "gauge"
    labels: tuple[str, ...] = ()
    integer: bool = False


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
