"""A reload applies rules, channels and collector options between two ticks; unchanged
collectors keep their instance (and rate baselines); a bad configuration changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sysmon.agent.reload import plan_reload
from sysmon.agent.service import Agent
from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.errors import ConfigError
from tests.collectors.fakes import FakeSource, load_ticks
from tests.support.stack import short_socket

RULE_A = {"name": "mem_a", "metric": "memory.percent", "threshold": 0}
RULE_B = {"name": "mem_b", "metric": "memory.percent", "threshold": 0, "severity": "critical"}


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return load_settings(None, database={"path": str(tmp_path / "sysmon.db")}, **overrides)


def test_reload_swaps_rules_and_changed_collectors_only(tmp_path: Path) -> None:
    clock = FakeClock()
    ticks = load_ticks()
    source = FakeSource(ticks[0])
    agent = Agent(
        settings(tmp_path, alerts={"rules": [RULE_A]}),
        source=source,
        clock=clock,
        channel=short_socket(),
    )
    agent.start(schedule=False)
    try:
        agent.tick()
        clock.advance(1)
        source.set_state(ticks[1])
        cpu_before = agent.collection._slots["cpu"].collector
        new = settings(
            tmp_path,
            alerts={"rules": [RULE_A, RULE_B]},
            collectors={"processes": {"top_n": 5}, "network": {"enabled": False}},
        )
        plan = agent.reload(new)
        assert plan.alerts_changed
        assert plan.collectors_rebuilt == ("processes",)
        assert plan.collectors_removed == ("network",)
        assert plan.needs_restart == ()
        snapshot = agent.tick()
        assert snapshot.errors == {}
        assert "network" not in snapshot.results
        assert agent.collection._slots["cpu"].collector is cpu_before, "kept its baselines"
        # The CPU rate survives the reload: no first-sample gap for unchanged collectors.
        assert any(s.field == "percent" for s in snapshot.results["cpu"].samples)
        assert {a.rule for a in agent.alerts.active()} == {"mem_a", "mem_b"}
        assert agent.status(clock.time())["config_generation"] == 1
    finally:
        agent.stop()


def test_a_bad_configuration_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    agent = Agent(
        settings(tmp_path, alerts={"rules": [RULE_A]}),
        source=FakeSource(load_ticks()[0]),
        clock=FakeClock(),
        channel=short_socket(),
    )
    agent.start(schedule=False)
    try:
        bad = settings(tmp_path, collectors={"processes": {"top_n": -1}})
        with pytest.raises(ConfigError, match=r"collectors\.processes\.top_n"):
            agent.reload(bad)
        assert agent.config_generation == 0
        assert [r.config.name for r in agent.alerts.rules] == ["mem_a"]
        assert agent.tick().errors == {}
    finally:
        agent.stop()


def test_keys_that_need_a_restart_are_named(tmp_path: Path) -> None:
    old = settings(tmp_path)
    new = settings(tmp_path, collection={"interval_seconds": 5})
    plan = plan_reload(old, new, {"cpu"}, {"cpu"})
    assert plan.needs_restart == ("collection.interval_seconds",)
    assert plan.deadline_changed  # the agent keeps the old deadline until the restart


def test_a_forwarding_change_needs_a_restart(tmp_path: Path) -> None:
    old = settings(tmp_path)
    remote = {"name": "vm", "backend": "victoriametrics", "url": "http://127.0.0.1:8428"}
    new = settings(tmp_path, forward=[remote])
    assert plan_reload(old, new, {"cpu"}, {"cpu"}).needs_restart == ("forward",)
