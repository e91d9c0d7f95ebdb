"""Settings for authentication, rate limiting and HTTP security.

``auth.mode: none`` is the Level 1 default: no accounts, loopback only (a non-loopback
bind is refused unless ``--insecure``; requests whose ``Host`` is not a loopback name
get 421). ``jwt`` turns on users, tokens, API keys and roles.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class RateLimitConfig(BaseModel):
    """Limits in the ``limits`` library's notation ("10/minute", "100 per second")."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    storage: str = Field(
        default="memory://",
        description="memory:// (per server process) or redis://host:port/db (shared)",
    )
    default: str = Field(default="1200/minute", description="Per client and route")
    login: str = Field(default="5/minute", description="Token/login attempts per client")
    alerts_test: str = Field(default="6/minute", description="POST /alerts/test per client")
    exempt: list[str] = Field(
        default_factory=lambda: ["/api/v1/health", "/api/v1/stream"],
        description="Paths the default limit does not count (probes; the long-lived stream)",
    )
    key_prefix: str = Field(
        default="sysmon",
        min_length=1,
        description="Prefix of the limit keys (several services may share one Redis)",
    )

    @field_validator("default", "login", "alerts_test")
    @classmethod
    def _parses(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit (write e.g. '10/minute' or '100 per hour')"
            ) from None
        return value

    @field_validator("storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value.split("://", 1)[0] not in ("memory", "redis", "rediss", "redis+unix"):
            raise ValueError("use memory:// or redis://host:port/db (rediss:// for TLS)")
        return value


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["none", "jwt"] = "none"
    audience: str = "sysmon"
    access_token_minutes: float = Field(default=15, gt=0, le=24 * 60)
    refresh_token_days: float = Field(default=7, gt=0, le=365)
    signing_key_env: str = Field(
        default="SYSMON_JWT_SECRET", description="Environment variable holding the key"
    )
    signing_key_file: str | None = Field(
        default=None,
        description="0600 file with the key (default jwt.key in the data directory; "
        "generated on first start when absent)",
    )
    users_db: str | None = Field(
        default=None, description="Users, keys, audit (default auth.db in the data directory)"
    )
    session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="Lifetime of a dashboard login (cookie)"
    )
    audit_retention_days: float = Field(default=365, gt=0, description="Audit rows kept")


class HttpSecurityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names served with auth.mode jwt (loopback names always are)",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed cross-site (CORS off when empty)"
    )
    ssl_certfile: str | None = Field(default=None, description="PEM certificate: serve HTTPS")
    ssl_keyfile: str | None = Field(default=None, description="PEM private key of ssl_certfile")
    hsts_max_age_seconds: int = Field(
        default=31_536_000,
        ge=0,
        description="Strict-Transport-Security max-age on TLS responses (0: no header)",
    )
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        for item in value:
            if item == "*" or _is_ip(item.strip("[]")):
                continue
            name = item.removeprefix("*.")
            if not name or any(c in name for c in "/*@: "):
                raise ValueError(
                    f"{item!r}: give a host name or address without scheme or port, "
                    "'*.example.com' for its subdomains, or '*'"
                )
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for item in value:
            scheme, sep, rest = item.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
                raise ValueError(
                    f"{item!r}: an origin is scheme://host[:port], e.g. https://grafana.example"
                )
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSecurityConfig:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together: give both or neither")
        return self


KIB = 1024
MIB = 1024 * KIB


class HttpLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_connections: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description=(
            "Open TCP connections per server process; a connection beyond this is closed at "
            "once, without a response. Keep it well below the process's file descriptor "
            "limit (ulimit -n)"
        ),
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "A connection that has not sent a complete request line and headers this long "
            "after it opened (or after the first byte of its next request) is closed"
        ),
    )
    keep_alive_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "An idle connection is closed this long after its last response; also how long "
            "the rest of an unwanted request body is read and discarded after a response"
        ),
    )
    max_body_bytes: int = Field(
        default=1 * MIB,
        ge=0,
        le=1024 * MIB,
        description="Largest request body accepted; a larger one is answered 413",
    )
    max_header_bytes: int = Field(
        default=16 * KIB,
        ge=1 * KIB,
        le=1 * MIB,
        description=(
            "Request line plus headers received while still incomplete; past this the "
            "request is answered 431 and the connection closed"
        ),
    )
    cache_max_bytes: int = Field(
        default=32 * MIB,
        ge=0,
        le=4096 * MIB,
        description="Memory for cached range-query answers (total body bytes; 0 = none)",
    )
