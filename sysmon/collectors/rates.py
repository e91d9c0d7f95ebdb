"""Pure counter arithmetic: deltas, per-second rates, and a tiny per-series tracker.

Why so defensive: kernel counters are cumulative but not forever. A device re-created,
an interface bounced, a 32-bit wrap psutil could not undo, or a reboot all make a
counter go *backwards*. A naive ``curr - prev`` then yields a negative rate, or (with
unsigned maths) an absurd one; both would poison averages and fire alerts. So a
backwards step is a *reset*: no value for that tick, and the new reading becomes the
baseline. Likewise the first reading and a non-positive interval yield nothing, never 0.
Intervals are monotonic-clock seconds, never wall-clock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def counter_delta(previous: float | None, current: float) -> float | None:
    """``current - previous`` for a cumulative counter; ``None`` if unknown or reset."""
    if previous is None:
        return None
    delta = current - previous
    if delta < 0 or not math.isfinite(delta):
        return None
    return delta


def per_second(delta: float | None, elapsed: float) -> float | None:
    """``delta / elapsed``; ``None`` when either is missing or the interval is not > 0."""
    if delta is None or not elapsed > 0 or not math.isfinite(elapsed):
        return None
    return delta / elapsed


def counter_rate(previous: tuple[float, float] | None, current: float, now: float) -> float | None:
    """Rate of a counter between ``previous = (value, monotonic)`` and ``(current, now)``."""
    if previous is None:
        return None
    prev_value, prev_time = previous
    return per_second(counter_delta(prev_value, current), now - prev_time)


class RateTracker(Generic[K]):
    """Remembers the last ``(value, monotonic)`` of each series and returns rates.

    Call ``rate`` for each series seen in a tick, then ``end_tick`` once: series not
    seen during the tick are forgotten, so vanished processes or interfaces do not leak
    memory, and one that comes back starts over (first sample -> no rate).
    """

    __slots__ = ("_seen", "_values")

    def __init__(self) -> None:
        self._values: dict[K, tuple[float, float]] = {}
        self._seen: set[K] = set()

    def rate(self, key: K, value: float, now: float) -> float | None:
        """Per-second rate of ``key`` since its previous reading; stores this reading."""
        result = counter_rate(self._values.get(key), value, now)
        self._values[key] = (value, now)
        self._seen.add(key)
        return result

    def end_tick(self) -> None:
        if len(self._seen) != len(self._values):
            self._values = {k: v for k, v in self._values.items() if k in self._seen}
        self._seen = set()

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values
