"""Settings for authentication, rate limiting and HTTP security.

``auth.mode: none`` is the Level 1 default: no accounts, loopback only (a non-loopback
bind is refused unless ``--insecure``; requests whose ``Host`` is not a loopback name
get 421). ``jwt`` turns on users, tokens, API keys and roles.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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


class HttpSecurityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names served with auth.mode jwt (loopback names always are)",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed cross-site (CORS off when empty)"
    )
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
