"""Notification delivery as Celery tasks, with the machine's Redis as the broker (Level 3).

Off by default: without ``tasks.broker_url`` the agent's own threads deliver
(``sysmon.alerts.dispatcher``). With it, the agent publishes one task per message and
channel, and a worker delivers::

    SYSMON_CONFIG=config/config.yaml celery -A sysmon.tasks worker -Q sysmon --loglevel INFO

The worker reads the same configuration (and the same secret environment variables) as
the agent: channel URLs and passwords never travel through the broker, only the message.

Why only notifications, not maintenance: rollups, compaction and retention run in the
agent's writer thread *between* writes on purpose; SQLite has one writer, and a worker in
another process would contend for its lock with every tick instead of taking work off
the agent. Exports and compaction stay where the data is.

Guarantees (``sysmon.tasks.delivery`` has the details):

* at least once: ``acks_late`` + ``reject_on_worker_lost`` and a Redis visibility
  timeout (``tasks.visibility_timeout_seconds``), so a worker killed mid-task leaves the
  message to be run again by another worker;
* not twice, except in one window: a delivery id (alert event + transition + channel) is
  marked "sent" in Redis (``SET``) right after the channel accepted it, and every run
  checks the mark first. A worker that dies *between* the channel's answer and the mark
  makes its successor send again, with the same ``X-Sysmon-Delivery-Id`` header, so a
  webhook receiver can drop the copy. An external send and a Redis write cannot be one
  atomic step; this is the smallest window there is.

``create_app(settings)`` builds an app (the agent's, the tests'). ``celery -A sysmon.tasks``
finds ``app`` here: it is built on first access from ``$SYSMON_CONFIG`` (importing this
package does no work and opens no connection).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sysmon.config import Settings

TASK_NAME = "sysmon.deliver_notification"

__all__ = ["TASK_NAME", "create_app"]


def create_app(settings: Settings, environ: dict[str, str] | None = None) -> Any:
    """A Celery app for ``settings.tasks`` with the delivery task registered.

    ``environ`` (default ``os.environ``) supplies the broker password and, in the worker,
    the channel secrets."""
    from sysmon.tasks.app import build_app

    return build_app(settings.tasks, environ, worker=settings)


@functools.cache
def _cli_app() -> Any:
    """The app ``celery -A sysmon.tasks`` runs: built once, from the environment's config."""
    from sysmon.config import config_path_from_env, load_settings

    return create_app(load_settings(config_path_from_env()))


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        return _cli_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
