"""The ``redis:`` section: one Redis for rate limits and for the live-tick fan-out.

::

    redis:
      url: redis://127.0.0.1:6379/0          # no password here
      password_env: SYSMON_REDIS_PASSWORD     # the default
      key_prefix: sysmon                      # channels sysmon:ticks:<host>
      live: true                              # fan ticks out through Redis
      live_host: null                         # whose ticks a server follows (default: agent.host)

Why one setting: a deployment that runs several API processes needs both shared rate
limits and shared ticks, so ``redis.url`` turns on both. ``server.security.rate_limits
.storage`` still wins when it is set explicitly (``memory://`` keeps limits per process).

The password is never read from the config file (it is copied, committed and pasted
into bug reports): a URL with a password in the file is refused. It comes from the
variable named by ``password_env``, or the whole URL comes from ``SYSMON_REDIS__URL``.

This module imports nothing but pydantic, so loading the settings does not import the
Redis client; ``sysmon.fanout`` does the work.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sysmon.secreturl import env_password, fill_password, parse_url

SCHEMES = ("redis", "rediss", "unix")
EXAMPLE = "redis://host:6379/0"
_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]+$")


class RedisConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        default=None,
        repr=False,  # may hold a password when it comes from the environment
        description="Redis for shared rate limits and the live-tick fan-out "
        f"({EXAMPLE}, no password; rediss:// for TLS). Default: none (per-process limits, "
        "ticks over the agent's Unix socket)",
    )
    password_env: str | None = Field(
        default="SYSMON_REDIS_PASSWORD",
        description="Environment variable holding the Redis password (if it needs one)",
    )
    key_prefix: str = Field(
        default="sysmon",
        min_length=1,
        max_length=100,
        description="Prefix of the tick channels and keys (<prefix>:ticks:<host>); "
        "several deployments may share one Redis",
    )
    live: bool = Field(
        default=True,
        description="With url set: the agent publishes every tick to Redis and servers read "
        "ticks from Redis instead of the agent's Unix socket",
    )
    live_host: str | None = Field(
        default=None,
        description="The agent host whose ticks a server serves (default: agent.host, "
        "i.e. this machine's hostname; set it on API machines other than the agent's)",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        hint = "rediss:// for TLS, unix:///path/redis.sock"
        return urlunsplit(parse_url(value, SCHEMES, kind="Redis", example=EXAMPLE, hint=hint))

    @field_validator("key_prefix")
    @classmethod
    def _plain_prefix(cls, value: str) -> str:
        if not _PREFIX.match(value):
            raise ValueError("use letters, digits and _ . : - only (it names Redis channels)")
        return value

    @property
    def fans_out(self) -> bool:
        """Whether live ticks travel through Redis."""
        return self.url is not None and self.live

    def resolved_url(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The URL to connect with, password filled in from ``password_env``."""
        if self.url is None:
            return None
        return fill_password(self.url, env_password(self.password_env, environ))

    def channel(self, host: str) -> str:
        return f"{self.key_prefix}:ticks:{host}"

    def latest_key(self, host: str) -> str:
        """Holds the latest frame, so a server that starts between ticks answers at once."""
        return f"{self.key_prefix}:latest:{host}"
