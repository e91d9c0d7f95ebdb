"""Notification delivery through a real Celery worker (``celery -A sysmon.tasks worker
--pool=solo`` subprocesses) on the machine's Redis, to a real HTTP receiver on 127.0.0.1.

Skipped only when Redis at 127.0.0.1:6379 is unreachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.alerts.service import AlertService
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.tasks import TASK_NAME, create_app
from sysmon.tasks.delivery import CeleryDispatcher
from tests.alerts.helpers import snapshot
from tests.tasks.support import Namespace, Receiver, Worker, namespace, wait_for, write_config

HOST = "web1"


@pytest.fixture
def ns() -> Iterator[Namespace]:
    with namespace() as ns:
        yield ns


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as r:
        yield r


def test_a_firing_alert_is_delivered_by_the_worker_and_recorded_in_the_history(
    tmp_path: Path, ns: Namespace, receiver: Receiver
) -> None:
    config = write_config(tmp_path / "config.yaml", ns, tmp_path / "sysmon.db")
    settings = load_settings(config)
    hook = receiver.url("/ok/hook")
    clock = FakeClock(start=1_800_000_000.0)
    service = AlertService.from_settings(
        settings.alerts,
        str(settings.database.path),
        clock,
        None,
        HOST,
        environ={"SYSMON_TEST_HOOK_URL": hook},
        tasks=settings.tasks,
    )
    assert isinstance(service.dispatcher, CeleryDispatcher)
    worker = Worker(config, ns.name, hook, tmp_path / "worker.log")
    service.start()
    try:
        clock.advance(1)
        service.evaluate(snapshot(clock.time(), cpu=93.0))
        assert service.flush()
        assert service.dispatcher.published == 1 and service.dispatcher.fallbacks == 0
        worker.wait_ready()
        wait_for(lambda: receiver.count() == 1, 20, "one post at the receiver", worker.log)
        (arrival,) = receiver.arrivals
        assert arrival.body["rule"] == "cpu_high"
        assert arrival.body["kind"] == "firing"
        assert arrival.body["value"] == 93.0
        assert arrival.body["host"] == HOST
        assert arrival.delivery_id == f"{HOST}/e1/firing/hook"
        # The worker recorded the delivery in the agent's alert history (same database).
        end = clock.time() + 1

        def recorded() -> bool:
            entries = service.history(0, end)
            return any(d.status == "sent" for e in entries for d in e.deliveries)

        wait_for(recorded, 10, "the delivery in the alert history", worker.log)
        (entry,) = service.history(0, end)
        (delivery,) = entry.deliveries
        assert (delivery.channel, delivery.kind, delivery.attempts) == ("hook", "firing", 1)
        mark = ns.client.get(f"{ns.name}:delivery:{HOST}/e1/firing/hook")
        assert mark == b"sent"
    finally:
        service.stop()
        worker.stop()


def test_a_worker_killed_mid_delivery_leaves_the_task_to_the_next_worker_delivered_once(
    tmp_path: Path, ns: Namespace, receiver: Receiver
) -> None:
    """SIGKILL while the webhook request is in flight; a new worker takes the task over.

    The subtlety: the first worker's request *did* reach the receiver (its body was read)
    before the kill; only the answer was lost. No sender can tell "reached, answer lost"
    from "never reached", so the task must run again (else a request that never arrived
    would be lost), and the receiver gets the same message twice. What makes it "never
    lost and never twice" is the pair: at-least-once on our side (acks_late, the message
    comes back after the visibility timeout, the dead worker's claim expires) and the
    same ``X-Sysmon-Delivery-Id`` on both attempts, by which the receiver drops the
    copy. So the test asserts two arrivals carrying one id, and one delivered message.
    (A kill before the request leaves would give one arrival; the assertions on what
    was delivered hold either way.)
    """
    config = write_config(tmp_path / "config.yaml", ns, tmp_path / "sysmon.db", timeout=2.0)
    settings = load_settings(config)
    hook = receiver.url("/hold/hook")
    app = create_app(settings)
    first = Worker(config, ns.name, hook, tmp_path / "worker1.log")
    second: Worker | None = None
    payload = {
        "kind": "firing", "rule": "cpu_high", "severity": "warning", "metric": "cpu.percent",
        "operator": ">", "threshold": 80.0, "value": 97.0, "labels": {}, "since": 1.0,
        "timestamp": 2.0, "hostname": HOST, "event_id": 7,
    }  # fmt: skip
    did = f"{HOST}/e7/firing/hook"
    try:
        first.wait_ready()
        app.send_task(TASK_NAME, args=["hook", payload, did], queue=ns.name)
        wait_for(lambda: receiver.count() == 1, 20, "the first attempt arrives", first.log)
        first.kill()  # the request is held: the worker dies before any answer
        receiver.hold.clear()  # from now on the receiver answers at once
        second = Worker(config, ns.name, hook, tmp_path / "worker2.log")
        second.wait_ready()
        wait_for(lambda: receiver.count() == 2, 30, "the task re-run by worker 2", second.log)
        wait_for(
            lambda: ns.client.get(f"{ns.name}:delivery:{did}") == b"sent",
            10,
            "the sent mark",
            second.log,
        )
        assert [a.delivery_id for a in receiver.arrivals] == [did, did]
        (delivered,) = receiver.delivered()
        assert delivered.body["value"] == 97.0 and delivered.body["kind"] == "firing"

        # The same task published again (a duplicate message) is not sent a third time.
        app.send_task(TASK_NAME, args=["hook", payload, did], queue=ns.name)
        wait_for(
            lambda: "already delivered" in second.log.read_text(errors="replace"),
            10,
            "the duplicate seen by the worker",
            second.log,
        )
        assert receiver.count() == 2
    finally:
        first.stop()
        if second is not None:
            second.stop()
        app.close()
