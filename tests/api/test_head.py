"""``LiveHead`` alone: frames in, raw columns out, and every case where it must refuse
(``None``) so the store answers. The head against the real store over HTTP is
``test_head_range.py``."""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

import pytest

from sysmon.api.head import LiveHead
from sysmon.api.range_head import backfill
from sysmon.serialize import to_json_bytes
from sysmon.storage.base import RawGrid

T0 = 1_800_000_000
LABELS = {"cpu": ("core",), "memory": (), "sensors": ("chip", "sensor")}


def frame(
    ticks: int,
    ts: float,
    metrics: dict[str, Any],
    *,
    interval: int = 1,
    pending: int = 0,
    error: str | None = None,
    kind: str = "tick",
) -> tuple[dict[str, Any], bytes]:
    meta = {
        "type": kind,
        "timestamp": ts,
        "interval": interval,
        "status": {
            "agent": {"ticks": ticks},
            "database": {"pending_writes": pending, "last_error": error},
        },
    }
    return meta, to_json_bytes({"timestamp": ts, "metrics": metrics})


def cpu(total: float, core0: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"cpu": {"total": {"percent": total}}}
    if core0 is not None:
        out["cpu"]["core"] = {"0": {"percent": core0}}
    return out


def grid(first: int, n: int) -> RawGrid:
    return RawGrid("raw", 1.0, float(first), n)


def feed(head: LiveHead, ticks: range, start: int = T0, every: int = 1) -> None:
    for i, tick in enumerate(ticks):
        head.on_frame(*frame(tick, start + i * every, cpu(float(tick), float(-tick))))


def values(column: list[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in column]


@pytest.fixture
def head() -> LiveHead:
    head = LiveHead(1.0, 10, LABELS)
    head.learn("cpu", (), ["percent"])
    head.learn("cpu", (("core", "0"),), ["percent"])
    return head


def test_consecutive_ticks_are_answered_with_later_slots_empty(head: LiveHead) -> None:
    feed(head, range(1, 5))
    answer = head.answer("cpu", (), grid(T0, 6))
    assert answer is not None
    assert values(answer["percent"]) == [1.0, 2.0, 3.0, 4.0, None, None]
    core = head.answer("cpu", (("core", "0"),), grid(T0 + 2, 2))
    assert core is not None and values(core["percent"]) == [-3.0, -4.0]
    assert head.covered == (float(T0), float(T0 + 3))


def test_a_window_before_the_coverage_is_the_stores(head: LiveHead) -> None:
    feed(head, range(1, 5))
    assert head.answer("cpu", (), grid(T0 - 1, 3)) is None


def test_slots_without_a_tick_are_gaps(head: LiveHead) -> None:
    for tick, ts in ((1, T0), (2, T0 + 3), (3, T0 + 4)):  # an overrun skipped two slots
        head.on_frame(*frame(tick, ts + 0.004, cpu(float(tick))))  # ms late: same slot
    answer = head.answer("cpu", (), grid(T0, 5))
    assert answer is not None and values(answer["percent"]) == [1.0, None, None, 2.0, 3.0]


def test_the_ring_keeps_only_the_window(head: LiveHead) -> None:
    feed(head, range(1, 26))  # 25 ticks through 10 slots
    assert head.covered == (float(T0 + 15), float(T0 + 24))
    answer = head.answer("cpu", (), grid(T0 + 15, 10))
    assert answer is not None and values(answer["percent"]) == [float(t) for t in range(16, 26)]
    assert head.answer("cpu", (), grid(T0 + 14, 3)) is None


@pytest.mark.parametrize(
    "breaking",
    [
        pytest.param(lambda: frame(7, T0 + 5, cpu(7.0)), id="a frame was dropped"),
        pytest.param(lambda: frame(1, T0 + 5, cpu(7.0)), id="the agent restarted"),
        pytest.param(lambda: frame(6, T0 + 3, cpu(7.0)), id="time went back"),
        pytest.param(lambda: frame(6, T0 + 5, cpu(7.0), interval=2), id="another interval"),
        pytest.param(lambda: frame(6, T0 + 5, {}, kind="hello"), id="hello"),
    ],
)
def test_anything_but_the_next_tick_restarts_the_coverage(head: LiveHead, breaking: Any) -> None:
    feed(head, range(1, 5))
    head.on_frame(*breaking())
    assert head.answer("cpu", (), grid(T0, 2)) is None
    assert head.resets == 1


def test_a_tick_of_another_interval_is_never_kept(head: LiveHead) -> None:
    for tick in range(1, 4):
        head.on_frame(*frame(tick, T0 + 2 * tick, cpu(1.0), interval=2))
    assert head.covered is None


def test_a_lagging_or_failing_writer_restarts_the_coverage(head: LiveHead) -> None:
    """Ticks the writer holds back may be stored late or dropped (a full buffer): what the
    head kept of them is dropped and the store answers until the writer keeps up, from
    when the head covers anew (and reads the store back, ``backfill``)."""
    feed(head, range(1, 3))
    epoch = head.epoch
    head.on_frame(*frame(3, T0 + 2, cpu(3.0), pending=2))
    assert head.answer("cpu", (), grid(T0, 3)) is None and head.covered is None
    head.on_frame(*frame(4, T0 + 3, cpu(4.0), error="disk full"))
    assert head.covered is None
    head.on_frame(*frame(5, T0 + 4, cpu(5.0), pending=1))  # one tick in the writer: normal
    assert head.covered == (float(T0 + 4), float(T0 + 4)) and head.epoch == epoch + 1
    assert head.started.is_set(), "a backfill is asked for"
    assert head.answer("cpu", (), grid(T0, 5)) is None  # before the new coverage
    answer = head.answer("cpu", (), grid(T0 + 4, 2))
    assert answer is not None and values(answer["percent"]) == [5.0, None]


def test_fields_are_the_stores_in_its_order() -> None:
    head = LiveHead(1.0, 10, LABELS)
    head.on_frame(*frame(1, T0, {"memory": {"total": {"used": 5, "percent": 50.0}}}))
    assert head.answer("memory", (), grid(T0, 1)) is None, "the store never answered for it"
    head.learn("memory", (), ["percent", "used", "cached"])
    answer = head.answer("memory", (), grid(T0, 1))
    assert answer is not None
    assert list(answer) == ["percent", "used", "cached"]
    assert values(answer["cached"]) == [None]  # a field the store lists and the tick lacks
    head.learn("memory", (), ["percent"])  # the tick brings a field the store did not list
    assert head.answer("memory", (), grid(T0, 1)) is None


def test_series_of_several_label_keys_are_not_kept(head: LiveHead) -> None:
    metrics = {"sensors": {"chip": {"k10temp/Tctl": {"celsius": 40.0}}}}
    head.on_frame(*frame(1, T0, metrics))
    head.learn("sensors", (("chip", "k10temp"), ("sensor", "Tctl")), ["celsius"])
    assert head.answer("sensors", (("chip", "k10temp"), ("sensor", "Tctl")), grid(T0, 1)) is None
    assert head.status()["series"] == 0


def test_a_series_gone_for_the_whole_window_is_dropped(head: LiveHead) -> None:
    head.on_frame(*frame(1, T0, cpu(1.0, 5.0)))
    for tick in range(2, 13):
        head.on_frame(*frame(tick, T0 + tick - 1, cpu(float(tick))))
    assert head.status()["series"] == 1
    answer = head.answer("cpu", (("core", "0"),), grid(T0 + 5, 3))
    assert answer is not None and values(answer["percent"]) == [None] * 3


def test_fill_copies_the_stores_slots_before_the_coverage(head: LiveHead) -> None:
    feed(head, range(1, 3), start=T0 + 5)  # covers T0+5, T0+6
    epoch = head.epoch
    stored = {"percent": [None, 0.5, None, 1.5, 2.5]}  # T0 .. T0+4 from the store
    assert head.fill(epoch, [("cpu", (), grid(T0, 5), stored)]) == 1
    assert head.covered == (float(T0), float(T0 + 6))
    answer = head.answer("cpu", (), grid(T0, 7))
    assert answer is not None
    assert values(answer["percent"]) == [None, 0.5, None, 1.5, 2.5, 1.0, 2.0]


def test_a_fill_read_for_an_older_coverage_is_dropped(head: LiveHead) -> None:
    feed(head, range(1, 3), start=T0 + 5)
    epoch = head.epoch
    head.on_frame(*frame(9, T0 + 7, cpu(9.0)))  # a dropped frame: coverage restarts
    assert head.fill(epoch, [("cpu", (), grid(T0, 5), {"percent": [1.0] * 5})]) == 0
    assert head.covered == (float(T0 + 7), float(T0 + 7))


def test_a_fill_never_reaches_past_one_lap_of_the_ring(head: LiveHead) -> None:
    feed(head, range(1, 9), start=T0 + 5)  # covers T0+5 .. T0+12 (8 of 10 slots)
    stored = {"percent": [100.0 + i for i in range(5)]}  # T0 .. T0+4
    head.fill(head.epoch, [("cpu", (), grid(T0, 5), stored)])
    assert head.covered == (float(T0 + 3), float(T0 + 12))
    answer = head.answer("cpu", (), grid(T0 + 3, 10))
    assert answer is not None
    assert values(answer["percent"]) == [103.0, 104.0, *[float(t) for t in range(1, 9)]]


def test_odd_bodies_restart_or_are_skipped(head: LiveHead) -> None:
    meta, _ = frame(1, T0, {})
    head.on_frame(meta, b"not json")
    assert head.covered is None
    head.on_frame(*frame(1, T0, {"cpu": {"total": {"percent": "high", "user": True}}}))
    head.on_frame(*frame(2, T0 + 1, {"cpu": ["a list"], "memory": {"total": 3}}))
    answer = head.answer("cpu", (), grid(T0, 2))
    assert answer is not None and values(answer["percent"]) == [None, None]


def test_the_server_keeps_a_head_only_for_its_own_sqlite_ticks(tmp_path: Any) -> None:
    from sysmon.catalog import metric_catalog
    from sysmon.collectors.registry import discover
    from sysmon.config import load_settings
    from sysmon.main import _live_head
    from sysmon.storage.sqlite.store import SQLiteStore

    def head_for(**overrides: Any) -> LiveHead | None:
        settings = load_settings(None, database={"path": str(tmp_path / "s.db")}, **overrides)
        store = SQLiteStore(tmp_path / "s.db", settings.retention, 1)
        return _live_head(settings, store, metric_catalog(discover()))

    head = head_for()
    assert head is not None and (head.step, head.slots) == (1.0, 900)
    assert head_for(api={"live_window_seconds": 0}) is None
    assert head_for(redis={"url": "redis://127.0.0.1:6379/0", "live_host": "elsewhere"}) is None
    own = head_for(redis={"url": "redis://127.0.0.1:6379/0"})  # follows this host's agent
    assert own is not None
    two = head_for(collection={"interval_seconds": 2}, api={"live_window_seconds": 60})
    assert two is not None and (two.step, two.slots) == (2.0, 30)


def test_a_backfill_drops_the_stores_answer_once_copied(head: LiveHead) -> None:
    """What the store answered (every series' window as Python lists, ~0.9 MiB at the
    default 900 slots) is not kept by the backfill loop while it waits for the next reset."""

    class Answer(list[Any]):  # a list that a weak reference can follow
        pass

    answers: list[weakref.ref[Answer]] = []
    alive_while_waiting: list[bool] = []

    class Reads:
        async def run(self, fn: Any, *args: Any) -> Answer:
            answer = Answer()
            answers.append(weakref.ref(answer))
            return answer

    class Stop(Exception):
        pass

    async def sleep(seconds: float) -> None:
        alive_while_waiting.append(answers[-1]() is not None)
        raise Stop

    feed(head, range(1, 3))
    assert head.started.is_set()
    with pytest.raises(Stop):
        asyncio.run(backfill(head, Any, Reads(), Any, sleep))  # type: ignore[arg-type]
    assert len(answers) == 1 and alive_while_waiting == [False]
