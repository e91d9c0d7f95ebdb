"""The exact text of every number ``sysmon top`` shows."""

from __future__ import annotations

import math

import pytest

from sysmon.tui.format import (
    bar,
    fmt_bytes,
    fmt_duration,
    fmt_number,
    fmt_percent,
    fmt_rate,
    level,
    shorten,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (math.nan, "-"),
        (math.inf, "-"),
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 - 1, "1.0 MiB"),  # not "1024.0 KiB"
        (5 * 1024**3 + 300 * 1024**2, "5.3 GiB"),
        (3 * 1024**4, "3.0 TiB"),
        (-2048, "-2.0 KiB"),
    ],
)
def test_bytes(value: float | None, text: str) -> None:
    assert fmt_bytes(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0.0, "0 B/s"), (2048.0, "2.0 KiB/s"), (1.5 * 1024**2, "1.5 MiB/s")],
)
def test_rates_are_bytes_per_second_and_absent_stays_absent(value: float | None, text: str) -> None:
    assert fmt_rate(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "-"), (0, "0.0%"), (12.345, "12.3%"), (99.96, "100.0%"), (100, "100.0%")],
)
def test_percent(value: float | None, text: str) -> None:
    assert fmt_percent(value) == text


@pytest.mark.parametrize(
    ("value", "decimals", "text"), [(None, 2, "-"), (0.3, 2, "0.30"), (1.26, 1, "1.3")]
)
def test_number(value: float | None, decimals: int, text: str) -> None:
    assert fmt_number(value, decimals) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (-5, "0s"),  # clocks a little apart never show a negative age
        (0, "0s"),
        (45.9, "45s"),
        (312, "5m12s"),
        (2 * 3600 + 5 * 60 + 7, "2h05m"),
        (3 * 86400 + 4 * 3600 + 59, "3d04h"),
    ],
)
def test_duration(seconds: float | None, text: str) -> None:
    assert fmt_duration(seconds) == text


@pytest.mark.parametrize(
    ("percent", "width", "text"),
    [
        (None, 4, "    "),
        (0, 4, "    "),
        (100, 4, "████"),
        (50, 4, "██  "),
        (12.5, 4, "▌   "),  # half a cell: 4 eighths
        (3.125, 4, "▏   "),  # one eighth of a cell
        (150, 4, "████"),  # clamped
        (-10, 4, "    "),
        (50, 0, ""),
    ],
)
def test_bar(percent: float | None, width: int, text: str) -> None:
    assert bar(percent, width) == text
    assert len(bar(percent, width)) == max(width, 0)


@pytest.mark.parametrize(
    ("percent", "band"),
    [(None, "ok"), (0, "ok"), (74.9, "ok"), (75, "warn"), (89.9, "warn"), (90, "crit")],
)
def test_level(percent: float | None, band: str) -> None:
    assert level(percent) == band


@pytest.mark.parametrize(
    ("text", "width", "out"),
    [("python3", 10, "python3"), ("python3", 7, "python3"), ("python3", 4, "pyt…"), ("x", 0, "")],
)
def test_shorten(text: str, width: int, out: str) -> None:
    assert shorten(text, width) == out
