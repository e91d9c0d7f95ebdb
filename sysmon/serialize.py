"""Snapshot -> the JSON shape of ``/api/v1/metrics/current`` and the SSE stream.

Pure functions; the collection thread serialises each snapshot once and every reader
(HTTP ``current``, each SSE client) reuses the bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sysmon.models import Collected, Sample, Snapshot

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


def to_json_bytes(document: Any) -> bytes:
    """Compact JSON (orjson: ~20x the standard library on float-heavy documents). A
    non-finite float is written as ``null`` (JSON has no NaN); non-string keys and any
    other type orjson does not know are written as their ``str``, as ``json.dumps``
    would (with ``default=str``)."""
    try:
        return _dumps(document)
    except TypeError:  # a lone surrogate: bytes the OS gave that are not UTF-8
        return _dumps(valid_text(document))


def _dumps(document: Any) -> bytes:
    return orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS)


def valid_text(value: Any) -> Any:
    """``value`` with every string made valid Unicode. Command lines, mount points and
    other names the OS hands over are decoded with ``surrogateescape``, so a process
    started with arguments that are not UTF-8 yields lone surrogates, which JSON
    encoders refuse; such bytes are written as ``\\xff`` escapes instead."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            try:
                raw = value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # a surrogate that is not an escaped byte
                return value.encode("utf-8", "backslashreplace").decode("utf-8")
            return raw.decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [valid_text(v) for v in value]
    return value


def valid_labels(collected: Collected) -> Collected:
    """``collected`` with every label value valid Unicode (``valid_text``).

    Label values are names the OS hands over (mount points, devices, interfaces): one
    that is not UTF-8 would make every later encoder refuse the tick (the remote stores'
    line protocols, notifications), so it is escaped once, where samples enter the agent.
    The check costs an ``isascii`` per label value; only a tick with such a name is
    rebuilt."""
    if all(v.isascii() for s in collected.samples for _, v in s.labels):
        return collected
    samples = tuple(
        s if all(v.isascii() for _, v in s.labels) else _valid_sample(s) for s in collected.samples
    )
    return Collected(samples=samples, rows=collected.rows)


def _valid_sample(sample: Sample) -> Sample:
    labels = tuple((k, valid_text(v)) for k, v in sample.labels)
    return sample._replace(labels=labels)


def from_json(data: bytes | str) -> Any:
    """The inverse of ``to_json_bytes`` (orjson; refuses NaN, which it never writes)."""
    return orjson.loads(data)


def with_member(obj_json: bytes, key: str, value_json: bytes) -> bytes:
    """``{"a":1}`` with ``"key":value`` added last (``obj_json``: a JSON object)."""
    head = obj_json[:-1]
    sep = b"" if head == b"{" else b","
    return head + sep + json.dumps(key).encode() + b":" + value_json + b"}"


class RowJSON:
    """JSON of table rows, each encoded once while the same row object comes back.

    Collectors hand over an unchanged row as the same read-only mapping tick after
    tick (``ProcessesCollector``), so the process table, up to 200 rows sent every tick,
    costs a lookup per row instead of an encode. Rows encoded since the last
    ``rotate()`` and in the period before are kept (their ids cannot be reused while
    they are held); call ``rotate()`` once per tick."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[Mapping[str, object], bytes]] = {}
        self._now: dict[int, tuple[Mapping[str, object], bytes]] = {}

    def rotate(self) -> None:
        self._last, self._now = self._now, {}

    def encode(self, rows: Sequence[Mapping[str, object]]) -> bytes:
        last, now = self._last, self._now
        parts: list[bytes] = []
        for row in rows:
            key = id(row)
            hit = now.get(key) or last.get(key)
            if hit is None or hit[0] is not row:
                hit = (row, to_json_bytes(row))
            now[key] = hit
            parts.append(hit[1])
        return b"[" + b",".join(parts) + b"]"


def snapshot_json(
    snapshot: Snapshot,
    process_rows: int,
    integer_fields: Mapping[str, frozenset[str]],
    rows: RowJSON,
) -> bytes:
    """``to_json_bytes(snapshot_document(...))`` with the process rows from ``rows``'
    cache (so ``processes`` comes last)."""
    document = snapshot_document(snapshot, process_rows, integer_fields)
    shown = document.pop("processes")
    return with_member(to_json_bytes(document), "processes", rows.encode(shown))
