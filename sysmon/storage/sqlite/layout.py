"""Tiers, windows and keys of the SQLite file: the facts every other module shares.

Tier ids and chunk windows are part of the file format (a tier's rows are found by
``tier = code``; a chunk's window is ``[start, start + span)``), so they are constants
here, independent of which tiers a configuration enables.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from sysmon.models import Labels
from sysmon.storage.config import TIER_STEP_SECONDS, RetentionConfig

TIER_CODE = {"raw": 0, "1m": 1, "5m": 2, "1h": 3}
"""Stable tier ids in the file (independent of which tiers the config enables)."""

CHUNK_SPAN_SECONDS = {"raw": 1800.0, "1m": 6 * 3600.0, "5m": 86_400.0, "1h": 7 * 86_400.0}
"""Window compacted into one chunk per series group. Bigger windows compress better and
cost fewer rows; smaller ones keep fewer rows hot. A chunk is deleted by retention once
its whole window is older than the tier's ``keep`` (queries mask the rest)."""

COMPACT_CHECK_EVERY_SECONDS = 30.0
"""How long compaction sleeps after finding no closed window (tiers and process tables)."""

EPS = 1e-9
"""Slack for float slot arithmetic (``t / step`` of an aligned ``t`` may be 0.999...)."""


@dataclass(frozen=True, slots=True)
class Tier:
    """One configured tier: its file id, slot width, retention and chunk window."""

    name: str
    code: int
    step: float
    keep: float
    span: float


def build_tiers(retention: RetentionConfig, interval: float) -> list[Tier]:
    """The configured tiers, fine to coarse; raw's step is the collection interval."""
    tiers: list[Tier] = []
    for t in retention.tiers:
        step = interval if t.resolution == "raw" else TIER_STEP_SECONDS[t.resolution]
        tiers.append(
            Tier(
                t.resolution,
                TIER_CODE[t.resolution],
                step,
                t.keep_seconds,
                CHUNK_SPAN_SECONDS[t.resolution],
            )
        )
    return tiers


def floor_to(t: float, step: float) -> float:
    return math.floor(t / step + EPS) * step


def labels_key(labels: Labels) -> str:
    """Canonical JSON of a label set: the ``series.labels`` column."""
    return json.dumps([list(p) for p in sorted(labels)], separators=(",", ":"))


def labels_from_key(key: str) -> Labels:
    return tuple((str(k), str(v)) for k, v in json.loads(key))
