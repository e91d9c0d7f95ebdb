"""A tick's later steps cannot cost its samples, and a tick that fails is a named gap.

The live frame once raised on a command line that was not UTF-8, and the whole tick went
with it: nothing was stored, and health still said ``ok``. Now a failing alert
evaluation or live publish is logged once per streak and the snapshot is stored all
the same; a tick that fails anyway is recorded as a miss of every collector, with the
reason, which health reports.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sysmon.agent.service import Agent
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.models import Snapshot
from sysmon.storage.base import RangeQuery
from tests.collectors.fakes import FakeSource, load_ticks
from tests.support.stack import short_socket


def make_agent(tmp_path: Path, clock: FakeClock) -> Agent:
    settings = load_settings(None, database={"path": str(tmp_path / "sysmon.db")})
    agent = Agent(settings, source=FakeSource(load_ticks()[0]), clock=clock, channel=short_socket())
    agent.start(schedule=False)
    return agent


def stored_slots(agent: Agent, start: float, end: float) -> list[float]:
    result = agent.store.query(RangeQuery("memory", start, end, resolution="raw"))
    values = next(iter(result.fields.values()))
    return [ts for ts, v in zip(result.timestamps, values, strict=True) if v is not None]


def test_a_failing_live_publish_costs_no_sample_and_is_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(1_800_000_000.0)
    agent = make_agent(tmp_path, clock)
    try:

        def broken(snapshot: Snapshot) -> None:
            raise TypeError("str is not valid UTF-8: surrogates not allowed")

        monkeypatch.setattr(agent, "publish", broken)
        caplog.set_level(logging.INFO, logger="sysmon.agent")
        start = clock.time()
        for _ in range(3):
            agent.tick()
            clock.advance(1.0)
        monkeypatch.undo()  # publishing works again
        agent.tick()
        assert stored_slots(agent, start, clock.time()) == [start, start + 1, start + 2, start + 3]
        failing = [r for r in caplog.records if "live tick publishing failing" in r.message]
        assert len(failing) == 1 and failing[0].exc_info is not None
        assert failing[0].levelno == logging.ERROR  # a bug or bad data: reported (Sentry)
        assert any("live tick publishing recovered" in r.message for r in caplog.records)
        assert not agent.collection.gaps.missing_now(clock.time())
    finally:
        agent.stop()


def test_a_failed_tick_is_a_named_miss_of_every_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(1_800_000_000.0)
    agent = make_agent(tmp_path, clock)
    try:

        def broken(snapshot: Snapshot) -> None:
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(agent.writer, "submit", broken)
        with pytest.raises(RuntimeError):
            agent.tick()
        stamp = clock.time()
        report = agent.collection.gaps.report(stamp)
        assert set(report) == set(agent.collection.names)
        for name, entry in report.items():
            assert entry["missed_last_minute"] == 1, name
            assert entry["last_reason"] == "tick failed: RuntimeError: disk on fire"
        assert agent.collection.gaps.missing_now(stamp)
        assert agent.status(stamp)["missing"] is True
    finally:
        monkeypatch.undo()
        agent.stop()
