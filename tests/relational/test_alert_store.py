"""``AlertStore`` behaves the same on SQLite and PostgreSQL: state, history, deliveries,
silences, pruning, the server's open-without-creating mode and concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.alerts.store import AlertEvent, AlertStore, Delivery, StoredState
from sysmon.errors import StorageError
from tests.relational.backends import BACKENDS, backend_url


@pytest.fixture(params=BACKENDS)
def relational_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with backend_url(request) as url:
        yield url


@pytest.fixture
def store(tmp_path: Path, relational_url: str | None) -> Iterator[AlertStore]:
    opened = AlertStore(str(tmp_path / "sysmon.db"), url=relational_url)
    opened.open()
    yield opened
    opened.close()


def event(ts: float, kind: str = "firing", rule: str = "cpu", **labels: str) -> AlertEvent:
    return AlertEvent(
        id=0,
        timestamp=ts,
        kind=kind,
        rule=rule,
        severity="critical",
        metric="cpu.percent",
        labels=labels,
        value=93.5,
        threshold=90.0,
        operator=">",
        since=ts - 300,
        silenced=kind == "silenced",
    )


def state(rule: str = "cpu", firing_event_id: int | None = -1, **labels: str) -> StoredState:
    return StoredState(
        rule=rule,
        labels=tuple(sorted(labels.items())),
        state="firing",
        since=1000.0,
        firing_since=1300.0,
        value=93.5,
        last_notified_at=1300.25,
        notified=True,
        firing_event_id=firing_event_id,
    )


def test_record_assigns_ids_and_links_the_state_to_its_firing_event(store: AlertStore) -> None:
    ids = store.record(
        upsert=[state(core="1")],
        events=[event(1300.0, core="1"), event(1300.0, kind="resolved", rule="mem")],
    )
    assert len(ids) == 2 and ids[0] < ids[1]
    (loaded,) = store.load_states()
    assert loaded == state(core="1", firing_event_id=ids[0])
    # A later change with the id unknown to the engine (-1) keeps the stored one.
    store.record(upsert=[state(core="1")])
    assert store.load_states()[0].firing_event_id == ids[0]
    store.record(upsert=[state(core="1", firing_event_id=None)])
    assert store.load_states()[0].firing_event_id is None


def test_upsert_replaces_and_delete_forgets(store: AlertStore) -> None:
    store.record(upsert=[state(core="1"), state(core="2"), state(rule="disk", mount="/")])
    changed = StoredState("cpu", (("core", "1"),), "pending", 2000.0, None, 85.0, None, False, None)
    store.record(upsert=[changed], delete=[("cpu", (("core", "2"),))])
    assert sorted(store.load_states(), key=lambda s: s.rule) == [
        changed,
        state(rule="disk", mount="/", firing_event_id=None),
    ]
    assert store.delete_rules_except(["cpu"]) == 1
    assert [s.rule for s in store.load_states()] == ["cpu"]
    assert store.delete_rules_except([]) == 1
    assert store.load_states() == []


def test_a_failed_batch_leaves_nothing_behind(store: AlertStore) -> None:
    bad = state(core="1")
    object.__setattr__(bad, "since", None)  # NOT NULL: the upsert fails after the event
    with pytest.raises(StorageError, match="alert store"):
        store.record(upsert=[bad], events=[event(1300.0)])
    assert store.events(0, 1e12) == []
    assert store.load_states() == []


def test_events_between_two_times_in_order_with_a_limit(store: AlertStore) -> None:
    ids = store.record(events=[event(1000.0 + i, core=str(i)) for i in range(10)])
    got = store.events(1002.0, 1007.0, limit=3)
    assert [(e.id, e.timestamp, e.labels) for e in got] == [
        (ids[i], 1000.0 + i, {"core": str(i)}) for i in (2, 3, 4)
    ]
    first = got[0]
    assert (first.kind, first.rule, first.severity, first.metric) == (
        "firing",
        "cpu",
        "critical",
        "cpu.percent",
    )
    assert (first.value, first.threshold, first.operator, first.since, first.silenced) == (
        93.5,
        90.0,
        ">",
        702.0,
        False,
    )
    assert len(store.events(0, 1e12)) == 10


def test_deliveries_by_event_and_pruning(store: AlertStore) -> None:
    old, new = store.record(events=[event(1000.0), event(5000.0)])
    for event_id, ts in [(old, 1001.0), (new, 5001.0), (new, 5002.0)]:
        store.add_delivery(Delivery(event_id, ts, "email", "firing", "sent", 1, None))
    store.add_delivery(Delivery(None, 1003.0, "slack", "test", "failed", 3, "timeout"))
    store.add_delivery(Delivery(None, 5003.0, "slack", "test", "sent", 1, None))
    got = store.deliveries([old, new, 999_999])
    assert {k: [d.timestamp for d in v] for k, v in got.items()} == {
        old: [1001.0],
        new: [5001.0, 5002.0],
    }
    assert store.deliveries([]) == {}
    assert store.prune(before=2000.0) == 1
    assert [e.id for e in store.events(0, 1e12)] == [new]
    assert store.deliveries([old, new]) == {new: got[new]}


def test_deliveries_of_many_events(store: AlertStore) -> None:
    """More ids than one ``IN`` list takes at once (chunks of 500)."""
    ids = store.record(events=[event(1000.0 + i) for i in range(1203)])
    for event_id in ids[::100]:
        store.add_delivery(Delivery(event_id, 1.0, "hook", "firing", "sent", 1, None))
    assert sorted(store.deliveries(ids)) == ids[::100]


def test_silences(store: AlertStore) -> None:
    a = store.add_silence({"rule": "cpu*", "mount": "/"}, until=2000.0, comment="deploy", now=1.0)
    b = store.add_silence({"severity": "warning"}, until=3000.0, comment="", now=2.0)
    assert b.id > a.id
    assert store.silences() == [a, b]
    assert store.silences(now=2000.0) == [b]
    assert store.delete_silence(a.id)
    assert not store.delete_silence(a.id)
    assert store.silences() == [b]


def test_the_server_opens_only_what_the_agent_made(
    tmp_path: Path, relational_url: str | None
) -> None:
    server = AlertStore(str(tmp_path / "sysmon.db"), create=False, url=relational_url)
    with pytest.raises(StorageError, match="not available yet"):
        server.silences()
    assert not (tmp_path / "sysmon.db").exists()
    agent = AlertStore(str(tmp_path / "sysmon.db"), url=relational_url)
    agent.open()
    try:
        made = server.add_silence({"rule": "cpu"}, until=2000.0, comment="", now=1.0)
        assert agent.silences(now=1.0) == [made]
    finally:
        server.close()
        agent.close()


def test_concurrent_writers_from_two_handles_lose_nothing(
    tmp_path: Path, relational_url: str | None
) -> None:
    """The agent's engine and the server's API write at once (two stores, two processes
    in production): every write lands, each batch atomically."""
    stores = [AlertStore(str(tmp_path / "sysmon.db"), url=relational_url) for _ in range(2)]
    for s in stores:
        s.open()
    errors: list[BaseException] = []

    def write(s: AlertStore, n: int) -> None:
        try:
            for i in range(40):
                s.record(events=[event(float(i), rule=f"w{n}"), event(float(i), rule=f"w{n}")])
                s.add_silence({"rule": f"w{n}"}, until=1e12, comment=str(i), now=float(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(stores[n % 2], n)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        events = stores[0].events(0, 1e12, limit=10_000)
        assert len(events) == 4 * 40 * 2
        assert len({e.id for e in events}) == len(events)
        assert len(stores[1].silences()) == 4 * 40
    finally:
        for s in stores:
            s.close()
