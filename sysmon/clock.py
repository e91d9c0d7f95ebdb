"""The clock seam: wall time for timestamps, monotonic time for intervals.

Everything that needs "now" takes a ``Clock`` so tests drive time without sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """UTC epoch seconds (wall clock; may jump)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes backwards."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A settable clock for tests: ``advance`` moves both wall and monotonic time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 1000.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds

    def set_wall(self, wall: float) -> None:
        """Jump the wall clock only (NTP step); monotonic time is unaffected."""
        self._wall = wall
