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


def group_samples(collected: Collected) -> dict[str, Any]:
    """``{"total": {field: v}, "<label key>": {"<label value>": {field: v}}}``.

    Series with several labels nest by their first label key and join the values with
    ``/``. Non-finite values are dropped (JSON has no NaN).
    """
    out: dict[str, Any] = {"total": {}}
    for sample in collected.samples:
        if not math.isfinite(sample.value):
            continue
        if not sample.labels:
            out["total"][sample.field] = sample.value
            continue
        key = sample.labels[0][0]
        name = (
            "/".join(v for _, v in sample.labels) if len(sample.labels) > 1 else sample.labels[0][1]
        )
        out.setdefault(key, {}).setdefault(name, {})[sample.field] = sample.value
    return out


def snapshot_document(snapshot: Snapshot, process_rows: int) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    processes: list[Mapping[str, object]] = []
    for name, collected in snapshot.results.items():
        if collected.samples:
            metrics[name] = group_samples(collected)
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
