"""The worker's delivery logic (marks, claims, retries) against the machine's Redis, the
agent's fallback when the broker does not take a task, and the ``tasks:`` settings.

The notifier here records calls (the HTTP path is covered end to end in test_worker.py);
Redis is real, in a namespace of the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysmon.alerts.config import AlertsConfig, ChannelConfig
from sysmon.alerts.dispatcher import ChannelPolicy, ChannelWorker, Dispatcher
from sysmon.alerts.notifiers.base import DeliveryError, Notification, Notifier, delivery_id
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.errors import ConfigError
from sysmon.tasks.config import TasksConfig
from sysmon.tasks.delivery import (
    CeleryDispatcher,
    Deliverer,
    DeliveryMarks,
    Retry,
    notification_from_payload,
    notification_payload,
)
from tests.alerts.receivers import wait_for
from tests.tasks.support import Namespace, namespace


def note(**extra: Any) -> Notification:
    base: dict[str, Any] = {
        "kind": "firing", "rule": "disk_high", "severity": "critical",
        "metric": "disk.percent", "operator": ">", "threshold": 90.0, "value": 95.5,
        "labels": {"mount": "/"}, "since": 100.0, "timestamp": 160.0, "hostname": "web1",
        "event_id": 3,
    }  # fmt: skip
    base.update(extra)
    return Notification(**base)


class Recording:
    """A notifier that records messages and fails the first ``failures`` sends."""

    def __init__(self, name: str, failures: int = 0, retryable: bool = True) -> None:
        self.name = name
        self.sent: list[Notification] = []
        self.calls = 0
        self._failures = failures
        self._retryable = retryable

    def send(self, notification: Notification) -> None:
        self.calls += 1
        if self.calls <= self._failures:
            raise DeliveryError("HTTP 503", retryable=self._retryable, status=503)
        self.sent.append(notification)

    def close(self) -> None:
        return None


@pytest.fixture
def ns() -> Iterator[Namespace]:
    with namespace() as ns:
        yield ns


def alerts(retries: int = 2) -> AlertsConfig:
    return AlertsConfig.model_validate(
        {
            "channels": {
                "hook": {
                    "type": "webhook",
                    "url_env": "X",
                    "timeout_seconds": 1,
                    "retries": retries,
                    "backoff_seconds": 0.5,
                }
            }
        }
    )


def deliverer(
    ns: Namespace, notifier: Recording, retries: int = 2, **kw: Any
) -> tuple[Deliverer, DeliveryMarks]:
    marks = DeliveryMarks(ns.client, ns.name, 3600)

    def build(name: str, cfg: ChannelConfig) -> Notifier:
        return notifier

    return Deliverer(alerts(retries), marks, build, None, **kw), marks


def test_payload_round_trips_and_the_delivery_id_names_event_transition_and_channel() -> None:
    n = note()
    assert notification_from_payload(notification_payload(n)) == n
    assert delivery_id(n, "hook") == "web1/e3/firing/hook"
    assert delivery_id(note(kind="resolved"), "hook") == "web1/e3/resolved/hook"
    # Repeats of one firing event are distinct messages; the same repeat is one.
    assert delivery_id(note(kind="repeat"), "hook") == "web1/e3/repeat@160.000/hook"
    assert delivery_id(note(kind="repeat", timestamp=3760.0), "hook") != delivery_id(
        note(kind="repeat"), "hook"
    )
    # No stored event (alert store failing): the series and its start stand in.
    unstored = delivery_id(note(event_id=None), "hook")
    assert unstored == delivery_id(note(event_id=None, value=99.0), "hook")
    assert unstored != delivery_id(note(event_id=None, labels={"mount": "/var"}), "hook")


def test_a_second_run_of_a_delivered_message_sends_nothing(ns: Namespace) -> None:
    notifier = Recording("hook")
    d, marks = deliverer(ns, notifier)
    payload = notification_payload(note())
    assert d.run("hook", payload, "id-1", "task-a", 1) == "sent"
    assert marks.delivered("id-1")
    assert ns.client.ttl(marks.key("id-1")) > 3500
    assert d.run("hook", payload, "id-1", "task-b", 1) == "duplicate"
    assert notifier.calls == 1
    assert ns.client.get(marks.key("id-1") + ":claim") is None  # claim dropped after the mark


def test_retryable_failures_retry_with_doubling_backoff_then_give_up(ns: Namespace) -> None:
    notifier = Recording("hook", failures=10)
    d, marks = deliverer(ns, notifier, retries=2)
    payload = notification_payload(note())
    countdowns = []
    for attempt in (1, 2):
        with pytest.raises(Retry) as retry:
            d.run("hook", payload, "id-2", f"task-{attempt}", attempt)
        countdowns.append(retry.value.countdown)
        assert ns.client.get(marks.key("id-2") + ":claim") is None  # the next run may claim
    assert countdowns == [0.5, 1.0]
    assert d.run("hook", payload, "id-2", "task-3", 3) == "failed"
    assert notifier.calls == 3 and not marks.delivered("id-2")


def test_a_4xx_is_not_retried(ns: Namespace) -> None:
    notifier = Recording("hook", failures=1, retryable=False)
    d, _ = deliverer(ns, notifier)
    assert d.run("hook", notification_payload(note()), "id-3", "t", 1) == "failed"
    assert notifier.calls == 1


def test_a_run_waits_for_another_runs_claim_and_then_sees_its_mark(ns: Namespace) -> None:
    """Two runs of one message at once (a redelivery overtaking a slow run): the second
    waits while the first holds the claim, then finds the message delivered."""
    notifier = Recording("hook")
    sleeps: list[float] = []
    marks_ref: list[DeliveryMarks] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:  # the first run finishes while we wait
            marks_ref[0].mark_sent("id-4")

    d, marks = deliverer(ns, notifier, sleep=sleep)
    marks_ref.append(marks)
    assert marks.claim("id-4", "other-task", 30)
    assert d.run("hook", notification_payload(note()), "id-4", "mine", 1) == "duplicate"
    assert len(sleeps) == 3 and notifier.calls == 0


def test_a_dead_runs_claim_expires_and_the_message_is_sent(ns: Namespace) -> None:
    notifier = Recording("hook")
    d, marks = deliverer(ns, notifier, sleep=lambda s: None)
    assert marks.claim("id-5", "dead-worker", 0.3)  # as a killed worker would leave it
    ns.client.delete(marks.key("id-5") + ":claim")  # ... and expired (Redis's PX)
    assert d.run("hook", notification_payload(note()), "id-5", "mine", 1) == "sent"
    assert notifier.calls == 1


def test_an_unknown_channel_fails_without_retries(ns: Namespace) -> None:
    d, _ = deliverer(ns, Recording("hook"))
    assert d.run("pager", notification_payload(note()), "id-6", "t", 1) == "failed"


def test_the_agent_delivers_itself_when_the_broker_does_not_take_the_task() -> None:
    notifier = Recording("hook")
    worker = ChannelWorker(notifier, ChannelPolicy(0, 0.01, 10), FakeClock(start=1.0))
    local = Dispatcher({"hook": worker})
    published: list[tuple[str, str]] = []
    broker_up = True

    def publish(channel: str, payload: dict[str, Any], did: str) -> None:
        if not broker_up:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")
        published.append((channel, did))

    dispatcher = CeleryDispatcher(local, publish, close=lambda: None)
    dispatcher.start()
    try:
        dispatcher.submit(note(), ["hook", "unknown"])
        assert published == [("hook", "web1/e3/firing/hook")] and notifier.calls == 0
        broker_up = False
        dispatcher.submit(note(kind="resolved"), ["hook"])
        assert wait_for(lambda: bool(notifier.sent))
        assert [n.kind for n in notifier.sent] == ["resolved"]
        assert (dispatcher.published, dispatcher.fallbacks) == (1, 1)
    finally:
        dispatcher.stop(1)


def test_tasks_settings(tmp_path: Path) -> None:
    assert not TasksConfig().enabled
    cfg = TasksConfig(broker_url="redis://127.0.0.1:6379/2")
    assert cfg.resolved_url({}) == "redis://127.0.0.1:6379/2"
    assert cfg.resolved_url({"SYSMON_TASKS_PASSWORD": "s3cr/t"}) == (
        "redis://:s3cr%2Ft@127.0.0.1:6379/2"
    )
    assert "s3cr" not in repr(TasksConfig(broker_url="redis://:s3cr@h:6379/2"))
    with pytest.raises(ValueError, match="scheme 'amqp' is not supported"):
        TasksConfig(broker_url="amqp://guest@localhost//")
    config = tmp_path / "c.yaml"
    config.write_text("tasks:\n  broker_url: redis://:hunter2@127.0.0.1:6379/2\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert err.value.key == "tasks.broker_url" and "hunter2" not in str(err.value)
    config.write_text("tasks:\n  broker_url: redis://127.0.0.1:6379/2\n  queue: alerts\n")
    settings = load_settings(config)
    assert settings.tasks.enabled and settings.tasks.queue == "alerts"
