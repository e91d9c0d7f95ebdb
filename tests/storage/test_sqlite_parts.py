"""The SQLite store's parts on their own: bucket math (pure), the planner (pure) and the
transaction helper (on an in-memory database)."""

from __future__ import annotations

import math
import sqlite3
from array import array

import pytest

from sysmon.errors import QueryError, StorageError, StorageFullError
from sysmon.storage import rollup
from sysmon.storage.base import RangeQuery
from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import aggregate, planner
from sysmon.storage.sqlite.layout import build_tiers
from sysmon.storage.sqlite.tx import transaction

NAN = math.nan
INF = math.inf
D = 86_400.0


def col(*values: float) -> array[float]:
    return array("d", values)


def rollup_cols(*stats: rollup.Stat) -> list[array[float]]:
    """One field's four columns (mean, min, max, count) from per-slot stats."""
    return [col(*(s[k] for s in stats)) for k in range(rollup.STATS_PER_FIELD)]


# ---------------------------------------------------------------- bucket partials
@pytest.mark.parametrize(
    ("agg", "parts"),
    [("mean", [3.0, 0.0, 9.0]), ("min", [1.0, NAN, 4.0]), ("max", [2.0, NAN, 5.0])],
)
def test_raw_partials_per_bucket_skip_absent_values(agg: str, parts: list[float]) -> None:
    cols = [col(1.0, 2.0, NAN, NAN, 4.0, 5.0)]
    b0, got, counts = aggregate.bucket_partials(cols, True, 0, 0, 6, 2, agg)
    assert (b0, counts) == (0, [2.0, 0.0, 2.0])
    assert [None if v != v else v for v in got] == [None if v != v else v for v in parts]


def test_raw_partials_of_a_segment_that_starts_mid_bucket() -> None:
    # slots 3..6 with factor 2: buckets 1 (slot 3 only), 2 (4, 5), 3 (slot 6)
    b0, parts, counts = aggregate.bucket_partials(
        [col(1.0, 2.0, 3.0, 4.0)], True, 0, 3, 7, 2, "mean"
    )
    assert (b0, parts, counts) == (1, [1.0, 5.0, 4.0], [1.0, 2.0, 1.0])


def test_rollup_partials_whole_buckets_are_count_weighted() -> None:
    cols = rollup_cols((2.0, 1.0, 3.0, 10.0), (8.0, 5.0, 9.0, 30.0), rollup.GAP, rollup.GAP)
    b0, parts, counts = aggregate.bucket_partials(cols, False, 0, 0, 4, 2, "mean")
    assert (b0, counts) == (0, [40.0, 0.0])
    assert parts == [2.0 * 10 + 8.0 * 30, 0.0]  # the sum; finish divides by the count
    assert aggregate.bucket_partials(cols, False, 0, 0, 4, 2, "min")[1] == [1.0, INF]
    assert aggregate.bucket_partials(cols, False, 0, 0, 4, 2, "max")[1] == [9.0, -INF]


def test_rollup_partials_unaligned_segment_merges_per_bucket() -> None:
    cols = rollup_cols((2.0, 1.0, 3.0, 10.0), (8.0, 5.0, 9.0, 30.0), (4.0, 4.0, 4.0, 1.0))
    b0, parts, counts = aggregate.bucket_partials(cols, False, 0, 5, 8, 4, "mean")
    assert (b0, counts) == (1, [41.0])
    assert parts == [pytest.approx(2.0 * 10 + 8.0 * 30 + 4.0)]


def test_equal_count_columns_are_summed_once_per_segment() -> None:
    stats = (1.0, 1.0, 1.0, 6.0)
    two_fields = rollup_cols(stats, stats) + rollup_cols((2.0, 2.0, 2.0, 6.0), stats)
    shared: aggregate.CountMemo = {}
    first = aggregate.bucket_partials(two_fields, False, 0, 0, 2, 2, "mean", shared)
    memo = shared["counts"][1]
    second = aggregate.bucket_partials(two_fields, False, 1, 0, 2, 2, "mean", shared)
    assert first[2] == second[2] == [12.0]
    assert second[2] is memo  # reused, not recomputed
    assert (first[1], second[1]) == ([12.0], [2.0 * 6 + 1.0 * 6])


# ---------------------------------------------------------------- combine / finish
def test_combine_folds_a_shared_first_bucket_and_assigns_the_rest() -> None:
    acc, cnt = aggregate.accumulators(1, 4, "mean")
    aggregate.combine(acc[0], cnt[0], 0, [6.0, 4.0], [3.0, 2.0], "mean")
    aggregate.combine(acc[0], cnt[0], 1, [5.0, 9.0], [1.0, 3.0], "mean")  # bucket 1 shared
    assert list(acc[0]) == [6.0, 9.0, 9.0, 0.0]
    assert list(cnt[0]) == [3.0, 3.0, 3.0, 0.0]
    assert aggregate.finish(acc[0], cnt[0], "mean") == [2.0, 3.0, 3.0, None]


@pytest.mark.parametrize(("agg", "expected"), [("min", [1.0, None]), ("max", [7.0, None])])
def test_combine_min_max(agg: str, expected: list[float | None]) -> None:
    acc, cnt = aggregate.accumulators(1, 2, agg)
    aggregate.combine(acc[0], cnt[0], 0, [3.0], [1.0], agg)
    aggregate.combine(acc[0], cnt[0], 0, [1.0 if agg == "min" else 7.0], [2.0], agg)
    aggregate.combine(acc[0], cnt[0], 0, [], [], agg)  # an empty segment changes nothing
    assert aggregate.finish(acc[0], cnt[0], agg) == expected


# ---------------------------------------------------------------- masks and values
def test_mask_expired_blanks_slots_older_than_keep() -> None:
    raw = [col(1.0, 2.0, 3.0, 4.0)]
    aggregate.mask_expired(raw, True, 10.0, 100.0, 0.0, 125.0)  # slots < 25 s expired
    assert [v == v for v in raw[0]] == [False, False, False, True]
    stats = rollup_cols(*[(5.0, 5.0, 5.0, 1.0)] * 3)
    aggregate.mask_expired(stats, False, 60.0, 60.0, 0.0, 100.0)  # slot 0 expired
    assert aggregate.values(stats, False, 0, "mean") == [None, 5.0, 5.0]
    assert [c[0] for c in stats] == list(rollup.GAP)
    untouched = [col(1.0)]
    aggregate.mask_expired(untouched, True, 10.0, 100.0, 0.0, 50.0)
    assert list(untouched[0]) == [1.0]


def test_values_of_an_unmerged_grid() -> None:
    assert aggregate.values([col(1.0, NAN, -0.0)], True, 0, "max") == [1.0, None, -0.0]
    cols = rollup_cols((2.0, 1.0, 3.0, 4.0), rollup.GAP)
    assert aggregate.values(cols, False, 0, "min") == [1.0, None]
    assert aggregate.values(cols, False, 0, "max") == [3.0, None]


def test_rollup_buckets_summarize_raw_and_merge_rollups() -> None:
    raw = [col(1.0, 3.0, NAN, NAN), col(NAN, NAN, NAN, NAN)]
    got = aggregate.rollup_buckets(raw, True, 2, [(0, 2), (2, 4)])
    assert got == [[2.0, 1.0, 3.0, 2.0, *rollup.GAP], None]
    stats = rollup_cols((2.0, 1.0, 3.0, 10.0), (8.0, 5.0, 9.0, 30.0))
    assert aggregate.rollup_buckets(stats, False, 1, [(0, 2)]) == [[6.5, 1.0, 9.0, 40.0]]


# ---------------------------------------------------------------- planner
TIERS = build_tiers(RetentionConfig(), 1.0)
NOW = 1_767_225_600.0


@pytest.mark.parametrize(
    ("span", "tier", "factor", "points"),
    [
        (300, "raw", 1, 301),
        (3600, "1m", 1, 61),
        (86_400, "5m", 1, 289),
        (7 * D, "1h", 1, 169),
        (30 * D, "1h", 1, 721),
        (365 * D, "1h", 9, 975),
    ],
)
def test_auto_picks_the_finest_tier_that_covers_and_fits(
    span: float, tier: str, factor: int, points: int
) -> None:
    p = planner.plan(RangeQuery("cpu", NOW - span, NOW), TIERS, NOW)
    assert (p.tier.name, p.factor, p.n) == (tier, factor, points)
    assert p.step == p.tier.step * factor and p.t0 % p.step == 0
    assert p.timestamps[0] == p.t0 and len(p.timestamps) == p.n


def test_an_explicit_tier_past_its_retention_is_served_by_a_coarser_one() -> None:
    q = RangeQuery("cpu", NOW - 3 * D, NOW, resolution="raw")
    assert planner.plan(q, TIERS, NOW).tier.name == "1m"
    q = RangeQuery("cpu", NOW - 400 * D, NOW, resolution="5m")
    assert planner.plan(q, TIERS, NOW).tier.name == "1h"  # the coarsest, even if short


@pytest.mark.parametrize(
    ("q", "param"),
    [
        (RangeQuery("cpu", 10.0, 5.0), "end"),
        (RangeQuery("cpu", -1.0, 5.0), "start"),
        (RangeQuery("cpu", 0.0, math.inf), "start"),
        (RangeQuery("cpu", 0.0, 5.0, max_points=10_001), "max_points"),
        (RangeQuery("cpu", 0.0, 5.0, agg="last"), "agg"),  # type: ignore[arg-type]
    ],
)
def test_validate_names_the_parameter(q: RangeQuery, param: str) -> None:
    with pytest.raises(QueryError) as info:
        planner.validate(q)
    assert info.value.param == param


def test_a_tier_that_is_not_configured_is_refused() -> None:
    tiers = build_tiers(RetentionConfig(tiers=RetentionConfig().tiers[:2]), 1.0)
    with pytest.raises(QueryError) as info:
        planner.plan(RangeQuery("cpu", NOW - 60, NOW, resolution="1h"), tiers, NOW)
    assert info.value.param == "resolution" and "tiers: raw, 1m" in info.value.message


# ---------------------------------------------------------------- transaction helper
@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    return c


def test_transaction_commits_the_block(conn: sqlite3.Connection) -> None:
    with transaction(conn, "write failed"):
        conn.execute("INSERT INTO t VALUES (1)")
    assert conn.execute("SELECT v FROM t").fetchall() == [(1,)]
    assert not conn.in_transaction


def test_transaction_rolls_back_and_maps_sqlite_errors_once(conn: sqlite3.Connection) -> None:
    with pytest.raises(StorageError) as info, transaction(conn, "write failed"):
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (1)")  # UNIQUE constraint
    assert type(info.value) is StorageError
    assert str(info.value).startswith("write failed: UNIQUE constraint failed")
    assert isinstance(info.value.__cause__, sqlite3.IntegrityError)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert not conn.in_transaction


def test_transaction_maps_a_full_disk_to_storage_full(conn: sqlite3.Connection) -> None:
    with (
        pytest.raises(StorageFullError, match="maintenance failed: disk full"),
        transaction(conn, "maintenance failed"),
    ):
        raise OSError(28, "No space left on device")
    assert not conn.in_transaction


def test_transaction_lets_other_errors_through_after_rolling_back(
    conn: sqlite3.Connection,
) -> None:
    with pytest.raises(KeyError), transaction(conn, "write failed"):
        conn.execute("INSERT INTO t VALUES (1)")
        raise KeyError("not a storage problem")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
