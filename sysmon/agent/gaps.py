"""Which samples were missed, by collector, and why: what health reports.

A *miss* is one collector's sample that was due at a tick and not taken (it raised, ran
past its deadline, or was still running from an earlier tick). Every miss is recorded
with its reason, so no gap in a series is silent. Pure bookkeeping: the caller passes
the tick time, nothing here reads a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

HOUR = 3600.0
MINUTE = 60.0


class GapLog:
    def __init__(self, names: Iterable[str], window_seconds: float = HOUR) -> None:
        self._window = window_seconds
        self._misses: dict[str, deque[tuple[float, str]]] = {name: deque() for name in names}
        self._total: dict[str, int] = dict.fromkeys(self._misses, 0)

    def record(self, name: str, ts: float, reason: str) -> None:
        misses = self._misses.setdefault(name, deque())
        misses.append((ts, reason))
        self._total[name] = self._total.get(name, 0) + 1
        self._trim(misses, ts)

    def _trim(self, misses: deque[tuple[float, str]], now: float) -> None:
        while misses and misses[0][0] <= now - self._window:
            misses.popleft()

    def missing_now(self, now: float) -> bool:
        """Any sample missed in the last minute (health is ``degraded`` meanwhile)."""
        return any(m and m[-1][0] > now - MINUTE for m in self._misses.values())

    def report(self, now: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, misses in self._misses.items():
            self._trim(misses, now)
            last = misses[-1] if misses else None
            out[name] = {
                "missed_last_minute": sum(1 for ts, _ in misses if ts > now - MINUTE),
                "missed_last_hour": len(misses),
                "missed_total": self._total.get(name, 0),
                "last_missed_at": last[0] if last else None,
                "last_reason": last[1] if last else None,
            }
        return out
