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

from collections.abc import Mapping
from urllib.parse import urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sysmon.secreturl import env_password, fill_password, parse_url

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
        hint = "the machine's Redis; rediss:// for TLS"
        schemes = ("redis", "rediss")
        return urlunsplit(parse_url(value, schemes, kind="Redis", example=EXAMPLE, hint=hint))

    @property
    def enabled(self) -> bool:
        return self.broker_url is not None

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The URL to connect with, the password filled in from ``password_env``."""
        if self.broker_url is None:
            return None
        return fill_password(self.broker_url, env_password(self.password_env, environ))
