from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sysmon.timeparse import format_duration, parse_duration, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1764211200", 1764211200.0),
        ("1764211200.25", 1764211200.25),
        (" 0 ", 0.0),
        ("2026-11-27T03:12:00Z", 1795749120.0),
        ("2026-11-27T03:12:00z", 1795749120.0),
        ("2026-11-27T03:12:00+00:00", 1795749120.0),
        ("2026-11-27T12:12:00+09:00", 1795749120.0),
        ("2026-11-27T03:12:00", 1795749120.0),  # naive = UTC
        ("2026-11-27", 1795737600.0),
    ],
)
def test_parse_instant_accepts_epoch_and_iso(text: str, expected: float) -> None:
    assert parse_instant(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "nan",
        "inf",
        "-5",
        "1e20",
        "2026-13-01T00:00:00Z",
        "yesterday",
        "1900-01-01",
        "1970-01-01T00:00:00+01:00",
        "0001-01-01",
    ],
)
def test_parse_instant_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)


@given(st.floats(min_value=0, max_value=253_402_300_000, allow_nan=False))
def test_parse_instant_roundtrips_epoch(value: float) -> None:
    assert parse_instant(repr(value)) == value


@given(st.text(max_size=40))
def test_parse_instant_only_raises_value_error(text: str) -> None:
    try:
        result = parse_instant(text)
    except ValueError:
        return
    assert 0 <= result <= 253_402_300_799


# --- durations: one grammar (sysmon.timeparse.parse_duration) for every duration key ------

DURATIONS = [
    ("500ms", 0.5),
    ("250ms", 0.25),
    ("300ms", 0.3),
    ("0s", 0.0),
    ("90s", 90.0),
    ("5m", 300.0),
    ("1h", 3600.0),
    ("1h30m", 5400.0),
    ("1d12h", 129_600.0),
    ("7d", 604_800.0),
    ("365d", 31_536_000.0),
    ("2w", 1_209_600.0),
    ("1w2d3h4m5s6ms", 604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5 + 0.006),
    ("1.5h", 5400.0),
    ("90", 90.0),
    ("0", 0.0),
    (" 45 ", 45.0),
    ("5M", 300.0),  # units are case-insensitive
    (15, 15.0),  # YAML numbers are seconds
    (1.5, 1.5),
    (0, 0.0),
]


@pytest.mark.parametrize(("value", "seconds"), DURATIONS)
def test_parse_duration(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds, rel=1e-12)


REFUSED = [
    "",
    "   ",
    "5 minutes",
    "5 m",
    "1h 30m",
    "-1s",
    "-5m",
    "m",
    "m5",
    "5x",
    "1y",
    "30m1h",  # largest unit first
    "1m30m",  # each unit once
    "1h-3m",
    "1e3",
    "nan",
    "inf",
    "\u0663s",  # a non-ASCII digit
    True,
    None,
    -1,
    float("nan"),
    float("inf"),
    [5],
]


@pytest.mark.parametrize("value", REFUSED)
def test_parse_duration_refuses_with_the_one_message(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    message = str(info.value)
    assert message.startswith(f"invalid duration {value!r}: ")
    assert "e.g. 500ms, 90s, 5m, 1h30m, 7d, 2w" in message


@pytest.mark.parametrize(
    ("value", "bound", "message"),
    [
        ("0s", {"above": 0}, "invalid duration '0s': must be greater than zero"),
        (0, {"above": 0}, "invalid duration 0: must be greater than zero"),
        ("500ms", {"minimum": 1}, "invalid duration '500ms': must be at least 1s"),
        ("59s", {"minimum": 60}, "invalid duration '59s': must be at least 1m"),
        ("1s", {"above": 1}, "invalid duration '1s': must be greater than 1s"),
    ],
)
def test_lower_bounds_say_which(value: object, bound: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value, **bound)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("value", "bound"), [("1ms", {"above": 0}), ("1s", {"minimum": 1}), ("1m", {"minimum": 60})]
)
def test_lower_bounds_accept_the_bound(value: str, bound: dict[str, float]) -> None:
    assert parse_duration(value, **bound) > 0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0s"),
        (0.5, "500ms"),
        (0.25, "250ms"),
        (1.5, "1.5s"),
        (59.0, "59s"),
        (60.0, "1m"),
        (5400.0, "1h30m"),
        (90061.0, "1d1h1m1s"),
        (604_800.0, "7d"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@given(st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-9, abs=1e-6)
