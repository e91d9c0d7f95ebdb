"""Pure formatting for ``sysmon top``: bytes, rates, percentages, bars, durations.

Everything here is a function of its arguments, so the table-driven tests in
``tests/tui/test_format.py`` pin the exact text. ``None`` means "the server did not send
this field": a rate is absent on the first tick and after a counter reset, and a field the
platform lacks (iowait on macOS) is absent (docs/CONTRACTS.md). It renders as ``-``, never
as ``0``, so a missing value cannot pass for an idle one.
"""

from __future__ import annotations

import math
from typing import Literal

MISSING = "-"
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
# Eighth blocks give a bar eight steps per cell, so 1 % moves a 20-cell bar visibly.
_EIGHTHS = " ▏▎▍▌▋▊▉"
_FULL = "█"

Level = Literal["ok", "warn", "crit"]


def _finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool) or not math.isfinite(value):
        return None
    return float(value)


def fmt_bytes(value: float | None) -> str:
    """Binary units with one decimal (``1.5 MiB``); whole bytes below 1 KiB."""
    v = _finite(value)
    if v is None:
        return MISSING
    sign = "-" if v < 0 else ""
    v = abs(v)
    if v < 1024:
        return f"{sign}{v:.0f} B"
    unit = 0
    while v >= 1024 and unit < len(_UNITS) - 1:
        v /= 1024
        unit += 1
    if round(v, 1) >= 1024 and unit < len(_UNITS) - 1:  # 1023.96 KiB reads as 1.0 MiB
        v /= 1024
        unit += 1
    return f"{sign}{v:.1f} {_UNITS[unit]}"


def fmt_rate(bytes_per_sec: float | None) -> str:
    """``fmt_bytes`` per second; an absent rate stays ``-``."""
    text = fmt_bytes(bytes_per_sec)
    return text if text == MISSING else f"{text}/s"


def fmt_percent(value: float | None) -> str:
    v = _finite(value)
    return MISSING if v is None else f"{v:.1f}%"


def fmt_number(value: float | None, decimals: int = 2) -> str:
    v = _finite(value)
    return MISSING if v is None else f"{v:.{decimals}f}"


def fmt_duration(seconds: float | None) -> str:
    """Two most significant units: ``45s``, ``5m12s``, ``2h05m``, ``3d04h``."""
    v = _finite(seconds)
    if v is None:
        return MISSING
    total = max(0, int(v))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def bar(percent: float | None, width: int) -> str:
    """A ``width``-cell bar filled to ``percent`` (clamped to 0-100), in eighth blocks.

    An absent value is an empty bar: the number beside it says ``-``.
    """
    if width <= 0:
        return ""
    v = _finite(percent)
    if v is None:
        return " " * width
    eighths = round(min(max(v, 0.0), 100.0) / 100.0 * width * 8)
    full, part = divmod(eighths, 8)
    text = _FULL * full + (_EIGHTHS[part] if part else "")
    return text.ljust(width)


def level(percent: float | None, warn: float = 75.0, crit: float = 90.0) -> Level:
    """Colour band of a percentage: amber from ``warn``, red from ``crit``."""
    v = _finite(percent)
    if v is None or v < warn:
        return "ok"
    return "crit" if v >= crit else "warn"


def shorten(text: str, width: int) -> str:
    """Cut to ``width`` characters, ending in an ellipsis when cut."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"
