"""Property-based tests (hypothesis) for the pure functions the service's numbers rest on:
timestamp parsing (sysmon/timeparse.py), counter rates (sysmon/collectors/rates.py) and
rollup statistics (sysmon/storage/rollup.py).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from sysmon.collectors.rates import RateTracker, counter_delta, counter_rate, per_second
from sysmon.storage import rollup
from sysmon.timeparse import _MAX_EPOCH, parse_duration, parse_instant

# --- timestamps ----------------------------------------------------------------------

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets
)


@given(st.text(max_size=40))
def test_parse_instant_only_ever_raises_value_error(text: str) -> None:
    try:
        value = parse_instant(text)
    except ValueError:
        return
    assert math.isfinite(value)


@given(st.datetimes(timezones=offsets).map(datetime.isoformat))
@example("1900-01-01")
def test_accepted_instants_are_within_1970_and_9999(text: str) -> None:
    try:
        value = parse_instant(text)
    except ValueError:
        return
    assert 0 <= value <= _MAX_EPOCH, f"{text!r} -> {value}"


@given(moments)
def test_iso_8601_with_offset_round_trips(moment: datetime) -> None:
    assert parse_instant(moment.isoformat()) == pytest.approx(moment.timestamp(), abs=1e-6)
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    assert parse_instant(utc.isoformat() + "Z") == pytest.approx(moment.timestamp(), abs=1e-6)


@given(
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from(["ms", "s", "m", "h", "d", "w", ""]),
)
def test_parse_duration_scales_by_unit(number: int, unit: str) -> None:
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "": 1}[unit]
    assert parse_duration(f"{number}{unit}") == pytest.approx(number * scale)


@given(st.text(max_size=20))
def test_parse_duration_is_non_negative_or_value_error(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(value) and value >= 0


# --- rates ---------------------------------------------------------------------------

counters = st.integers(min_value=0, max_value=2**64 - 1).map(float)
instants = st.floats(min_value=0, max_value=1e9, allow_nan=False)


@given(counters, counters, instants, st.floats(min_value=1e-6, max_value=1e6))
def test_rate_is_delta_over_elapsed_or_none_on_reset(
    before: float, after: float, t0: float, elapsed: float
) -> None:
    t1 = t0 + elapsed
    assume(t1 > t0)
    rate = counter_rate((before, t0), after, t1)
    if after < before:
        assert rate is None, "a counter going backwards is a reset: no rate"
    else:
        assert rate is not None and math.isfinite(rate) and rate >= 0
        assert rate * (t1 - t0) == pytest.approx(after - before, rel=1e-9, abs=1e-6)


@given(counters, counters, instants, st.floats(min_value=-1e6, max_value=0))
def test_no_rate_without_positive_elapsed_time(
    before: float, after: float, t0: float, back: float
) -> None:
    assert counter_rate((before, t0), after, t0 + back) is None


@given(counters)
def test_first_reading_has_no_rate(value: float) -> None:
    assert counter_delta(None, value) is None
    assert counter_rate(None, value, 1.0) is None
    assert per_second(None, 1.0) is None


@given(
    st.lists(
        st.dictionaries(st.sampled_from("abcde"), counters, max_size=5), min_size=1, max_size=8
    )
)
def test_tracker_forgets_unseen_series_and_restarts_them(ticks: list[dict[str, float]]) -> None:
    tracker: RateTracker[str] = RateTracker()
    previous: dict[str, float] = {}
    now = 1000.0
    for tick in ticks:
        for key, value in tick.items():
            rate = tracker.rate(key, value, now)
            if key not in previous or value < previous[key]:
                assert rate is None
            else:
                assert rate == pytest.approx(value - previous[key])
        tracker.end_tick()
        previous = dict(tick)
        assert set(previous) == {k for k in "abcde" if k in tracker}
        now += 1.0


# --- rollups -------------------------------------------------------------------------

values = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
maybe_values = st.one_of(values, st.just(math.nan))


@given(st.lists(maybe_values, max_size=30))
def test_summarize_describes_the_present_values(raw: list[float]) -> None:
    present = [v for v in raw if not math.isnan(v)]
    mean, lo, hi, count = rollup.summarize(raw)
    assert count == len(present)
    if not present:
        assert (mean, lo, hi, count) == rollup.GAP
        assert rollup.pick(rollup.summarize(raw), "mean") is None
        return
    assert lo == min(present) and hi == max(present)
    slack = 1e-12 * max(1.0, abs(lo), abs(hi))  # fsum(x) / n may round one ulp out
    assert lo - slack <= mean <= hi + slack
    assert rollup.pick((mean, lo, hi, count), "min") == lo
    assert rollup.pick((mean, lo, hi, count), "max") == hi


@given(st.lists(st.lists(maybe_values, max_size=10), min_size=1, max_size=8))
def test_merging_buckets_equals_summarizing_their_values(parts: list[list[float]]) -> None:
    stats = [rollup.summarize(p) for p in parts]
    merged = rollup.merge(
        [s[rollup.MEAN] for s in stats],
        [s[rollup.MIN] for s in stats],
        [s[rollup.MAX] for s in stats],
        [s[rollup.COUNT] for s in stats],
    )
    whole = rollup.summarize([v for p in parts for v in p])
    assert merged[rollup.COUNT] == whole[rollup.COUNT]
    assert merged[rollup.MIN] == whole[rollup.MIN]
    assert merged[rollup.MAX] == whole[rollup.MAX]
    if whole[rollup.COUNT]:
        scale = max(1.0, abs(whole[rollup.MIN]), abs(whole[rollup.MAX]))
        assert merged[rollup.MEAN] == pytest.approx(whole[rollup.MEAN], abs=1e-9 * scale)


@given(st.integers(min_value=0, max_value=500), st.integers(min_value=1, max_value=3600))
def test_bucket_bounds_partition_the_slots(count: int, ratio_int: int) -> None:
    bounds = rollup.bucket_bounds(count, float(ratio_int))
    assert len(bounds) == count
    pos = 0
    for lo, hi in bounds:
        assert lo == pos and hi - lo == ratio_int
        pos = hi


@given(
    st.integers(min_value=1, max_value=300),
    st.floats(min_value=0.5, max_value=120.0, allow_nan=False),
)
def test_bucket_bounds_with_fractional_ratio_are_contiguous(count: int, ratio: float) -> None:
    bounds = rollup.bucket_bounds(count, ratio)
    assert bounds[0][0] == 0
    for (_, hi), (lo, _) in itertools.pairwise(bounds):
        assert hi == lo
    for lo, hi in bounds:
        assert 0 <= hi - lo <= math.ceil(ratio) + 1
    assert bounds[-1][1] == pytest.approx(count * ratio, abs=1.0 + 1e-6)
