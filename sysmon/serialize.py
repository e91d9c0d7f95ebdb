"""Snapshot -> the JSON shape of ``/api/v1/metrics/current`` and the SSE stream.

Pure functions; the collection thread serialises each snapshot once and every reader
(HTTP ``current``, each SSE client) reuses the bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from sysmon.models import Collected, Snapshot

NO_INTEGERS: frozenset[str] = frozenset()


def group_samples(collected: Collected, integers: frozenset[str] = NO_INTEGERS) -> dict[str, Any]:
    """``{"total": {field: v}, "<label key>": {"<label value>": {field: v}}}``.

    Series with several labels nest by their first label key and join the values with
    ``/``. Non-finite values are dropped (JSON has no NaN). Fields named in ``integers``
    (declared ``integer`` by the collector) are written as JSON integers: collectors hand
    every value over as a float, and ``95.0`` processes would read as a measurement.
    """
    out: dict[str, Any] = {"total": {}}
    total = out["total"]
    isfinite = math.isfinite
    for sample in collected.samples:
        value = sample.value
        if not isfinite(value):
            continue
        if integers and sample.field in integers:
            value = round(value)
        labels = sample.labels
        if not labels:
            total[sample.field] = value
            continue
        key = labels[0][0]
        name = "/".join(v for _, v in labels) if len(labels) > 1 else labels[0][1]
        out.setdefault(key, {}).setdefault(name, {})[sample.field] = value
    return out


def snapshot_document(
    snapshot: Snapshot,
    process_rows: int,
    integer_fields: Mapping[str, frozenset[str]],
) -> dict[str, Any]:
    """The ``/current`` document; ``integer_fields`` is per metric the fields written as
    integers (``MetricCatalog.integer_fields``)."""
    metrics: dict[str, Any] = {}
    processes: list[Mapping[str, object]] = []
    for name, collected in snapshot.results.items():
        if collected.samples:
            metrics[name] = group_samples(collected, integer_fields.get(name, NO_INTEGERS))
        if collected.rows and not processes:
            processes = list(collected.rows[:process_rows])
    return {
        "timestamp": snapshot.timestamp,
        "metrics": metrics,
        "processes": processes,
        "errors": dict(snapshot.errors),
    }


def to_json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False, default=str).encode()
