"""Parsing of user-supplied instants and durations (pure functions).

Instants are Unix epoch seconds (``1764211200`` or ``1764211200.5``) or ISO 8601
(``2026-11-27T03:12:00Z``, ``2026-11-27T03:12:00+09:00``; a value without an offset is
UTC). Durations are ``<number><unit>`` with unit s, m, h, d, w (``90s``, ``5m``, ``365d``).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}

# Instants must fall between 1970 and 9999: anything else is a typo (milliseconds, say).
_MAX_EPOCH = 253_402_300_799.0


def parse_instant(value: str) -> float:
    """Return epoch seconds for ``value``; raise ``ValueError`` with a readable reason."""
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number) or number < 0 or number > _MAX_EPOCH:
            raise ValueError(f"epoch seconds out of range: {value!r}")
        return number
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(
            f"not epoch seconds or ISO 8601: {value!r} (e.g. 1764211200 or 2026-11-27T03:12:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    if seconds < 0 or seconds > _MAX_EPOCH:
        raise ValueError(f"timestamp before 1970 or after 9999: {text!r}")
    return seconds


def parse_duration(value: str | int | float) -> float:
    """Return seconds for ``"5m"``-style durations (a bare number is seconds)."""
    if isinstance(value, bool):
        raise ValueError("duration must be a number or a string like '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h, 7d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"invalid duration {value!r}")
    return seconds
