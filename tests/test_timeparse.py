from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.timeparse import parse_duration, parse_instant


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


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1d", 86400),
        ("365d", 31_536_000),
        ("2w", 1_209_600),
        ("90", 90),
        (15, 15),
        (1.5, 1.5),
        ("250ms", 0.25),
    ],
)
def test_parse_duration(value: str | int | float, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "5 minutes", "-1s", "m", True, "1y"])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)  # type: ignore[arg-type]
