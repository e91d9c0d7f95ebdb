"""Storage configuration: which backend, where, and the retention tiers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class DatabaseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["sqlite"] = "sqlite"
    path: str = "data/sysmon.db"
    write_buffer_max_ticks: int = Field(default=86_400, ge=1)


class TierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Literal["raw", "1m", "5m", "1h"]
    keep: str = Field(description="How long rows of this tier are kept: 1d, 7d, 30d, 365d, 12h")


def _default_tiers() -> list[TierConfig]:
    return [
        TierConfig(resolution="raw", keep="1d"),
        TierConfig(resolution="1m", keep="7d"),
        TierConfig(resolution="5m", keep="30d"),
        TierConfig(resolution="1h", keep="365d"),
    ]


class RetentionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tiers: list[TierConfig] = Field(default_factory=_default_tiers)
