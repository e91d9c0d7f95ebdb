"""The ``forward:`` settings: remote backends that receive a copy of every tick.

    forward:
      - name: vm                      # names the queue file forward-vm.db and health
        backend: victoriametrics
        url: http://vm.example.com:8428
        buffer: 24h                   # keep at most this much unsent history
        max_buffer_bytes: 268435456   # and at most this many bytes of it (256 MiB)
        token_env: SYSMON_VM_TOKEN    # optional: bearer token from this variable

The local database (``database:``) stays the source of truth; each entry adds one
forwarder with its own on-disk queue (``sysmon.agent.forward``). Durations (``buffer``,
``timeout``, ``backoff_max``) take the one grammar of ``sysmon.timeparse``.

Secrets never come from the file (it is copied, committed and pasted into bug reports):
a ``token:`` key is refused wherever it is written, pointing at ``token_env``, and a
URL with ``user:password@`` is refused. Every problem is a ``ConfigError`` naming the
dotted key (``forward.0.buffer``), through pydantic's location or raised directly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from sysmon.errors import ConfigError
from sysmon.timeparse import parse_duration

ForwardBackend = Literal["victoriametrics"]
"""Backends a tick can be forwarded to (each needs a store with ``write``)."""

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_INLINE_SECRETS = {"token": "token_env", "password": "token_env"}


def _duration(value: object) -> str:
    """The duration as written (``buffer: 24h`` stays ``"24h"``), once it parses."""
    parse_duration(value, above=0)
    return value if isinstance(value, str) else str(value)


class ForwardConfig(BaseModel):
    """One remote. Defaults keep a day of unsent ticks within 256 MiB: a queue entry
    is about 1.5 KB for a tick of 145 samples (measured, ``bench/bench_forward.py``),
    so a day at one tick a second is ~130 MB and the age bound bites first; a host
    with many more series (containers, disks, cores) reaches the byte bound first,
    and health counts what either bound dropped."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="Short name: [a-z0-9_-], up to 32 characters; names the queue file "
        "forward-<name>.db in the data directory and the entry in health"
    )
    backend: ForwardBackend = Field(description="Remote store kind (victoriametrics)")
    url: str = Field(description="Server URL, e.g. http://127.0.0.1:8428 (no credentials)")
    buffer: str = Field(
        default="24h",
        description="Unsent ticks older than this are dropped (and counted in health)",
    )
    max_buffer_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=64 * 1024,
        description="Bytes the queue may hold; beyond it the oldest ticks are dropped",
    )
    batch_ticks: int = Field(
        default=100, ge=1, le=10_000, description="Ticks sent per request when catching up"
    )
    timeout: str = Field(default="5s", description="One request gives up after this long")
    backoff_max: str = Field(
        default="1m",
        description="Retry delay after failures doubles from the collection interval up to this",
    )
    degraded_after_ticks: int = Field(
        default=10,
        ge=1,
        description="Health is degraded once the remote has failed for more than this many ticks",
    )
    token_env: str | None = Field(
        default=None,
        description="Environment variable holding a bearer token sent with every request",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a forward name: use 1-32 of a-z, 0-9, _ and -, "
                "starting with a letter or digit (it names the file forward-<name>.db)"
            )
        return value

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL with a host: {value!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "credentials are not read from the config (no user:password@ in the URL): "
                "name an environment variable holding a token with token_env"
            )
        return value.strip()

    @field_validator("buffer", "timeout", "backoff_max", mode="before")
    @classmethod
    def _valid_duration(cls, value: object) -> str:
        return _duration(value)

    @property
    def buffer_seconds(self) -> float:
        return parse_duration(self.buffer)

    @property
    def timeout_seconds(self) -> float:
        return parse_duration(self.timeout)

    @property
    def backoff_max_seconds(self) -> float:
        return parse_duration(self.backoff_max)

    def token(self, index: int, environ: Mapping[str, str] | None = None) -> str | None:
        """The bearer token from ``token_env``; ``ConfigError`` for ``forward.<index>.
        token_env`` when it names a variable that is not set (a named secret that is
        missing is a deployment mistake worth stopping for)."""
        if self.token_env is None:
            return None
        env = os.environ if environ is None else environ
        value = env.get(self.token_env)
        if not value:
            raise ConfigError(
                f"forward.{index}.token_env",
                f"environment variable {self.token_env} is not set (or empty)",
            )
        return value


def _refuse_inline_secrets(value: Any) -> Any:
    """``forward.N.token`` (or ``password``) is refused wherever it was written."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                continue
            for secret, env_key in _INLINE_SECRETS.items():
                if item.get(secret) is not None:
                    name = str(item.get("name") or index).upper().replace("-", "_")
                    raise ConfigError(  # not a ValueError: pydantic lets it through
                        f"forward.{index}.{secret}",
                        "secrets are not read from the config: put it in an environment "
                        f"variable and name that variable with {env_key} "
                        f"(e.g. {env_key}: SYSMON_{name}_TOKEN)",
                    )
    return value


def _unique_names(value: list[ForwardConfig]) -> list[ForwardConfig]:
    seen: dict[str, int] = {}
    for index, item in enumerate(value):
        if item.name in seen:
            raise ConfigError(
                f"forward.{index}.name",
                f"duplicate forward name {item.name!r} (also forward.{seen[item.name]}.name): "
                "each remote needs its own queue file",
            )
        seen[item.name] = index
    return value


ForwardList = Annotated[
    list[ForwardConfig],
    BeforeValidator(_refuse_inline_secrets),
    AfterValidator(_unique_names),
]
"""The type of ``Settings.forward``."""
