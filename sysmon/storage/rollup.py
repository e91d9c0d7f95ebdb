"""Pure downsampling: raw values -> bucket statistics -> coarser buckets.

A bucket keeps four numbers per field: ``(mean, min, max, count)``. Rates were already
derived from counters by the collectors, so every field is aggregated the same way and
nothing is ever re-derived from stored values; a counter reset inside a bucket is just a
smaller value that takes part in min/mean like any other.

An empty bucket is ``GAP = (0, +inf, -inf, 0)``: with those neutral elements a
count-weighted mean, ``min`` and ``max`` over a run of buckets need no special case for
gaps, so merging runs at C speed (``sum``/``min``/``max`` over array slices).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

Stat = tuple[float, float, float, float]
"""``(mean, min, max, count)`` of one field in one bucket."""

INF = math.inf
GAP: Stat = (0.0, INF, -INF, 0.0)
STATS_PER_FIELD = 4
MEAN, MIN, MAX, COUNT = range(4)


def summarize(values: Sequence[float]) -> Stat:
    """Statistics of raw values; NaN marks a missing value (tick without this field)."""
    present = [v for v in values if v == v]
    if not present:
        return GAP
    n = len(present)
    return (math.fsum(present) / n, min(present), max(present), float(n))


def merge(
    means: Sequence[float], mins: Sequence[float], maxs: Sequence[float], counts: Sequence[float]
) -> Stat:
    """Combine finer buckets into one: count-weighted mean, min of mins, max of maxes."""
    n = math.fsum(counts)
    if n <= 0:
        return GAP
    total = math.fsum(map(operator.mul, means, counts))
    return (total / n, min(mins), max(maxs), n)


def pick(stat: Stat, agg: str) -> float | None:
    """The value ``agg`` (mean|min|max) of a bucket, ``None`` for a gap."""
    if stat[COUNT] <= 0:
        return None
    if agg == "min":
        return stat[MIN]
    if agg == "max":
        return stat[MAX]
    return stat[MEAN]


def bucket_bounds(count: int, ratio: float) -> list[tuple[int, int]]:
    """Slot index ranges ``[lo, hi)`` of ``count`` coarse buckets, ``ratio`` fine slots each.

    ``ratio`` need not be an integer (a 7 s raw interval under 60 s buckets): a fine slot
    belongs to the coarse bucket its start time falls in.
    """
    bounds: list[tuple[int, int]] = []
    for j in range(count):
        lo = math.ceil(j * ratio - 1e-9)
        hi = math.ceil((j + 1) * ratio - 1e-9)
        bounds.append((lo, hi))
    return bounds
