from __future__ import annotations

import math
import struct
from array import array

import pytest

from sysmon.storage import rollup
from sysmon.storage.encoding import decode_chunk, encode_chunk, pack_row, unpack_row


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)


def test_row_round_trip_keeps_every_bit() -> None:
    values = [0.1, -0.0, 1e308, 5e-324, math.nan, math.inf, 123456789.123456789]
    back = unpack_row(pack_row(values))
    assert all(_same(a, b) for a, b in zip(values, back, strict=True))


@pytest.mark.parametrize("nslots", [1, 2, 7, 900])
def test_chunk_round_trip_is_lossless(nslots: int) -> None:
    cols = [
        array("d", [round(i * 0.37 % 100, 1) for i in range(nslots)]),
        array("d", [i * 1.000123456789 / 3 for i in range(nslots)]),
        array("d", [math.nan] * nslots),
        array("d", [math.inf if i % 2 else -math.inf for i in range(nslots)]),
    ]
    got_n, got = decode_chunk(encode_chunk(cols, nslots))
    assert got_n == nslots
    for a, b in zip(cols, got, strict=True):
        assert all(_same(x, y) for x, y in zip(a, b, strict=True))


def test_chunk_compresses_smooth_data() -> None:
    n = 900
    cols = [array("d", [50.0 + (i % 10) / 10 for i in range(n)]), array("d", [8e9] * n)]
    blob = encode_chunk(cols, n)
    assert len(blob) < 0.1 * n * 8 * 2


def test_summarize_ignores_missing_values() -> None:
    assert rollup.summarize([1.0, math.nan, 3.0, 2.0]) == (2.0, 1.0, 3.0, 3.0)
    assert rollup.summarize([math.nan]) == rollup.GAP
    assert rollup.summarize([]) == rollup.GAP


def test_counter_reset_like_drop_just_aggregates() -> None:
    # A rate that collapses after a reset is a small value like any other.
    assert rollup.summarize([100.0, 200.0, 5.0, 10.0, 300.0, 50.0]) == (
        665.0 / 6,
        5.0,
        300.0,
        6.0,
    )


def test_merge_is_count_weighted_and_skips_gaps() -> None:
    a = rollup.summarize([1.0, 2.0, 3.0])  # mean 2, n 3
    b = rollup.summarize([10.0])  # mean 10, n 1
    g = rollup.GAP
    merged = rollup.merge(*zip(a, g, b, strict=True))
    assert merged == (4.0, 1.0, 10.0, 4.0)
    assert rollup.merge(*zip(g, g, strict=True)) == rollup.GAP


def test_pick() -> None:
    st = (2.0, 1.0, 3.0, 3.0)
    assert [rollup.pick(st, a) for a in ("mean", "min", "max")] == [2.0, 1.0, 3.0]
    assert rollup.pick(rollup.GAP, "mean") is None


def test_bucket_bounds_uneven_ratio() -> None:
    # 7 s raw slots under 60 s buckets: slot i starts at 7*i.
    assert rollup.bucket_bounds(3, 60 / 7) == [(0, 9), (9, 18), (18, 26)]
    assert rollup.bucket_bounds(2, 6.0) == [(0, 6), (6, 12)]
