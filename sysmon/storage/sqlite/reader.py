"""Reading stored slots: chunks overlaid with hot rows, and merged (bucketed) answers.

``fill`` builds slot columns of one series group (chunks first, then the hot rows that
are newer or were written late, so a replayed tick is never lost or doubled).
``segments`` finds which slot ranges hold data at all, from chunk starts and hot
timestamps only, so a merged query over decades fills only what is stored; ``merged``
aggregates those segments into output buckets with the pure functions of
``aggregate.py``. Callers hold a read transaction (``tx.read_snapshot``) or the writer.

``LiveEdge`` is the live edge of rollup tiers: buckets at or after a tier's rollup
watermark (``rollup_state.done_until``: the unfinished current bucket, and closed ones
``maintain`` has not reached yet) are computed at query time from the next finer tier
(itself live-filled, down to raw) with the rollup's own functions, so a coarse view
shows data from the first minute; the answer says from where (``partial_from``).
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from collections.abc import Callable, Collection, Sequence
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


class LiveEdge:
    """A ``Filler`` that overlays, on stored rollup slots, the live edge of the tier.

    For a rollup tier, slots from ``live_from(tier)`` on are replaced by buckets
    computed from the next finer tier (through this same filler, so a 1h bucket comes
    from 5m buckets that are themselves stored or computed from 1m, then raw) with
    ``aggregate.rollup_buckets`` over ``rollup.bucket_bounds``: exactly the arithmetic
    of the rollup, so a live bucket that closes equals, to the bit, the bucket
    ``maintain`` then stores (a test checks it). Slots before it are the stored ones,
    untouched, so answers over fully rolled ranges do not change.

    One per query (it remembers the watermarks and first-data lookups of its read
    transaction).
    """

    def __init__(
        self, conn: sqlite3.Connection, tiers: Sequence[Tier], sid: int, base: Filler
    ) -> None:
        self._tiers = list(tiers)
        self._sid = sid
        self._base = base
        self._done: dict[int, float] | None = None
        """Rollup watermarks, read on the first rollup tier asked for (a raw query reads none)."""
        self._from: dict[int, float | None] = {}
        self._last: dict[int, float | None] = {}
        """Per tier: the newest instant its finer tiers may hold (an upper bound)."""

    def live_from(self, conn: sqlite3.Connection, tier: Tier) -> float | None:
        """Where ``tier``'s computed buckets start (a bucket boundary), or ``None`` when
        it has none: raw, or no finer data at or after the watermark's bucket.

        The watermark, but never before the bucket of the first finer row stored, so a
        tier never rolled up (a fresh store) computes only where there is data."""
        if tier.code in self._from:
            return self._from[tier.code]
        found: float | None = None
        idx = next(i for i, t in enumerate(self._tiers) if t.code == tier.code)
        if idx > 0:
            if self._done is None:
                self._done = {
                    int(code): float(done)
                    for code, done in fetch_all(conn, "SELECT tier, done_until FROM rollup_state")
                }
            done = self._done.get(tier.code, -math.inf)
            first = min(
                (
                    f
                    for t in self._tiers[:idx]
                    if (f := _first_stored(conn, t, self._sid)) is not None
                ),
                default=None,
            )
            if first is not None:
                found = max(done, floor_to(first, tier.step))
                last = _last_stored(conn, self._tiers[:idx], self._sid)
                self._last[tier.code] = last
                if last is None or last < found:
                    found = None  # nothing finer at or after it: nothing to compute
        self._from[tier.code] = found
        return found

    def first_slot(self, conn: sqlite3.Connection, tier: Tier, t0: float) -> int | None:
        """The first slot (from ``t0``, at the tier's step) of ``tier`` computed live."""
        live = self.live_from(conn, tier)
        if live is None:
            return None
        slot = max(0, math.ceil((live - t0) / tier.step - EPS))
        last = self._last.get(tier.code)
        if last is None or last < t0 + slot * tier.step:
            return None  # no finer data from there on: those buckets are empty, not partial
        return slot

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
    ) -> list[array[float]]:
        cols = self._base(conn, tier, sid, t0, n, nfields, step, stats, cached)
        live = self.live_from(conn, tier) if step is None or step == tier.step else None
        if live is None:
            return cols
        last = self._last.get(tier.code)
        first = max(0, math.ceil((live - t0) / tier.step - EPS))
        # Never past the bucket of the newest finer data: a merged bucket may reach far
        # into the future, and nothing is there to compute.
        end = n if last is None else min(n, math.floor((last - t0) / tier.step + EPS) + 1)
        if first >= end:
            return cols
        computed = self._compute(conn, tier, t0 + first * tier.step, end - first, nfields)
        width = rollup.STATS_PER_FIELD
        for f in range(nfields):
            counts = computed[f * width + rollup.COUNT]
            if all(c > 0 for c in counts):  # the usual case: every bucket has data
                for j in range(f * width, (f + 1) * width):
                    if cols[j]:  # empty: a statistic the caller did not ask for
                        cols[j][first:end] = computed[j]
                continue
            # Where the finer tiers hold nothing, keep what is stored (as maintain
            # would: it writes no row for an empty bucket).
            for k, c in enumerate(counts):
                if c > 0:
                    for j in range(f * width, (f + 1) * width):
                        if cols[j]:
                            cols[j][first + k] = computed[j][k]
        return cols

    def _compute(
        self, conn: sqlite3.Connection, tier: Tier, begin: float, m: int, nfields: int
    ) -> list[array[float]]:
        """``m`` buckets of ``tier`` from ``begin``, as rollup columns, from the finer tier."""
        idx = next(i for i, t in enumerate(self._tiers) if t.code == tier.code)
        source = self._tiers[idx - 1]
        ratio = tier.step / source.step
        nslots = math.ceil(m * ratio - EPS)
        src = self(conn, source, self._sid, begin, nslots, nfields, cached=True)
        buckets = aggregate.rollup_buckets(
            src, source.code == 0, nfields, rollup.bucket_bounds(m, ratio)
        )
        width = rollup.STATS_PER_FIELD
        cols = [array("d", [rollup.GAP[j % width]]) * m for j in range(nfields * width)]
        for k, stats in enumerate(buckets):
            if stats is not None:
                for j, v in enumerate(stats):
                    cols[j][k] = v
        return cols


def _first_stored(conn: sqlite3.Connection, tier: Tier, sid: int) -> float | None:
    """The oldest instant ``tier`` holds for ``sid`` (a chunk's start or a hot row)."""
    found = [
        float(r[0])
        for sql in (
            "SELECT min(ts) FROM hot WHERE tier = ? AND series_id = ?",
            "SELECT min(start) FROM chunk WHERE tier = ? AND series_id = ?",
        )
        if (r := fetch_one(conn, sql, (tier.code, sid))) is not None and r[0] is not None
    ]
    return min(found) if found else None


def _last_stored(conn: sqlite3.Connection, tiers: Sequence[Tier], sid: int) -> float | None:
    """The newest instant any of ``tiers`` may hold for ``sid`` (hot row, chunk end)."""
    found: list[float] = []
    for t in tiers:
        row = fetch_one(
            conn, "SELECT max(ts) FROM hot WHERE tier = ? AND series_id = ?", (t.code, sid)
        )
        if row is not None and row[0] is not None:
            found.append(float(row[0]))
        row = fetch_one(
            conn, "SELECT max(start) FROM chunk WHERE tier = ? AND series_id = ?", (t.code, sid)
        )
        if row is not None and row[0] is not None:
            found.append(float(row[0]) + t.span)
    return max(found) if found else None


def series_fields(conn: sqlite3.Connection, metric: str, labels: Labels) -> tuple[int, list[str]]:
    """The stored group's id and its field names (in column order), in one statement;
    ``QueryError`` naming ``metric`` or ``labels`` if absent."""
    rows = fetch_all(
        conn,
        "SELECT s.id, f.name FROM series s LEFT JOIN field f ON f.series_id = s.id "
        "WHERE s.metric = ? AND s.labels = ? ORDER BY f.idx",
        (metric, labels_key(labels)),
    )
    if not rows:
        return series_id(conn, metric, labels), []  # raises the QueryError
    return int(rows[0][0]), [str(r[1]) for r in rows if r[1] is not None]


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


def segments(
    conn: sqlite3.Connection,
    tier: Tier,
    sid: int,
    t0: float,
    nslots: int,
    first: int,
    factor: int,
    extra: Sequence[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Slot ranges ``[lo, hi)`` (from ``t0``, at the tier's step) that hold stored data.

    Found from the chunk starts and hot timestamps alone (no blobs read), so their
    number and length are bounded by what is stored, not by the span asked for.
    Ranges start at ``first`` or later (slots before it are expired anyway). ``extra``
    adds ranges that hold data stored elsewhere (the live edge, computed from finer
    tiers).
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
    spans.extend(extra)
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
    live_slot: int | None = None,
) -> dict[str, list[float | None]]:
    """``n`` buckets of ``factor`` slots each, aggregated straight from stored data.

    ``live_slot``: the first slot that ``fill_with`` computes from finer tiers (the
    live edge, ``LiveEdge``); from there on every slot is read whether stored or not.

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
    nslots = n * factor
    extra = [(live_slot, nslots)] if live_slot is not None and live_slot < nslots else []
    for lo, hi in segments(conn, tier, sid, t0, nslots, first, factor, extra):
        seg_t0 = t0 + lo * tier.step
        cols = fill_with(conn, tier, sid, seg_t0, hi - lo, nfields, stats=stats, cached=True)
        aggregate.mask_expired(cols, raw, tier.step, tier.keep, seg_t0, now)
        shared: aggregate.CountMemo = {}
        for i in range(nfields):
            b0, part, pcnt = aggregate.bucket_partials(cols, raw, i, lo, hi, factor, agg, shared)
            aggregate.combine(acc[i], cnt[i], b0, part, pcnt, agg)
    return {name: aggregate.finish(acc[i], cnt[i], agg) for i, name in enumerate(names)}
