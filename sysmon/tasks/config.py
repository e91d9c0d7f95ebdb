"""The ``tasks:`` section: notification delivery as Celery tasks (Level 3).

::

    tasks:
      broker_url: redis://127.0.0.1:6379/2     # no password here; null = in-process delivery
      password_env: SYSMON_TASKS_PASSWORD      # the broker's password, if it needs one
      queue: sysmon                            # the queue the worker consumes (-Q)
      key_prefix: sysmon                       # dedupe keys <prefix>:delivery:<id>
      visibility_timeout_seconds: 300          # a killed worker's task is re-run after this
      dedupe_ttl_seconds: 604800               # how long a "sent" mark is kept

Why a separate Redis database from ``redis.url``: a broker keeps its queues and its
unacknowledged messages in keys of its own, and ``FLUSHDB`` on the rate-limit database
(a tempting reset) must not drop queued alerts.

The password is never read from the config file (it is copied, committed and pasted into
bug reports): a ``broker_url`` with a password in the file is refused. It comes from the
variable named by ``password_env``, or the whole URL from ``SYSMON_TASKS__BROKER_URL``.

This module imports nothing but pydantic: loading the settings does not import Celery.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sysmon.errors import ConfigError

EXAMPLE = "redis://127.0.0.1:6379/2"


class TasksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker_url: str | None = Field(
        default=None,
        repr=False,  # may hold a password when it comes from the environment
        description=f"Celery broker ({EXAMPLE}, no password; rediss:// for TLS). Default: "
        "none, notifications are delivered by threads of the agent itself",
    )
    password_env: str | None = Field(
        default="SYSMON_TASKS_PASSWORD",
        description="Environment variable holding the broker's password (if it needs one)",
    )
    queue: str = Field(
        default="sysmon",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Queue the agent publishes to and the worker consumes (celery worker -Q)",
    )
    key_prefix: str = Field(
        default="sysmon",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of the delivery marks (<prefix>:delivery:<id>) in the broker's Redis",
    )
    visibility_timeout_seconds: float = Field(
        default=300.0,
        ge=1.0,
        le=86_400.0,
        description="A task whose worker died unacknowledged is handed to another worker "
        "after this long; must exceed one delivery attempt (a channel's timeout_seconds)",
    )
    dedupe_ttl_seconds: float = Field(
        default=7 * 86_400.0,
        ge=60.0,
        description="How long a delivered message's mark is kept (a redelivered task "
        "older than this would be sent again)",
    )
    publish_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60.0,
        description="How long the agent tries to hand a task to the broker before it "
        "delivers that notification itself",
    )

    @field_validator("broker_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            parts = urlsplit(value.strip())
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError:
            raise ValueError(f"not a Redis URL ({EXAMPLE})") from None
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(
                f"scheme {parts.scheme or '(none)'!r} is not supported: use {EXAMPLE} "
                "(the machine's Redis; rediss:// for TLS)"
            )
        return urlunsplit(parts)

    @property
    def enabled(self) -> bool:
        return self.broker_url is not None

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The URL to connect with, the password filled in from ``password_env``."""
        if self.broker_url is None:
            return None
        parts = urlsplit(self.broker_url)
        env = os.environ if environ is None else environ
        password = env.get(self.password_env) if self.password_env else None
        if parts.password is None and password:
            user = parts.username or ""
            host = parts.netloc.rpartition("@")[2]
            auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
            parts = parts._replace(netloc=f"{auth}@{host}")
        return urlunsplit(parts)


def refuse_inline_broker_password(data: Mapping[str, Any]) -> None:
    """Raise ``ConfigError`` when the config file's ``tasks.broker_url`` holds a password."""
    section = data.get("tasks")
    url = section.get("broker_url") if isinstance(section, Mapping) else None
    if not isinstance(url, str):
        return
    try:
        has_password = urlsplit(url.strip()).password is not None
    except ValueError:
        return  # the model's validator names the problem
    if has_password:
        raise ConfigError(
            "tasks.broker_url",
            "secrets are not read from the config file: remove the password from the URL "
            "and put it in the environment variable named by tasks.password_env "
            "(SYSMON_TASKS_PASSWORD by default), or give the whole URL in "
            "SYSMON_TASKS__BROKER_URL",
        )
