"""The Alertmanager channel against Debian's real ``prometheus-alertmanager``: alerts
fired and resolved by sysmon's engine and dispatcher, read back from Alertmanager's API
and from the notifications Alertmanager itself routes to a webhook receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sysmon.alerts.config import AlertmanagerChannelConfig
from sysmon.alerts.notifiers.alertmanager import (
    AlertmanagerNotifier,
    alert_payload,
    alerts_url,
    rfc3339,
)
from sysmon.alerts.notifiers.base import DeliveryError, Notification
from sysmon.alerts.service import AlertService
from sysmon.clock import FakeClock
from tests.alerts.helpers import DASHBOARD, HOST, Ticker, alerts_config, make_service
from tests.alerts.receivers import HttpReceiver, wait_for
from tests.support.alertmanager import Alertmanager, alertmanager, webhook_config

RULE = {
    "name": "disk_high",
    "metric": "disk.percent",
    "threshold": 85,
    "severity": "critical",
    "selector": {"mount": "any"},
    "recovery_for": "0s",
    "labels": {"team": "ops", "runbook-id": "disk-1"},
    "description": "Disk usage above 85 % on a mount",
}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def am(tmp_path: Path, http: HttpReceiver) -> Iterator[Alertmanager]:
    with alertmanager(tmp_path, webhook_config(http.url("/ok/am"))) as server:
        yield server


def _service(tmp_path: Path, clock: FakeClock, am: Alertmanager, **channel: Any) -> AlertService:
    config = alerts_config(
        rules=[RULE],
        channels={
            "am": {
                "type": "alertmanager",
                "url_env": "AM_URL",
                "timeout_seconds": 5,
                "backoff_seconds": 0.01,
                "labels": {"env": "test"},
                **channel,
            }
        },
    )
    return make_service(config, str(tmp_path / "a.db"), clock, {"AM_URL": am.base_url + "/"})


def _routed(http: HttpReceiver, status: str) -> list[dict[str, Any]]:
    """Alerts Alertmanager delivered to its webhook receiver with ``status``."""
    return [a for body in http.bodies("/ok/am") for a in body["alerts"] if a["status"] == status]


def test_fire_and_resolve_through_a_real_alertmanager(
    tmp_path: Path, am: Alertmanager, http: HttpReceiver
) -> None:
    # The wall clock starts a moment in the past: the resolve's endsAt must not be in
    # Alertmanager's future, or it would still count the alert as active.
    clock = FakeClock(start=time.time() - 2)
    service = _service(tmp_path, clock, am, resend_interval="1s")
    ticker = Ticker(service, clock)
    try:
        ticker.tick(mounts={"/var": 93.5})
        fired_at = clock.time()
        assert wait_for(lambda: len(am.alerts()) == 1)
        (alert,) = am.alerts()
        assert alert["labels"] == {
            "alertname": "disk_high",
            "severity": "critical",
            "host": HOST,
            "rule": "disk_high",
            "metric": "disk.percent",
            "mount": "/var",
            "team": "ops",
            "runbook_id": "disk-1",  # made a valid label name
            "env": "test",
        }
        assert alert["annotations"] == {
            "summary": "[FIRING] disk_high on web1 (mount=/var): disk.percent 93.5 > 85.0",
            "description": "Disk usage above 85 % on a mount",
            "value": "93.5",
            "threshold": "> 85",
        }
        assert alert["status"]["state"] == "active"
        assert alert["generatorURL"] == DASHBOARD
        assert _epoch(alert["startsAt"]) == pytest.approx(fired_at, abs=0.01)
        assert _epoch(alert["endsAt"]) == pytest.approx(fired_at + 4, abs=0.01)  # 4 x resend

        # Alertmanager routed it: its own webhook notification carries our alert.
        assert wait_for(lambda: len(_routed(http, "firing")) >= 1)
        assert _routed(http, "firing")[0]["labels"]["mount"] == "/var"

        # The resender renews endsAt while the alert fires (Prometheus' behaviour).
        first_end = _epoch(alert["endsAt"])
        assert wait_for(lambda: _epoch(am.alerts()[0]["endsAt"]) > first_end + 0.5, 4)

        ticker.tick(mounts={"/var": 40.0})
        resolved_at = clock.time()
        assert wait_for(lambda: am.alerts() == [])
        assert wait_for(lambda: len(_routed(http, "resolved")) == 1)
        (resolved,) = _routed(http, "resolved")
        assert resolved["labels"]["alertname"] == "disk_high"
        assert _epoch(resolved["endsAt"]) == pytest.approx(resolved_at, abs=0.01)
        # The delivery history records both posts as sent.
        events = service.history(0, clock.time() + 1)
        assert wait_for(lambda: all(e.deliveries for e in service.history(0, clock.time() + 1)))
        kinds = {
            (e.event.kind, d.channel, d.status)
            for e in service.history(0, clock.time() + 1)
            for d in e.deliveries
        }
        assert kinds == {("firing", "am", "sent"), ("resolved", "am", "sent")}
        assert len(events) == 2
    finally:
        service.stop()


def test_a_restart_keeps_renewing_the_alerts_it_announced(tmp_path: Path, am: Alertmanager) -> None:
    """The firing alert is restored, not announced again, yet Alertmanager must keep
    hearing about it, or it would expire there until the next repeat (hours)."""
    clock = FakeClock(start=time.time() - 1)
    first = _service(tmp_path, clock, am, resend_interval="1s")
    try:
        Ticker(first, clock).tick(mounts={"/var": 93.5})
        assert wait_for(lambda: len(am.alerts()) == 1)
    finally:
        first.stop()
    before = _epoch(am.alerts()[0]["endsAt"])
    second = _service(tmp_path, clock, am, resend_interval="1s")
    try:
        assert wait_for(lambda: _epoch(am.alerts()[0]["endsAt"]) > before + 0.5, 4)
        (alert,) = am.alerts()
        assert alert["labels"]["mount"] == "/var" and alert["labels"]["team"] == "ops"
        assert alert["annotations"]["description"] == "Disk usage above 85 % on a mount"
        assert [e.event.kind for e in second.history(0, clock.time() + 1)] == ["firing"]
    finally:
        second.stop()


def test_test_message_reaches_alertmanager(
    tmp_path: Path, am: Alertmanager, http: HttpReceiver
) -> None:
    clock = FakeClock(start=time.time())
    service = _service(tmp_path, clock, am)
    try:
        service.send_test("am")
        (alert,) = am.alerts()
        assert alert["labels"] == {
            "alertname": "sysmon_test",
            "severity": "info",
            "host": HOST,
            "env": "test",
        }
        assert alert["annotations"]["summary"] == "[TEST] sysmon test notification from web1"
        assert wait_for(lambda: len(_routed(http, "firing")) == 1)
    finally:
        service.stop()


def test_alertmanager_refusal_is_not_retried(tmp_path: Path, am: Alertmanager) -> None:
    """A 400 (an alert Alertmanager will never accept) is a permanent failure."""
    cfg = AlertmanagerChannelConfig.model_validate({"type": "alertmanager", "url_env": "X"})
    notifier = AlertmanagerNotifier("am", am.base_url, cfg)
    try:
        bad = _note(kind="resolved", since=time.time(), timestamp=time.time() - 3600)  # ends first
        with pytest.raises(DeliveryError) as info:
            notifier.send(bad)
        assert info.value.status == 400 and info.value.retryable is False
    finally:
        notifier.close()


def _note(**over: Any) -> Notification:
    data: dict[str, Any] = {
        "kind": "firing",
        "rule": "cpu_high",
        "severity": "warning",
        "metric": "cpu.percent",
        "operator": ">",
        "threshold": 80.0,
        "value": 97.0,
        "labels": {},
        "since": 1_800_000_000.0,
        "timestamp": 1_800_000_300.0,
        "hostname": HOST,
        "dashboard_url": None,
    }
    data.update(over)
    return Notification(**data)


def test_payload_without_dashboard_or_description() -> None:
    payload = alert_payload(_note(), ttl_seconds=240)
    assert payload == {
        "labels": {
            "alertname": "cpu_high",
            "severity": "warning",
            "host": HOST,
            "rule": "cpu_high",
            "metric": "cpu.percent",
        },
        "annotations": {
            "summary": "[FIRING] cpu_high on web1: cpu.percent 97.0 > 80.0",
            "description": "Status: FIRING; Host: web1; Rule: cpu_high; Severity: warning; "
            "Metric: cpu.percent; Value: 97.0; Threshold: > 80.0; "
            "Since: 2027-01-15 08:00:00 UTC; Duration: 5m",
            "value": "97",
            "threshold": "> 80",
        },
        "startsAt": "2027-01-15T08:00:00.000Z",
        "endsAt": "2027-01-15T08:09:00.000Z",
    }


def test_rule_labels_cannot_override_the_identity() -> None:
    payload = alert_payload(_note(extra={"alertname": "x", "9lives": "y", "empty": ""}), 60)
    labels = payload["labels"]
    assert isinstance(labels, dict)
    assert labels["alertname"] == "cpu_high"
    assert labels["_9lives"] == "y"
    assert "empty" not in labels


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("http://am:9093", "http://am:9093/api/v2/alerts"),
        ("http://am:9093/", "http://am:9093/api/v2/alerts"),
        ("https://h/am/api/v2/alerts", "https://h/am/api/v2/alerts"),
    ],
)
def test_alerts_url(base: str, url: str) -> None:
    assert alerts_url(base) == url


def test_rfc3339() -> None:
    assert rfc3339(1_800_000_000.25) == "2027-01-15T08:00:00.250Z"
