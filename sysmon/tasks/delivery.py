"""One notification to one channel as a Celery task, delivered at least once and marked.

The worker side (``Deliverer.run``), for each run of a task:

1. ``<prefix>:delivery:<id>`` says ``sent``: a previous run delivered it; done.
2. Claim the id (``SET <key>:claim <task id> NX PX``, a few channel timeouts long). A
   claim held by someone else means another run is sending right now (a redelivery that
   overtook a slow run): wait for it to finish or for its claim to expire (its worker
   died), then look at the mark again.
3. Send through the channel's notifier (the same code the agent's threads use).
4. Success: ``SET <key> sent EX dedupe_ttl`` and drop the claim; record the delivery in
   the alert history. A retryable failure: drop the claim and ``retry`` with the
   channel's backoff, at most ``retries`` times; the last failure is recorded too.

The window that remains: a worker killed after the channel accepted the message and
before step 4's ``SET`` leaves no mark, so the next run sends again. That is why every
webhook post carries ``X-Sysmon-Delivery-Id``: a receiver that keeps the ids it has seen
turns our at-least-once into exactly-once. Slack and e-mail cannot dedupe; there a
worker death in that window (milliseconds) means one duplicate message.

The agent side (``CeleryDispatcher``) publishes with a bounded retry; a broker that does
not take the task within ``tasks.publish_timeout_seconds`` makes the agent deliver that
notification itself (``Dispatcher``, in-process): a Redis outage must not silence alerts.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

from sysmon.alerts.config import AlertsConfig, ChannelConfig
from sysmon.alerts.dispatcher import Dispatcher
from sysmon.alerts.notifiers.base import DeliveryError, Notification, Notifier, delivery_id
from sysmon.alerts.store import AlertStore, Delivery
from sysmon.errors import StorageError
from sysmon.tasks.config import TasksConfig

log = logging.getLogger(__name__)

SENT = "sent"
CLAIM_MARGIN_SECONDS = 2.0


def notification_payload(n: Notification) -> dict[str, Any]:
    """The JSON-able message a task carries (no secrets: those stay with the worker)."""
    return asdict(n)


def notification_from_payload(payload: Mapping[str, Any]) -> Notification:
    data = dict(payload)
    data["labels"] = dict(data.get("labels") or {})
    data["extra"] = dict(data.get("extra") or {})
    return Notification(**data)


def claim_seconds(channel: ChannelConfig) -> float:
    """How long one send may hold the claim: httpx bounds connect, write and read each by
    the timeout, so three timeouts plus a margin (a dead worker's claim expires after it)."""
    return channel.timeout_seconds * 3 + CLAIM_MARGIN_SECONDS


class RedisLike(Protocol):
    def get(self, name: str) -> Any: ...

    def set(
        self,
        name: str,
        value: str,
        *,
        ex: int | None = None,
        px: int | None = None,
        nx: bool = False,
    ) -> Any: ...

    def delete(self, *names: str) -> Any: ...

    def close(self) -> None: ...


class DeliveryMarks:
    """The ``sent`` marks and send claims of delivery ids, in the broker's Redis."""

    def __init__(self, client: RedisLike, prefix: str, ttl_seconds: float) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl = max(1, round(ttl_seconds))

    def key(self, did: str) -> str:
        return f"{self._prefix}:delivery:{did}"

    def delivered(self, did: str) -> bool:
        value = self._client.get(self.key(did))
        return value is not None and _text(value) == SENT

    def claim(self, did: str, owner: str, seconds: float) -> bool:
        return bool(
            self._client.set(self.key(did) + ":claim", owner, px=round(seconds * 1000), nx=True)
        )

    def claim_owner(self, did: str) -> str | None:
        value = self._client.get(self.key(did) + ":claim")
        return None if value is None else _text(value)

    def release(self, did: str, owner: str) -> None:
        if self.claim_owner(did) == owner:
            self._client.delete(self.key(did) + ":claim")

    def mark_sent(self, did: str) -> None:
        self._client.set(self.key(did), SENT, ex=self._ttl)
        self._client.delete(self.key(did) + ":claim")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Retry(Exception):
    """Raised by ``Deliverer.run``: try again after ``countdown`` seconds."""

    def __init__(self, countdown: float, error: DeliveryError) -> None:
        super().__init__(str(error))
        self.countdown = countdown
        self.error = error


class Deliverer:
    """The worker's state: notifiers, marks and the alert history, built on first use.

    One per worker process. Notifiers are built from the worker's own configuration (the
    secrets are resolved from its environment, as in the agent); a channel the worker
    does not know (configurations out of step) fails the task without retries.
    """

    def __init__(
        self,
        alerts: AlertsConfig,
        marks: DeliveryMarks,
        build_notifier: Callable[[str, ChannelConfig], Notifier],
        store: AlertStore | None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._alerts = alerts
        self._marks = marks
        self._build = build_notifier
        self._store = store
        self._notifiers: dict[str, Notifier] = {}
        self._lock = threading.Lock()
        self._sleep = sleep
        self._monotonic = monotonic
        self._wall = wall

    def _notifier(self, channel: str, cfg: ChannelConfig) -> Notifier:
        with self._lock:
            notifier = self._notifiers.get(channel)
            if notifier is None:
                notifier = self._notifiers[channel] = self._build(channel, cfg)
            return notifier

    def run(
        self, channel: str, payload: Mapping[str, Any], did: str, task_id: str, attempt: int
    ) -> str:
        """One run of a task; returns ``sent``, ``duplicate`` or ``failed``, or raises
        ``Retry``. ``attempt`` counts from 1 (Celery's ``request.retries + 1``)."""
        n = notification_from_payload(payload)
        cfg = self._alerts.channels.get(channel)
        if cfg is None or not cfg.enabled:
            log.error("notification task for an unknown or disabled channel=%s dropped", channel)
            return "failed"
        if not self._wait_for_claim(did, task_id, claim_seconds(cfg)):
            log.info(
                "notification already delivered, not sent again channel=%s id=%s", channel, did
            )
            return "duplicate"
        try:
            self._notifier(channel, cfg).send(n)
        except Exception as exc:
            error = exc if isinstance(exc, DeliveryError) else DeliveryError(type(exc).__name__)
            self._marks.release(did, task_id)
            if error.retryable and attempt <= cfg.retries:
                countdown = cfg.backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "notification attempt failed, retrying channel=%s kind=%s rule=%s "
                    "attempt=%d status=%s error=%s retry_in_s=%.2f",
                    channel, n.kind, n.rule, attempt, error.status, error, countdown,
                )  # fmt: skip
                raise Retry(countdown, error) from None
            log.error(
                "notification failed, giving up channel=%s kind=%s rule=%s attempts=%d "
                "status=%s error=%s",
                channel, n.kind, n.rule, attempt, error.status, error,
            )  # fmt: skip
            self._record(n, channel, "failed", attempt, str(error))
            return "failed"
        self._marks.mark_sent(did)
        log.info(
            "notification sent channel=%s kind=%s rule=%s attempts=%d id=%s",
            channel, n.kind, n.rule, attempt, did,
        )  # fmt: skip
        self._record(n, channel, "sent", attempt, None)
        return "sent"

    def _wait_for_claim(self, did: str, task_id: str, seconds: float) -> bool:
        """Claim ``did`` for this run; False when it turns out delivered already."""
        deadline = self._monotonic() + seconds + 1.0
        while True:
            if self._marks.delivered(did):
                return False
            if self._marks.claim(did, task_id, seconds) or self._marks.claim_owner(did) == task_id:
                return True
            if self._monotonic() >= deadline:
                # The holder outlived its own bound: take over rather than wait forever.
                log.warning("taking over a stale delivery claim id=%s", did)
                self._marks.release(did, self._marks.claim_owner(did) or "")
                continue
            self._sleep(0.2)

    def _record(
        self, n: Notification, channel: str, status: str, attempts: int, error: str | None
    ) -> None:
        if self._store is None or n.event_id is None or n.kind == "test":
            return
        try:
            self._store.add_delivery(
                Delivery(n.event_id, self._wall(), channel, n.kind, status, attempts, error)
            )
        except StorageError as exc:  # history is best effort; the message went out
            log.warning("cannot record alert delivery channel=%s error=%s", channel, exc)

    def close(self) -> None:
        with self._lock:
            for notifier in self._notifiers.values():
                notifier.close()
            self._notifiers.clear()
        if self._store is not None:
            self._store.close()


Publish = Callable[[str, dict[str, Any], str], None]
"""(channel, payload, delivery id): hand one task to the broker or raise."""


class CeleryDispatcher(Dispatcher):
    """The agent's ``Dispatcher`` when ``tasks.broker_url`` is set.

    ``submit`` publishes one task per channel; the in-process dispatcher ``local`` stays
    for the test message (``POST /alerts/test`` waits for its answer, which a queue
    cannot give without a result backend) and for any message the broker did not take.
    """

    def __init__(self, local: Dispatcher, publish: Publish, close: Callable[[], None]) -> None:
        super().__init__({})
        self._local = local
        self._publish = publish
        self._close = close
        self.published = 0
        self.fallbacks = 0

    @property
    def channels(self) -> list[str]:
        return self._local.channels

    def start(self) -> None:
        self._local.start()

    def submit(self, notification: Notification, channels: tuple[str, ...] | list[str]) -> None:
        known = set(self._local.channels)
        payload = notification_payload(notification)
        for channel in channels:
            if channel not in known:
                continue
            did = delivery_id(notification, channel)
            try:
                self._publish(channel, payload, did)
            except Exception as exc:  # broker down, timeout: deliver it ourselves
                self.fallbacks += 1
                log.error(
                    "cannot queue notification, delivering in-process channel=%s kind=%s "
                    "rule=%s error=%s",
                    channel, notification.kind, notification.rule, f"{type(exc).__name__}: {exc}",
                )  # fmt: skip
                self._local.submit(notification, [channel])
            else:
                self.published += 1

    def submit_one(
        self, channel: str, notification: Notification, *, retries: int | None = None
    ) -> Any:
        return self._local.submit_one(channel, notification, retries=retries)

    def pending(self) -> dict[str, int]:
        return self._local.pending()

    def stop(self, timeout: float = 5.0) -> None:
        self._local.stop(timeout)
        self._close()


def celery_dispatcher(
    tasks: TasksConfig, local: Dispatcher, environ: Mapping[str, str] | None = None
) -> CeleryDispatcher:
    """Wrap the agent's in-process ``local`` dispatcher so alerts go out through Celery."""
    from sysmon.tasks import TASK_NAME
    from sysmon.tasks.app import build_app

    env = dict(os.environ if environ is None else environ)
    app = build_app(tasks, env)
    policy = {
        "max_retries": 2,
        "interval_start": 0,
        "interval_step": tasks.publish_timeout_seconds / 3,
        "interval_max": tasks.publish_timeout_seconds / 3,
    }

    def publish(channel: str, payload: dict[str, Any], did: str) -> None:
        app.send_task(
            TASK_NAME,
            args=[channel, payload, did],
            queue=tasks.queue,
            retry=True,
            retry_policy=policy,
        )

    def close() -> None:
        app.close()

    return CeleryDispatcher(local, publish, close)
