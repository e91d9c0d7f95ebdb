"""The ``TimeSeriesStore`` contract as one reusable test suite, run against every backend.

Use it by subclassing ``StoreContract`` in a ``test_contract_<backend>.py`` module and
providing two pytest fixtures there (module level or on the subclass)::

    class TestMyBackendContract(StoreContract):
        pass

``store``
    A ``TimeSeriesStore`` already ``open()``ed, writable from this process, holding no
    data this test can see (a fresh file, or its own ``host`` label on a shared
    server), built with a collection interval of ``INTERVAL`` (10 s) seconds and a wall
    clock that ``settle`` controls. Its retention must keep at least the last 7 days
    at the finest step (data is written at ``T0`` .. ``T0 + 30 min`` and read at
    ``T0 + 1 h``; ``T0`` is ``tests.storage.helpers.T0``, a past UTC midnight). The
    fixture closes it afterwards.

``peer`` (optional, backends that several agents share)
    A second store on the same server writing under another ``host``; without it the
    multi-host case is skipped. Every store exposes the host it writes as (``.host``).

``settle``
    ``settle(now)``: make every write so far visible to queries, and evaluate queries
    as of wall time ``now`` (set the store's clock to ``now``). SQLite: set the fake
    clock and call ``maintain(now)`` until nothing is left (rollups are built by
    maintenance); VictoriaMetrics: force the server to flush what it buffered.

A remote backend's module might read (checked against VictoriaStore)::

    @pytest.fixture
    def store(vm, clock, request):   # clock: a FakeClock(T0) fixture; vm: the server
        s = VictoriaStore(vm.url, clock=clock, host=<unique per test>,
                          interval_seconds=INTERVAL)
        s.open()
        yield s
        s.close()

    @pytest.fixture
    def settle(vm, clock):
        def go(now):
            clock.set_wall(now)
            vm.flush()
        return go

Values are chosen so that every expected answer is exact in float64 *and* survives a
backend that stores decimals of ~15 significant digits (VictoriaMetrics), so answers
are compared with ``==``. What a store does not promise by contract (bit-exact
extremes, retention, compaction) is tested in its own module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from sysmon.errors import QueryError
from sysmon.models import Labels
from sysmon.storage.base import Capabilities, RangeQuery, Resolution, TimeSeriesStore
from tests.storage.helpers import T0, snap

INTERVAL = 10.0
"""The collection interval the ``store`` fixture must be built with (the raw step)."""
NOW = T0 + 3600.0
"""Wall time of every query (``settle(NOW)``)."""

Settle = Callable[[float], None]
CORE0: Labels = (("core", "0"),)
CORE1: Labels = (("core", "1"),)
SDA: Labels = (("device", "sda"),)
ROOT: Labels = (("mount", "/"),)


def minute_values(minute: int) -> list[float]:
    """The six 10 s ticks of minute ``minute``: ``m+1 .. m+6`` (mean ``m + 3.5``)."""
    return [float(minute + k) for k in range(1, 7)]


def write_minutes(store: TimeSeriesStore, minutes: int, skip: int | None = None) -> None:
    """cpu totals ``percent`` at every 10 s tick of ``minutes`` minutes from ``T0``
    (minute ``skip`` not written at all), and ``load_1`` = half of it."""
    for m in range(minutes):
        if m == skip:
            continue
        for k, v in enumerate(minute_values(m)):
            ts = T0 + 60 * m + INTERVAL * k
            store.write(snap(ts, {("cpu", ()): {"percent": v, "load_1": v / 2}}))


class StoreContract:
    """Behaviour every ``TimeSeriesStore`` shares; see the module docstring for fixtures."""

    # ------------------------------------------------------------------ capabilities
    def test_capabilities_describe_the_store(self, store: TimeSeriesStore) -> None:
        caps = store.capabilities()
        assert isinstance(caps, Capabilities)
        assert caps.backend == store.stats().backend
        assert caps.writable is True
        assert caps.resolutions, "at least one native resolution"
        steps = [r.step_seconds for r in caps.resolutions]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)  # fine to coarse
        assert caps.finest_step_seconds == INTERVAL  # the raw step is the interval
        assert all(r.retention_seconds > 0 for r in caps.resolutions)
        assert caps.max_retention_seconds >= 7 * 86_400
        assert caps.resolutions[0].name == "raw"
        assert store.capabilities() == caps  # static facts: asking twice agrees

    # ------------------------------------------------------------------ raw reads
    def test_raw_totals_come_back_at_their_ticks_with_gaps_as_none(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        ticks = {0: 12.5, 1: 13.25, 3: 0.0, 4: 99.5}  # tick 2 missing: a gap
        for k, v in ticks.items():
            store.write(snap(T0 + INTERVAL * k, {("cpu", ()): {"percent": v, "load_1": 1.5}}))
        store.write(snap(T0 + INTERVAL * 5, {("cpu", ()): {"percent": 7.0}}))  # no load_1
        settle(NOW)
        r = store.query(RangeQuery("cpu", T0, T0 + INTERVAL * 6, resolution="raw"))
        assert (r.metric, r.labels, r.resolution, r.agg) == ("cpu", (), "raw", "mean")
        assert r.step_seconds == INTERVAL
        assert r.timestamps == [T0 + INTERVAL * k for k in range(7)]
        assert r.fields["percent"] == [12.5, 13.25, None, 0.0, 99.5, 7.0, None]
        assert r.fields["load_1"] == [1.5, 1.5, None, 1.5, 1.5, None, None]

    def test_a_tick_a_little_early_or_late_lands_in_its_own_slot(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        store.write(snap(T0 + 0.004, {("cpu", ()): {"percent": 1.0}}))
        store.write(snap(T0 + INTERVAL - 0.003, {("cpu", ()): {"percent": 2.0}}))
        settle(NOW)
        r = store.query(RangeQuery("cpu", T0, T0 + INTERVAL, resolution="raw"))
        assert r.fields["percent"] == [1.0, 2.0]

    def test_labelled_series_are_kept_apart_and_listed(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        for k in range(3):
            store.write(
                snap(
                    T0 + INTERVAL * k,
                    {
                        ("cpu", ()): {"percent": 50.0 + k},
                        ("cpu", CORE0): {"percent": 10.0 + k},
                        ("cpu", CORE1): {"percent": 90.0 - k},
                        ("disk", SDA): {"read_bytes_per_sec": 4096.0 * k},
                        ("disk", ROOT): {"percent": 41.5},
                    },
                )
            )
        settle(NOW)
        end = T0 + INTERVAL * 2

        def raw(metric: str, labels: Labels, field: str) -> list[float | None]:
            q = RangeQuery(metric, T0, end, labels=labels, resolution="raw")
            r = store.query(q)
            assert r.labels == labels
            return r.fields[field]

        assert raw("cpu", (), "percent") == [50.0, 51.0, 52.0]
        assert raw("cpu", CORE0, "percent") == [10.0, 11.0, 12.0]
        assert raw("cpu", CORE1, "percent") == [90.0, 89.0, 88.0]
        assert raw("disk", SDA, "read_bytes_per_sec") == [0.0, 4096.0, 8192.0]
        assert raw("disk", ROOT, "percent") == [41.5, 41.5, 41.5]
        assert list(store.series("cpu")) == [(), CORE0, CORE1]  # totals first
        assert list(store.series("disk")) == [SDA, ROOT]
        assert list(store.series("network")) == []

    # ------------------------------------------------------------------ aggregates
    @pytest.mark.parametrize(
        ("agg", "expected"),
        [
            ("mean", [m + 3.5 for m in range(4)]),
            ("min", [m + 1.0 for m in range(4)]),
            ("max", [m + 6.0 for m in range(4)]),
        ],
    )
    def test_minute_buckets_aggregate_exactly_their_own_ticks(
        self, store: TimeSeriesStore, settle: Settle, agg: str, expected: list[float]
    ) -> None:
        write_minutes(store, 4)
        settle(NOW)
        q = RangeQuery("cpu", T0, T0 + 3 * 60, resolution="1m", agg=agg)  # type: ignore[arg-type]
        r = store.query(q)
        assert (r.resolution, r.agg, r.step_seconds) == ("1m", agg, 60.0)
        assert r.timestamps == [T0 + 60 * m for m in range(4)]
        assert r.fields["percent"] == expected
        assert r.fields["load_1"] == [v / 2 for v in expected]

    def test_an_empty_bucket_is_none_never_zero_or_interpolated(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        write_minutes(store, 5, skip=2)
        settle(NOW)
        r = store.query(RangeQuery("cpu", T0, T0 + 4 * 60, resolution="1m"))
        assert r.fields["percent"] == [3.5, 4.5, None, 6.5, 7.5]
        before = store.query(RangeQuery("cpu", T0 - 180, T0 - 60, resolution="1m"))
        assert before.fields["percent"] == [None, None, None]

    def test_max_points_merges_buckets_and_keeps_the_grid_regular(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        write_minutes(store, 30)
        settle(NOW)
        start, end = T0, T0 + 30 * 60 - INTERVAL
        resolutions: tuple[Resolution, ...] = ("raw", "1m", "auto")
        for resolution in resolutions:
            q = RangeQuery("cpu", start, end, resolution=resolution, max_points=10)
            r = store.query(q)
            assert 1 <= len(r.timestamps) <= 10, resolution
            assert r.step_seconds >= 180.0  # 30 minutes in at most 10 points
            assert r.timestamps[0] == math.floor(start / r.step_seconds) * r.step_seconds
            steps = {b - a for a, b in zip(r.timestamps, r.timestamps[1:], strict=False)}
            assert steps == {r.step_seconds}
            assert r.timestamps[-1] <= end < r.timestamps[-1] + r.step_seconds
        # Every tick value is minute + 1..6: the merged maxima and minima stay exact.
        q = RangeQuery("cpu", start, end, resolution="1m", agg="max", max_points=10)
        r = store.query(q)
        per = round(r.step_seconds / 60)
        assert r.fields["percent"] == [
            float(min(30, (b + 1) * per) - 1 + 6) for b in range(len(r.timestamps))
        ]
        q = RangeQuery("cpu", start, end, resolution="1m", agg="min", max_points=10)
        assert store.query(q).fields["percent"] == [
            float(b * per + 1) for b in range(len(r.timestamps))
        ]

    def test_the_answer_grid_starts_at_a_step_boundary(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        write_minutes(store, 3)
        settle(NOW)
        r = store.query(RangeQuery("cpu", T0 + 75, T0 + 150, resolution="1m"))
        assert r.timestamps == [T0 + 60, T0 + 120]
        assert r.fields["percent"] == [4.5, 5.5]

    # ------------------------------------------------------------------ errors
    def test_refused_queries_name_the_parameter(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        write_minutes(store, 1)
        settle(NOW)
        cases: list[tuple[RangeQuery, str]] = [
            (RangeQuery("cpu", T0 + 60, T0), "end"),
            (RangeQuery("cpu", T0, T0 + 60, max_points=0), "max_points"),
            (RangeQuery("cpu", T0, T0 + 60, agg="median"), "agg"),  # type: ignore[arg-type]
        ]
        for q, param in cases:
            with pytest.raises(QueryError) as info:
                store.query(q)
            assert info.value.param == param

    def test_unknown_metric_or_label_set(self, store: TimeSeriesStore, settle: Settle) -> None:
        write_minutes(store, 1)
        settle(NOW)
        for q in (
            RangeQuery("gpu", T0, T0 + 60, resolution="raw"),
            RangeQuery("cpu", T0, T0 + 60, labels=(("core", "9"),), resolution="raw"),
        ):
            try:
                r = store.query(q)
            except QueryError as exc:  # SQLite knows what it never stored
                assert exc.param in ("metric", "labels")
            else:  # a backend that cannot tell "never stored" from "no data" answers gaps
                assert all(v is None for values in r.fields.values() for v in values)

    # ------------------------------------------------------------------ health
    def test_ping_and_stats(self, store: TimeSeriesStore, settle: Settle) -> None:
        assert store.ping() is True
        write_minutes(store, 1)
        settle(NOW)
        stats = store.stats()
        assert stats.backend == store.capabilities().backend
        assert stats.last_write_error is None
        assert stats.pending_writes == 0
        assert store.ping() is True

    # ------------------------------------------------------------------ processes
    def test_process_tables_when_kept(self, store: TimeSeriesStore, settle: Settle) -> None:
        rows: list[dict[str, object]] = [
            {"pid": 1, "name": "init", "cpu_percent": 0.5, "user": None},
            {"pid": 42, "name": "worker", "cpu_percent": 99.0, "user": "www"},
        ]
        ts = T0 + 600
        store.write(snap(ts, {("processes", ()): {"count": 2.0}}, processes=rows))
        settle(NOW)
        found = store.query_processes(ts + 1)
        if not store.capabilities().process_tables:
            assert found is None
            return
        assert found is not None
        assert found[0] == ts
        assert [dict(r) for r in found[1]] == rows
        assert store.query_processes(ts - 1) is None  # nothing stored before it

    # ------------------------------------------------------------------ hosts
    def test_hosts_name_this_store_with_its_newest_tick(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        own = _own_host(store)
        assert [h for h in store.hosts() if h.name == own] == []  # nothing written yet
        write_minutes(store, 3)
        settle(NOW)
        seen = {h.name: h.last_seen for h in store.hosts()}
        assert seen[own] == T0 + 2 * 60 + INTERVAL * 5  # the last tick written

    def test_a_query_for_this_host_equals_the_default_and_others_are_refused(
        self, store: TimeSeriesStore, settle: Settle
    ) -> None:
        own = _own_host(store)
        write_minutes(store, 1)
        settle(NOW)
        q = RangeQuery("cpu", T0, T0 + 50, resolution="raw")
        mine = store.query(RangeQuery("cpu", T0, T0 + 50, resolution="raw", host=own))
        assert mine.fields == store.query(q).fields
        assert mine.fields["percent"] == minute_values(0)
        assert list(store.series("cpu", own)) == [()]
        try:
            assert list(store.series("cpu", "no-such-host")) == []
        except QueryError as exc:  # a one-host store refuses other names outright
            assert exc.param == "host"
        with pytest.raises(QueryError) as info:
            store.query(RangeQuery("cpu", T0, T0 + 50, resolution="raw", host="no-such-host"))
        assert info.value.param == "host"

    def test_hosts_sharing_a_store_read_their_own_samples(
        self, store: TimeSeriesStore, settle: Settle, request: pytest.FixtureRequest
    ) -> None:
        """Backends shared by several agents give a ``peer`` fixture: a second store on
        the same server, writing under another host name."""
        try:
            peer: TimeSeriesStore = request.getfixturevalue("peer")
        except pytest.FixtureLookupError:
            pytest.skip("one host per store (no peer fixture)")
        own, other = _own_host(store), _own_host(peer)
        for k in range(6):
            store.write(snap(T0 + INTERVAL * k, {("cpu", ()): {"percent": 10.0 + k}}))
            if k < 3:  # the peer stops after three ticks
                peer.write(snap(T0 + INTERVAL * k, {("cpu", ()): {"percent": 70.0 + k}}))
        settle(NOW)
        q = RangeQuery("cpu", T0, T0 + INTERVAL * 5, resolution="raw")
        assert store.query(q).fields["percent"] == [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
        theirs = store.query(RangeQuery(q.metric, q.start, q.end, resolution="raw", host=other))
        # A host that stopped has gaps after its last point, never its last value again.
        assert theirs.fields["percent"] == [70.0, 71.0, 72.0, None, None, None]
        assert peer.query(q).fields["percent"] == [70.0, 71.0, 72.0, None, None, None]
        mean = store.query(RangeQuery("cpu", T0, T0 + 120, resolution="1m", host=other))
        assert mean.fields["percent"] == [71.0, None, None]
        seen = {h.name: h.last_seen for h in store.hosts()}
        assert seen[own] == T0 + INTERVAL * 5
        assert seen[other] == T0 + INTERVAL * 2
        assert list(store.series("cpu", other)) == [()]


def _own_host(store: TimeSeriesStore) -> str:
    """The host a store writes as (every backend names it ``host``)."""
    host = getattr(store, "host", None)
    assert isinstance(host, str) and host, "a store exposes the host it writes as"
    return host
