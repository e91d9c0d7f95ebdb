"""The decoded-chunk read cache: byte-bounded LRU, same answers as without it, and a
rewritten chunk (late data merged by compaction) is never served stale."""

from __future__ import annotations

import sqlite3
from array import array
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.storage.base import RangeQuery
from sysmon.storage.cache import ChunkCache
from sysmon.storage.config import RetentionConfig
from sysmon.storage.encoding import decode_flat, encode_chunk
from sysmon.storage.sqlite import SQLiteStore
from tests.storage.helpers import T0

H = 3600.0
D = 86_400.0
Row = tuple[str, tuple[tuple[str, str], ...], float, dict[str, tuple[float, float, float, float]]]


def blob(value: float, nslots: int = 100) -> bytes:
    return encode_chunk([array("d", [value]) * nslots], nslots)


def test_cache_returns_the_decoded_chunk_and_counts_hits() -> None:
    cache = ChunkCache(1 << 20)
    b = blob(1.5)
    first = cache.get(b)
    assert first == decode_flat(b) and (cache.hits, cache.misses) == (0, 1)
    assert cache.get(bytes(b)) is first  # equal bytes, another object: a hit
    assert (cache.hits, cache.misses, len(cache)) == (1, 1, 1)


def test_cache_evicts_least_recently_used_within_its_byte_bound() -> None:
    one = 100 * 8  # decoded bytes of one entry (+ key and overhead)
    cache = ChunkCache(3 * one + 3 * 300)
    a, b, c, d = (blob(float(v)) for v in range(4))
    for x in (a, b, c):
        cache.get(x)
    assert len(cache) == 3 and cache.size_bytes <= cache.max_bytes
    cache.get(a)  # a is now the most recent: b goes first
    cache.get(d)
    assert len(cache) == 3 and cache.size_bytes <= cache.max_bytes
    misses = cache.misses
    cache.get(a), cache.get(c), cache.get(d)
    assert cache.misses == misses
    cache.get(b)
    assert cache.misses == misses + 1
    big = blob(2.0, nslots=10_000)  # larger than the whole cache: decoded, not kept
    assert cache.get(big)[2][-1] == 2.0 and big not in cache._entries
    assert cache.size_bytes <= cache.max_bytes
    cache.clear()
    assert (len(cache), cache.size_bytes) == (0, 0)
    with pytest.raises(ValueError):
        ChunkCache(-1)


def hourly(start: float, hours: int) -> list[Row]:
    """Two fields; ``idle`` is missing in every 5th bucket and has other counts, so the
    count columns of the group differ (the per-field count path)."""
    rows: list[Row] = []
    for h in range(hours):
        ts = start + h * H
        stats = {"percent": (float(h % 17), float(h % 17) - 1, float(h % 17) + 2, 360.0)}
        if h % 5:
            stats["idle"] = (100.0 - h % 13, 50.0, 100.0, float(300 + h % 7))
        rows.append(("cpu", (), ts, stats))
    return rows


def open_store(path: Path, clock: FakeClock, cache_bytes: int | None = None) -> SQLiteStore:
    kwargs = {} if cache_bytes is None else {"chunk_cache_bytes": cache_bytes}
    store = SQLiteStore(path, RetentionConfig(), 10.0, clock, **kwargs)
    store.open()
    return store


def test_cached_queries_answer_exactly_like_uncached_ones(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    db = tmp_path / "sysmon.db"
    store = open_store(db, clock)
    store.import_buckets("1h", hourly(T0 - 30 * D, 30 * 24))
    for _ in range(100):
        store.maintain(T0)
    chunks = sqlite3.connect(db).execute("SELECT count(*) FROM chunk WHERE tier = 3")
    assert chunks.fetchone()[0] >= 4
    plain = open_store(db, clock, cache_bytes=0)
    cache = store._chunk_cache
    assert cache is not None and plain._chunk_cache is None
    for agg in ("mean", "min", "max"):
        for max_points, days in ((50, 30), (1000, 30), (7, 20), (100, 3)):
            q = RangeQuery(
                "cpu",
                T0 - days * D + 1234.0,
                T0 - 1,
                resolution="1h",
                agg=agg,
                max_points=max_points,
            )
            want = plain.query(q)
            assert store.query(q) == want
            misses = cache.misses
            assert store.query(q) == want
            assert cache.misses == misses  # a repeat decodes nothing
    # Spot check one merged bucket by hand: 8 hourly buckets, count-weighted.
    q = RangeQuery("cpu", T0 - 7 * D, T0 - 1, resolution="1h", max_points=24)
    r = store.query(q)
    assert r.step_seconds == 8 * H
    t = r.timestamps[3]
    src = [row for row in hourly(T0 - 30 * D, 30 * 24) if t <= row[2] < t + 8 * H]
    idle = [row[3]["idle"] for row in src if "idle" in row[3]]
    want_idle = sum(s[0] * s[3] for s in idle) / sum(s[3] for s in idle)
    assert r.fields["idle"][3] == pytest.approx(want_idle, rel=1e-12)
    assert cache.hits > 0 and cache.size_bytes <= cache.max_bytes
    plain.close()
    store.close()
    assert len(cache) == 0  # close() frees the decoded chunks


def test_a_chunk_rewritten_by_late_data_is_not_served_from_the_cache(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    db = tmp_path / "sysmon.db"
    store = open_store(db, clock)
    store.import_buckets("1h", hourly(T0 - 21 * D, 21 * 24))
    for _ in range(100):
        store.maintain(T0)
    late_ts = T0 - 20 * D + 5 * H  # inside a closed, compacted week
    q = RangeQuery("cpu", T0 - 21 * D, T0 - 1, resolution="1h", agg="max", max_points=20)
    before = store.query(q)
    bucket = next(
        i for i, t in enumerate(before.timestamps) if t <= late_ts < t + before.step_seconds
    )
    assert before.fields["percent"][bucket] == pytest.approx(18.0)  # max of h % 17 + 2
    cache = store._chunk_cache
    assert cache is not None and len(cache) > 0
    store.import_buckets("1h", [("cpu", (), late_ts, {"percent": (500.0, 1.0, 999.0, 360.0)})])
    assert store.query(q).fields["percent"][bucket] == 999.0  # hot row over the chunk
    for i in range(100):  # past the compaction check interval
        store.maintain(T0 + 60 + i)
    conn = sqlite3.connect(db)
    hot = conn.execute("SELECT count(*) FROM hot WHERE tier = 3 AND ts = ?", (late_ts,))
    assert hot.fetchone()[0] == 0  # merged into the chunk: only the rewritten blob has it
    conn.close()
    misses = cache.misses
    after = store.query(q)
    assert after.fields["percent"][bucket] == 999.0
    assert cache.misses == misses + 1  # the rewritten chunk was decoded anew
    assert after.fields["percent"][:bucket] == before.fields["percent"][:bucket]
    store.close()
