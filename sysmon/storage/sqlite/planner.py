"""Which tier answers a query, and at what step (pure; see the README's "Queries").

The grid of an answer is ``t0 = floor(start / step) * step`` through the bucket holding
``end``. ``auto`` takes the finest tier whose retention reaches back to ``start`` and
whose grid fits ``max_points``; an explicit tier that no longer holds ``start`` is
served by the first coarser tier that does. If the grid is still too long, ``factor``
consecutive buckets are merged (step = tier step x factor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sysmon.errors import QueryError
from sysmon.storage.base import RangeQuery, grid_timestamps
from sysmon.storage.sqlite.layout import EPS, Tier, floor_to

MAX_POINTS_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Plan:
    tier: Tier
    factor: int
    """Tier slots merged into one output point (1 = none)."""
    step: float
    t0: float
    n: int
    """Points in the answer."""

    @property
    def timestamps(self) -> list[float]:
        return grid_timestamps(self.t0, self.step, self.n)


def validate(q: RangeQuery) -> None:
    """Refuse a query no tier could answer, naming the parameter (``QueryError``)."""
    if q.agg not in ("mean", "min", "max"):
        raise QueryError("agg", f"agg must be mean, min or max, not {q.agg!r}")
    if not 1 <= q.max_points <= MAX_POINTS_LIMIT:
        raise QueryError("max_points", f"max_points must be 1..{MAX_POINTS_LIMIT}")
    if not (math.isfinite(q.start) and math.isfinite(q.end)):
        raise QueryError("start", "start and end must be finite epoch seconds")
    if q.end < q.start:
        raise QueryError("end", "end must not be before start")
    if q.start < 0:
        # Like the API's parser. Also keeps plan() finite: a range across epoch 0 never
        # fits one bucket (every grid has a boundary at 0), so max_points=1 would spin.
        raise QueryError("start", "start must not be before 1970-01-01 (epoch 0)")


def _points(q: RangeQuery, step: float) -> int:
    return math.floor(q.end / step + EPS) - math.floor(q.start / step + EPS) + 1


def choose_tier(q: RangeQuery, tiers: Sequence[Tier], now: float) -> Tier:
    def covers(t: Tier) -> bool:
        return now - t.keep <= q.start + EPS

    if q.resolution == "auto":
        candidates = [t for t in tiers if covers(t)]
        if not candidates:
            candidates = [max(tiers, key=lambda t: t.keep)]
        tier = candidates[-1]
        for t in candidates:
            if _points(q, t.step) <= q.max_points:
                return t
        return tier
    wanted = next((t for t in tiers if t.name == q.resolution), None)
    if wanted is None:
        configured = ", ".join(t.name for t in tiers)
        raise QueryError(
            "resolution", f"resolution {q.resolution!r} is not kept (tiers: {configured})"
        )
    if covers(wanted):
        return wanted
    # Older than this tier's retention: serve it from the coarser tier that still has
    # it (or the coarsest one).
    coarser = list(tiers[list(tiers).index(wanted) + 1 :])
    return next((t for t in coarser if covers(t)), coarser[-1] if coarser else wanted)


def plan(q: RangeQuery, tiers: Sequence[Tier], now: float) -> Plan:
    """Tier, merge factor and grid for a validated ``q`` at ``now``."""
    tier = choose_tier(q, tiers, now)
    factor = max(1, math.ceil(_points(q, tier.step) / q.max_points))
    while _points(q, tier.step * factor) > q.max_points:
        factor += 1
    step = tier.step * factor
    t0 = floor_to(q.start, step)
    return Plan(tier, factor, step, t0, _points(q, step))
