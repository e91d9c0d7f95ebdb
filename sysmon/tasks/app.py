"""Building the Celery app: broker options and the delivery task.

Why these options:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged after
  its task ran, and a prefork child that dies mid-task puts it back, so a crash never
  loses a notification (the task itself makes a second run harmless, ``delivery``).
* ``visibility_timeout`` (``tasks.visibility_timeout_seconds``): with Redis there is no
  broker-side "consumer died"; a message taken by a worker that was killed outright
  (SIGKILL, OOM, power) is handed out again once it has been unacknowledged that long.
  The sweep that restores such messages runs every tenth of it (1-10 s), not the
  default 100 s, so recovery time is about the timeout itself.
* ``global_keyprefix`` ``<key_prefix>:celery:``: the broker's keys (queues, the
  unacknowledged set) are namespaced like sysmon's own, so deployments that share a
  Redis database stay apart.
* ``worker_prefetch_multiplier=1``: a worker holds one unacknowledged notification at a
  time; the others stay in the queue for a healthy worker.
* JSON only, no result backend: a task carries plain data, and nobody waits for results.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sysmon.errors import ConfigError
from sysmon.tasks.config import EXAMPLE, TasksConfig

if TYPE_CHECKING:
    from sysmon.config import Settings
    from sysmon.tasks.delivery import Deliverer


def broker_options(tasks: TasksConfig) -> dict[str, Any]:
    visibility = tasks.visibility_timeout_seconds
    return {
        "visibility_timeout": visibility,
        "unacked_restore_interval": max(1.0, min(10.0, visibility / 10)),
        "unacked_restore_throttle": 1,
        "global_keyprefix": f"{tasks.key_prefix}:celery:",
        "socket_connect_timeout": tasks.publish_timeout_seconds,
        "socket_timeout": 30.0,
    }


def build_app(
    tasks: TasksConfig,
    environ: Mapping[str, str] | None = None,
    *,
    worker: Settings | None = None,
) -> Any:
    """A Celery app on ``tasks.broker_url``; with ``worker`` (the worker's settings) the
    delivery task is registered, its notifiers built from those settings on first use."""
    from celery import Celery

    env = os.environ if environ is None else environ
    url = tasks.resolved_url(env)
    if url is None:
        raise ConfigError("tasks.broker_url", f"not set (e.g. {EXAMPLE})")
    app = Celery("sysmon", broker=url, set_as_current=False)
    app.conf.update(
        task_default_queue=tasks.queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options=broker_options(tasks),
    )
    if worker is not None:
        _register(app, worker, url, env)
    return app


def _register(app: Any, settings: Settings, url: str, env: Mapping[str, str]) -> None:
    from sysmon.tasks import TASK_NAME
    from sysmon.tasks.delivery import Retry

    holder: list[Deliverer] = []
    lock = threading.Lock()

    def deliverer() -> Deliverer:
        with lock:
            if not holder:
                holder.append(_deliverer(settings, url, env))
            return holder[0]

    def deliver(task: Any, channel: str, payload: dict[str, Any], did: str) -> str:
        request = task.request
        try:
            return deliverer().run(channel, payload, did, str(request.id), request.retries + 1)
        except Retry as retry:
            raise task.retry(countdown=retry.countdown, exc=retry.error) from None

    app.task(
        bind=True,
        name=TASK_NAME,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,  # the channel's ``retries`` bound them (``Deliverer.run``)
        ignore_result=True,
    )(deliver)


def _deliverer(settings: Settings, url: str, env: Mapping[str, str]) -> Deliverer:
    import redis

    from sysmon.alerts.config import ChannelConfig
    from sysmon.alerts.notifiers.base import Notifier
    from sysmon.alerts.service import build_notifier
    from sysmon.alerts.store import AlertStore
    from sysmon.tasks.delivery import Deliverer, DeliveryMarks

    client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    tasks = settings.tasks
    marks = DeliveryMarks(client, tasks.key_prefix, tasks.dedupe_ttl_seconds)

    def build(name: str, cfg: ChannelConfig) -> Notifier:
        return build_notifier(name, cfg, env)

    store = AlertStore(
        str(settings.database.path), create=False, url=settings.relational.resolved_url()
    )
    return Deliverer(settings.alerts, marks, build, store)
