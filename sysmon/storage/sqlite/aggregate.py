"""Bucket math over slot columns: pure functions, no SQL (tested directly).

A *column* is an ``array('d')`` of slots from some ``t0`` at a tier's step. Raw columns
hold one value per slot, NaN = no value. Rollup tiers have four columns per field
(``rollup.MEAN``, ``MIN``, ``MAX``, ``COUNT``) with ``rollup.GAP`` in empty buckets.

A merged query (``factor`` slots per output bucket) keeps per output bucket and field an
*accumulator* (the sum of values for ``mean``, else the running min or max) and a sample
count: ``accumulators`` makes them, ``bucket_partials`` reduces one filled stretch of
slots to per-bucket partials, ``combine`` folds those in, ``finish`` turns them into the
answer (``None`` where the count is 0).
"""

from __future__ import annotations

import math
import operator
from array import array
from itertools import accumulate, islice
from typing import TypeAlias

from sysmon.storage import rollup
from sysmon.storage.encoding import NAN
from sysmon.storage.sqlite.layout import EPS

CountMemo: TypeAlias = "dict[str, tuple[array[float], list[float]]]"
"""Per segment: the last count column seen and its bucket counts (see ``bucket_partials``)."""

AGG_STAT = {"mean": rollup.MEAN, "min": rollup.MIN, "max": rollup.MAX}


def stride(raw: bool) -> int:
    """Columns per field: 1 for raw, 4 (mean, min, max, count) for rollup tiers."""
    return 1 if raw else rollup.STATS_PER_FIELD


def gap_values(raw: bool) -> list[float]:
    """What an empty slot holds, per column of a field."""
    return [NAN] if raw else list(rollup.GAP)


def expired_slots(step: float, keep: float, t0: float, now: float) -> int:
    """How many slots from ``t0`` on are older than a tier with ``keep`` retains."""
    return math.ceil((now - keep - t0) / step - EPS)


def mask_expired(
    cols: list[array[float]], raw: bool, step: float, keep: float, t0: float, now: float
) -> None:
    """Blank slots older than the tier's retention (chunks are deleted whole, later)."""
    cut = expired_slots(step, keep, t0, now)
    if cut <= 0 or not cols:
        return
    cut = min(cut, len(cols[0]))
    width = stride(raw)
    gap = gap_values(raw)
    for j, col in enumerate(cols):
        if col:  # empty: a statistic the caller did not ask _fill for
            col[0:cut] = array("d", [gap[j % width]]) * cut


def values(cols: list[array[float]], raw: bool, i: int, agg: str) -> list[float | None]:
    """Field ``i`` of an unmerged grid (one slot per point)."""
    if raw:
        return [None if v != v else v for v in cols[i]]
    base = i * rollup.STATS_PER_FIELD
    src = cols[base + AGG_STAT[agg]]
    counts = cols[base + rollup.COUNT]
    return [v if c > 0 else None for v, c in zip(src, counts, strict=True)]


def accumulators(nfields: int, n: int, agg: str) -> tuple[list[array[float]], list[array[float]]]:
    """Empty per-field accumulators and counts for ``n`` output buckets."""
    start = 0.0 if agg == "mean" else (math.inf if agg == "min" else -math.inf)
    acc = [array("d", [start]) * n for _ in range(nfields)]
    cnt = [array("d", [0.0]) * n for _ in range(nfields)]
    return acc, cnt


def finish(acc: array[float], cnt: array[float], agg: str) -> list[float | None]:
    """One field's answer: the mean (sum / count) or the min/max; ``None`` = no sample."""
    if agg == "mean":
        return [s / c if c > 0 else None for s, c in zip(acc, cnt, strict=True)]
    return [v if c > 0 else None for v, c in zip(acc, cnt, strict=True)]


def combine(
    acc: array[float],
    cnt: array[float],
    b0: int,
    parts: list[float],
    counts: list[float],
    agg: str,
) -> None:
    """Fold one segment's bucket partials into the output from bucket ``b0`` on.

    Segments are disjoint and ordered, so only the first bucket can already hold a
    partial (of the previous segment); the others are assigned at C speed.
    """
    if not parts:
        return
    if cnt[b0] > 0:
        if counts[0] > 0:
            if agg == "mean":
                acc[b0] += parts[0]
            else:
                acc[b0] = min(acc[b0], parts[0]) if agg == "min" else max(acc[b0], parts[0])
            cnt[b0] += counts[0]
        parts, counts, b0 = parts[1:], counts[1:], b0 + 1
    end = b0 + len(parts)
    acc[b0:end] = array("d", parts)
    cnt[b0:end] = array("d", counts)


def bucket_partials(
    cols: list[array[float]],
    raw: bool,
    i: int,
    lo: int,
    hi: int,
    factor: int,
    agg: str,
    shared: CountMemo | None = None,
) -> tuple[int, list[float], list[float]]:
    """Field ``i`` of slots ``[lo, hi)`` per output bucket: ``(first bucket, partials,
    counts)``; a partial is the sum (agg mean), min or max of the bucket's values.

    ``cols`` hold the slots ``[lo, hi)`` (index 0 = slot ``lo``). ``shared`` (one dict
    per segment) remembers the last field's count column and bucket counts: the fields
    of a group are nearly always present in the same ticks, so their count columns are
    equal (compared at C speed through memoryviews) and the bucket counts are summed
    once, not once per field."""
    b0 = lo // factor
    nb = (hi - 1) // factor - b0 + 1
    if raw:
        col = cols[i]
        parts: list[float] = []
        counts: list[float] = []
        for b in range(b0, b0 + nb):
            s_lo, s_hi = max(b * factor, lo) - lo, min((b + 1) * factor, hi) - lo
            present = [v for v in col[s_lo:s_hi] if v == v]
            counts.append(float(len(present)))
            if not present:
                parts.append(0.0 if agg == "mean" else math.nan)
            elif agg == "mean":
                parts.append(math.fsum(present))
            else:
                parts.append(min(present) if agg == "min" else max(present))
        return b0, parts, counts
    base = i * rollup.STATS_PER_FIELD
    means, mins, maxs, cnts = cols[base : base + rollup.STATS_PER_FIELD]
    if lo % factor or (hi - lo) % factor:  # unaligned (huge factor): per bucket
        parts, counts = [], []
        for b in range(b0, b0 + nb):
            s_lo, s_hi = max(b * factor, lo) - lo, min((b + 1) * factor, hi) - lo
            st = rollup.merge(means[s_lo:s_hi], mins[s_lo:s_hi], maxs[s_lo:s_hi], cnts[s_lo:s_hi])
            counts.append(st[rollup.COUNT])
            if agg == "mean":
                parts.append(st[rollup.MEAN] * st[rollup.COUNT])
            else:
                parts.append(st[rollup.MIN] if agg == "min" else st[rollup.MAX])
        return b0, parts, counts
    # Whole buckets, kept at C speed: prefix sums (itertools.accumulate) sampled every
    # ``factor`` slots give each bucket's count and weighted sum by one subtraction;
    # min/max run ``map(min, *strided slices)``. The rounding error of the prefix sums
    # (~1e-13 relative) is far below display.
    # islice keeps every ``factor``-th prefix sum without listing the others.
    total = hi - lo
    memo = shared.get("counts") if shared is not None else None
    if memo is not None and memoryview(memo[0]) == memoryview(cnts):
        counts = memo[1]
    else:
        cum_n = [0.0, *islice(accumulate(cnts), factor - 1, None, factor)]
        counts = list(map(operator.sub, cum_n[1:], cum_n[:-1]))
        if shared is not None:
            shared["counts"] = (cnts, counts)
    if agg == "mean":
        cum_s = [
            0.0,
            *islice(accumulate(map(operator.mul, means, cnts)), factor - 1, None, factor),
        ]
        return b0, list(map(operator.sub, cum_s[1:], cum_s[:-1])), counts
    src, fold = (mins, min) if agg == "min" else (maxs, max)
    return b0, list(map(fold, *(src[o:total:factor] for o in range(factor)))), counts


def rollup_buckets(
    cols: list[array[float]], raw_source: bool, nfields: int, bounds: list[tuple[int, int]]
) -> list[list[float] | None]:
    """Per coarse bucket ``[lo, hi)`` of source slots: the flat stats of every field
    (``rollup.Stat`` after ``rollup.Stat``, layout order), or ``None`` if no field has a
    sample. Raw sources are summarized, rollup sources merged count-weighted."""
    out: list[list[float] | None] = []
    for lo, hi in bounds:
        stats: list[float] = []
        present = False
        for f in range(nfields):
            if raw_source:
                st = rollup.summarize(cols[f][lo:hi])
            else:
                b = f * rollup.STATS_PER_FIELD
                st = rollup.merge(
                    cols[b][lo:hi], cols[b + 1][lo:hi], cols[b + 2][lo:hi], cols[b + 3][lo:hi]
                )
            present = present or st[rollup.COUNT] > 0
            stats.extend(st)
        out.append(stats if present else None)
    return out
