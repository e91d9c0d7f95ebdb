"""Reading stored slots: chunks overlaid with hot rows, and merged (bucketed) answers.

``fill`` builds slot columns of one series group (chunks first, then the hot rows that
are newer or were written late, so a replayed tick is never lost or doubled).
``segments`` finds which slot ranges hold data at all, from chunk starts and hot
timestamps only, so a merged query over decades fills only what is stored; ``merged``
aggregates those segments into output buckets with the pure functions of
``aggregate.py``. Callers hold a read transaction (``tx.read_snapshot``) or the writer.
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from collections.abc import Callable, Collection
from typing import Protocol

from sysmon.errors import QueryError
from sysmon.models import Labels
from sysmon.storage import rollup
from sysmon.storage.encoding import decode_flat, unpack_row
from sysmon.storage.sqlite import aggregate
from sysmon.storage.sqlite.layout import EPS, Tier, floor_to, labels_key
from sysmon.storage.sqlite.tx import fetch_all, fetch_one

SEGMENT_GAP_SLOTS = 1024
"""Merged queries fill slot columns only where data is stored; stored stretches closer
than this many slots are filled as one segment (fewer statements, same answer)."""
ALIGN_FACTOR_LIMIT = 4096
"""Up to this merge factor a segment is widened to whole output buckets (so their
aggregates are computed in one piece, at C speed); beyond it buckets are summarized
per segment and merged, which keeps memory bounded even for ``max_points=1`` over
decades."""

Decoder = Callable[[Tier, bytes], "tuple[int, int, array[float]]"]
"""``(tier, chunk blob) -> decode_flat(blob)``, possibly through the read cache."""


class Filler(Protocol):
    """``fill`` bound to a decoder (the store's ``_fill``): what ``merged`` reads with."""

    def __call__(
        self,
        conn: sqlite3.Connection,
        tier: Tier,
        sid: int,
        t0: float,
        n: int,
        nfields: int,
        step: float | None = None,
        stats: Collection[int] | None = None,
        cached: bool = False,
    ) -> list[array[float]]: ...


def plain_decode(tier: Tier, blob: bytes) -> tuple[int, int, array[float]]:
    return decode_flat(blob)


def fill(
    conn: sqlite3.Connection,
    tier: Tier,
    sid: int,
    t0: float,
    n: int,
    nfields: int,
    step: float | None = None,
    stats: Collection[int] | None = None,
    decode: Decoder = plain_decode,
) -> list[array[float]]:
    """Columns of ``n`` slots from ``t0`` at the tier's step: chunks, then hot rows.

    Raw: one column per field, NaN = no value. Rollups: four columns per field
    (mean, min, max, count) with ``rollup.GAP`` for empty buckets. ``stats`` (rollups
    only) limits the work to those statistics (e.g. mean and count for a mean query):
    the other columns come back empty, which halves the copying. ``decode`` reads a
    chunk blob (queries pass the cached decoder; maintenance reads each window once
    and would just evict what queries reuse).
    """
    step = tier.step if step is None else step
    stride = aggregate.stride(tier.code == 0)
    gap = aggregate.gap_values(tier.code == 0)
    ncols = nfields * stride
    wanted = [j for j in range(ncols) if stats is None or j % stride in stats]
    cols = [array("d") for _ in range(ncols)]
    for j in wanted:
        cols[j] = array("d", [gap[j % stride]]) * n
    t_end = t0 + n * step
    for start, width, data in fetch_all(
        conn,
        "SELECT start, width, data FROM chunk WHERE tier = ? AND series_id = ? "
        "AND start > ? AND start < ? ORDER BY start",
        (tier.code, sid, t0 - tier.span - step, t_end),
    ):
        nslots, cn, flat = decode(tier, data)
        present = [j for j in wanted if j < cn]
        base = floor_to(float(start), float(width))
        offset = (base - t0) / step
        if abs(float(width) - step) < EPS and abs(offset - round(offset)) < 1e-6:
            off = round(offset)
            lo = max(0, -off)
            hi = min(nslots, n - off)
            if lo < hi:
                for j in present:
                    o = j * nslots
                    cols[j][off + lo : off + hi] = flat[o + lo : o + hi]
        else:  # written with another slot width (the interval changed): map per slot
            for i in range(nslots):
                k = math.floor((base + i * float(width) - t0) / step + 0.5)
                if 0 <= k < n:
                    for j in present:
                        v = flat[j * nslots + i]
                        if v == v and (stride == 1 or flat[(j - j % stride + 3) * nslots + i] > 0):
                            cols[j][k] = v
    half = step / 2
    for ts, data in fetch_all(
        conn,
        "SELECT ts, data FROM hot WHERE tier = ? AND series_id = ? AND ts >= ? AND ts < ?",
        (tier.code, sid, t0 - half, t_end - half),
    ):
        k = math.floor((float(ts) - t0) / step + 0.5)
        if 0 <= k < n:
            row = unpack_row(data)
            for j in wanted if len(row) >= ncols else [j for j in wanted if j < len(row)]:
                cols[j][k] = row[j]
    return cols


def series_id(conn: sqlite3.Connection, metric: str, labels: Labels) -> int:
    """The stored group's id; ``QueryError`` naming ``metric`` or ``labels`` if absent."""
    row = fetch_one(
        conn,
        "SELECT id FROM series WHERE metric = ? AND labels = ?",
        (metric, labels_key(labels)),
    )
    if row is None:
        if fetch_one(conn, "SELECT 1 FROM series WHERE metric = ? LIMIT 1", (metric,)) is None:
            raise QueryError("metric", f"no data stored for metric {metric!r}")
        shown = ",".join(f"{k}={v}" for k, v in labels) or "totals"
        raise QueryError("labels", f"no series {shown!r} stored for metric {metric!r}")
    return int(row[0])


def field_names(conn: sqlite3.Connection, sid: int) -> list[str]:
    rows = fetch_all(conn, "SELECT name FROM field WHERE series_id = ? ORDER BY idx", (sid,))
    return [str(r[0]) for r in rows]


def segments(
    conn: sqlite3.Connection,
    tier: Tier,
    sid: int,
    t0: float,
    nslots: int,
    first: int,
    factor: int,
) -> list[tuple[int, int]]:
    """Slot ranges ``[lo, hi)`` (from ``t0``, at the tier's step) that hold stored data.

    Found from the chunk starts and hot timestamps alone (no blobs read), so their
    number and length are bounded by what is stored, not by the span asked for.
    Ranges start at ``first`` or later (slots before it are expired anyway).
    """
    step = tier.step
    t_end = t0 + nslots * step
    spans: list[tuple[int, int]] = []
    for start, width in fetch_all(
        conn,
        "SELECT start, width FROM chunk WHERE tier = ? AND series_id = ? "
        "AND start > ? AND start < ?",
        (tier.code, sid, t0 - tier.span - step, t_end),
    ):
        base = floor_to(float(start), float(width))
        lo = math.floor((base - t0) / step) - 1
        hi = math.ceil((float(start) + tier.span - t0) / step) + 1
        spans.append((lo, hi))
    half = step / 2
    for (ts,) in fetch_all(
        conn,
        "SELECT ts FROM hot WHERE tier = ? AND series_id = ? AND ts >= ? AND ts < ?",
        (tier.code, sid, t0 - half, t_end - half),
    ):
        k = math.floor((float(ts) - t0) / step + 0.5)
        spans.append((k, k + 1))
    aligned = factor <= ALIGN_FACTOR_LIMIT
    merged_spans: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        lo, hi = max(lo, first, 0), min(hi, nslots)
        if aligned:  # whole output buckets (nslots is a multiple of factor)
            lo, hi = lo - lo % factor, min(nslots, -(-hi // factor) * factor)
        if lo >= hi:
            continue
        if merged_spans and lo <= merged_spans[-1][1] + SEGMENT_GAP_SLOTS:
            merged_spans[-1] = (merged_spans[-1][0], max(merged_spans[-1][1], hi))
        else:
            merged_spans.append((lo, hi))
    return merged_spans


def unmerged(
    conn: sqlite3.Connection,
    tier: Tier,
    sid: int,
    names: list[str],
    t0: float,
    n: int,
    agg: str,
    now: float,
    fill_with: Filler,
) -> dict[str, list[float | None]]:
    """``n`` slots, one per point (``n <= max_points``): fill them all."""
    raw = tier.code == 0
    cols = fill_with(conn, tier, sid, t0, n, len(names), cached=True)
    aggregate.mask_expired(cols, raw, tier.step, tier.keep, t0, now)
    return {name: aggregate.values(cols, raw, i, agg) for i, name in enumerate(names)}


def merged(
    conn: sqlite3.Connection,
    tier: Tier,
    sid: int,
    names: list[str],
    t0: float,
    n: int,
    factor: int,
    agg: str,
    now: float,
    fill_with: Filler,
) -> dict[str, list[float | None]]:
    """``n`` buckets of ``factor`` slots each, aggregated straight from stored data.

    Only the slot ranges that hold data are filled (``segments``), so memory and
    time follow ``n`` and the stored rows, never ``n x factor`` (a query from 1970
    to now at 1h merged 490x would otherwise fill half a million slots per column).
    Per bucket and field it keeps ``agg``'s partial (sum for mean, else min/max)
    and the sample count; a bucket split over two segments is combined.
    """
    raw = tier.code == 0
    nfields = len(names)
    acc, cnt = aggregate.accumulators(nfields, n, agg)
    first = max(0, aggregate.expired_slots(tier.step, tier.keep, t0, now))
    # Aligned rollup buckets need only the asked statistic and the counts; the
    # unaligned path (huge factors) merges whole stats with rollup.merge.
    aligned = not raw and factor <= ALIGN_FACTOR_LIMIT
    stats = (aggregate.AGG_STAT[agg], rollup.COUNT) if aligned else None
    for lo, hi in segments(conn, tier, sid, t0, n * factor, first, factor):
        seg_t0 = t0 + lo * tier.step
        cols = fill_with(conn, tier, sid, seg_t0, hi - lo, nfields, stats=stats, cached=True)
        aggregate.mask_expired(cols, raw, tier.step, tier.keep, seg_t0, now)
        shared: aggregate.CountMemo = {}
        for i in range(nfields):
            b0, part, pcnt = aggregate.bucket_partials(cols, raw, i, lo, hi, factor, agg, shared)
            aggregate.combine(acc[i], cnt[i], b0, part, pcnt, agg)
    return {name: aggregate.finish(acc[i], cnt[i], agg) for i, name in enumerate(names)}
