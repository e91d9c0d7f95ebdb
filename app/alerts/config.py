"""Alert rules and notification channels (placeholder until the alerts issue lands)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    rules: list[dict[str, Any]] = Field(default_factory=list)
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
