"""``agent.host`` is the one host name: the store's ``host`` label, forwarding and alert
messages all use it, and the SQLite integrity watch only runs on SQLite."""

from __future__ import annotations

from pathlib import Path

from sysmon.agent.forward import Forwarding
from sysmon.agent.service import Agent
from sysmon.alerts.notifiers.alertmanager import alert_labels
from sysmon.alerts.notifiers.base import json_payload, subject, text_body
from sysmon.alerts.service import test_notification as make_test_notification
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.storage.factory import open_store
from tests.agent.fakes import FlakyStore
from tests.support.stack import short_socket


def test_one_host_name_for_store_forward_and_alerts(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        agent={"host": "alpha"},
        forward=[{"name": "vm", "backend": "victoriametrics", "url": "http://127.0.0.1:9"}],
    )
    clock = FakeClock(1_700_000_000.0)
    store = open_store(settings, clock, readonly=False)
    assert getattr(store, "host", None) == "alpha"
    forwarding = Forwarding.from_settings(settings, clock)
    assert [getattr(f.store, "host", None) for f in forwarding.forwarders] == ["alpha"]
    agent = Agent(settings, clock=clock, store=FlakyStore(), channel=short_socket())
    assert agent.alerts.hostname == "alpha"
    assert agent.integrity is not None  # SQLite: the file is watched
    n = make_test_notification(clock.time(), agent.alerts.hostname, None)
    assert "alpha" in subject(n)
    assert "Host: alpha" in text_body(n)
    assert json_payload(n)["host"] == "alpha"
    assert alert_labels(n)["host"] == "alpha"


def test_integrity_watch_only_for_sqlite(tmp_path: Path) -> None:
    """With VictoriaMetrics as the agent's database there is no file of ours to check: no
    watch, and health shows no integrity problem about a missing file."""
    settings = load_settings(
        None,
        database={
            "path": str(tmp_path / "sysmon.db"),
            "backend": "victoriametrics",
            "url": "http://127.0.0.1:9",
        },
        agent={"host": "beta"},
    )
    clock = FakeClock(1_700_000_000.0)
    agent = Agent(
        settings, clock=clock, store=FlakyStore(), forwarding=Forwarding(), channel=short_socket()
    )
    assert agent.integrity is None
    assert agent.alerts.hostname == "beta"
    agent.start(schedule=False)
    try:
        agent.tick()
        assert agent.status(clock.time())["database"]["integrity"] is None
    finally:
        agent.stop()


def test_host_names_are_checked() -> None:
    from sysmon.errors import ConfigError

    for bad in ("", "a b", "-x", "web/1"):
        try:
            load_settings(None, agent={"host": bad})
        except ConfigError as exc:
            assert exc.key.startswith("agent.host"), exc.key
        else:
            raise AssertionError(f"agent.host {bad!r} accepted")
    assert load_settings(None, agent={"host": "web-1.example"}).agent.host_name == "web-1.example"
