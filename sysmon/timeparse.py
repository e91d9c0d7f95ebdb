"""Parsing of user-supplied instants and durations (pure functions).

Instants are Unix epoch seconds (``1764211200`` or ``1764211200.5``) or ISO 8601
(``2026-11-27T03:12:00Z``, ``2026-11-27T03:12:00+09:00``; a value without an offset is
UTC).

Durations have one grammar for every key and parameter that takes one (alert ``for``,
``recovery_for``, ``repeat_interval``, ``history_keep``, ``stale_after``; retention
``keep`` and ``processes_every``): see ``parse_duration``. Keys whose name carries the
unit (``interval_seconds``, ``timeout_seconds``, ``access_token_minutes``) take plain
numbers in that unit instead.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

_NUM = r"[0-9]+(?:\.[0-9]+)?"
_NUMBER = re.compile(_NUM)
# Largest unit first, each at most once; "m" must not be the start of "ms".
_PARTS = re.compile(
    rf"(?:(?P<w>{_NUM})w)?(?:(?P<d>{_NUM})d)?(?:(?P<h>{_NUM})h)?"
    rf"(?:(?P<m>{_NUM})m(?!s))?(?:(?P<s>{_NUM})s)?(?:(?P<ms>{_NUM})ms)?"
)
_UNIT_SECONDS = {"w": 604_800.0, "d": 86_400.0, "h": 3600.0, "m": 60.0, "s": 1.0}

DURATION_HELP = (
    "use a number of seconds or <number><unit> parts, largest unit first, with unit "
    "ms, s, m, h, d or w (e.g. 500ms, 90s, 5m, 1h30m, 7d, 2w)"
)

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


def parse_duration(
    value: object, *, minimum: float | None = None, above: float | None = None
) -> float:
    """Seconds in a duration, the one grammar of every duration sysmon reads.

    A duration is a bare number of seconds (``90``, ``1.5``, or a YAML number), or one or
    more ``<number><unit>`` parts from the largest unit to the smallest, each unit at
    most once: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes, ``s`` seconds, ``ms``
    milliseconds (``500ms``, ``90s``, ``5m``, ``1h30m``, ``7d``, ``2w``, ``1.5h``). Units
    are case-insensitive; nothing else (spaces inside, signs, exponents) is accepted, so
    ``5 minutes`` or ``-5m`` fails instead of meaning something surprising.

    ``minimum`` (at least) and ``above`` (strictly more than) are the key's lower bound;
    the message says which bound was missed. Every failure is a ``ValueError`` whose
    message starts ``invalid duration``: the caller (pydantic) adds the key.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid duration {value!r}: {DURATION_HELP}")
    if isinstance(value, str):
        seconds = _parse_text(value)
    else:
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"invalid duration {value!r}: {DURATION_HELP}")
    if above is not None and not seconds > above:
        bound = "zero" if above == 0 else format_duration(above)
        raise ValueError(f"invalid duration {value!r}: must be greater than {bound}")
    if minimum is not None and seconds < minimum:
        raise ValueError(f"invalid duration {value!r}: must be at least {format_duration(minimum)}")
    return seconds


def _parse_text(value: str) -> float:
    text = value.strip().lower()
    if _NUMBER.fullmatch(text):
        return float(text)
    match = _PARTS.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"invalid duration {value!r}: {DURATION_HELP}")
    seconds = 0.0
    for unit, number in match.groupdict().items():
        if number is None:
            continue
        # ms divides, correctly rounded: "300ms" is 0.3, not 0.30000000000000004.
        seconds += float(number) / 1000 if unit == "ms" else float(number) * _UNIT_SECONDS[unit]
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r}: {DURATION_HELP}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest duration string ``parse_duration`` reads back as ``seconds``, for
    display and messages: 5400 -> ``"1h30m"``, 0.5 -> ``"500ms"``, 1.5 -> ``"1.5s"``."""
    if seconds == 0:
        return "0s"
    if seconds != int(seconds):
        millis = seconds * 1000
        if seconds < 1 and millis == int(millis):
            return f"{int(millis)}ms"
        return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"
    rest = int(seconds)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out
