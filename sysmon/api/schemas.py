"""Response models: they document the wire format in OpenAPI (``/docs``).

Hot endpoints build their JSON directly (the snapshot is serialised once per tick), so
these models describe the shape rather than validate each response.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class CurrentResponse(BaseModel):
    timestamp: float = Field(description="UTC epoch seconds of the collection tick")
    metrics: dict[str, dict[str, Any]] = Field(
        description='Per metric: {"total": {field: value}, "<label>": {"<name>": {field: value}}}'
        "; fields the catalog marks integer are JSON integers"
    )
    processes: list[dict[str, Any]] = Field(description="Top processes by CPU")
    errors: dict[str, str] = Field(description="Collectors that failed this tick")


class FieldEntry(BaseModel):
    field: str
    unit: str = Field(description='"" for a plain number (load average)')
    description: str
    kind: Literal["gauge", "rate"] = Field(description="rate = per second, from counters")
    labels: list[str] = Field(description="Label keys the field is emitted under, besides totals")
    integer: bool = Field(description="Always a JSON integer (bytes, counts), means included")


class MetricEntry(BaseModel):
    name: str = Field(description="The {metric} of /api/v1/metrics/{metric}")
    fields: list[FieldEntry]
    labels: list[str] = Field(description="Every label key of the metric's fields (selectors)")


class CatalogResponse(BaseModel):
    """``GET /api/v1/metrics``: derived from the collectors' declarations (``sysmon.catalog``)."""

    metrics: list[MetricEntry]


class SeriesResponse(BaseModel):
    metric: str
    labels: dict[str, str] = Field(description="Series selector; empty = totals")
    start: float
    end: float
    resolution: str = Field(description="Tier the answer came from: raw, 1m, 5m, 1h")
    agg: str = Field(description="Aggregate used inside each bucket: mean, min, max")
    step_seconds: float
    partial_from: float | None = Field(
        default=None,
        description="First timestamp whose bucket is partial (computed from finer data, "
        "not yet rolled up); null = every bucket final",
    )
    timestamps: list[float] = Field(description="Bucket start times, UTC epoch seconds")
    fields: dict[str, list[float | None]] = Field(
        description="Values per field; null = gap. Fields the catalog marks integer are "
        "JSON integers (rollup means rounded)"
    )
    units: dict[str, str]


class ProcessesResponse(BaseModel):
    timestamp: float
    sort: Literal["cpu", "memory"]
    limit: int
    processes: list[dict[str, Any]]


class DatabaseHealth(BaseModel):
    reachable: bool = Field(description="The server can read the database")
    backend: str
    size_bytes: int | None
    pending_writes: int = Field(description="Ticks the agent holds until the store recovers")
    dropped_ticks: int = Field(description="Ticks dropped beyond the write buffer's bound")
    last_error: str | None
    integrity: dict[str, Any] | None = Field(
        description="The agent's last check: ok, problem, checked_at, full_checked_at"
    )


class AgentHealth(BaseModel):
    connected: bool = Field(description="The server has a live channel to the agent")
    pid: int | None
    version: str | None
    error: str | None
    tick_lateness_ms: dict[str, float | None] | None = Field(
        description="How late ticks started (p50, p99, max over the last hour)"
    )
    overruns: int | None
    live_redis: dict[str, Any] | None = Field(
        default=None,
        description="The agent's publishing to Redis (redis.url): url, channel, connected, "
        "published, replaced, last_error; null without Redis or before the first tick",
    )


class CollectorHealth(BaseModel):
    missed_last_minute: int
    missed_last_hour: int
    missed_total: int
    last_missed_at: float | None
    last_reason: str | None
    last_duration_ms: float | None


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    problems: list[str] = Field(description="Why the status is degraded, one line each")
    version: str
    uptime_seconds: float
    server: dict[str, int] = Field(description="The server process that answered (pid)")
    agent: AgentHealth
    database: DatabaseHealth
    last_collection_age_seconds: float | None
    collection_interval_seconds: int
    collectors: dict[str, CollectorHealth]
    collector_errors: dict[str, str] = Field(description="Collectors that failed the last tick")
    live_clients: int
    forward: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Each forward: remote's queue (queued ticks and bytes, oldest age, "
        "drops, last error, last send); empty without remotes",
    )
    live_head: dict[str, Any] | None = Field(
        default=None,
        description="The server's in-memory copy of the newest raw slots (api.live_window_"
        "seconds): covered_from/covered_to (epoch seconds, null when empty), series, "
        "answers, resets; null when off (remote stores, window 0)",
    )


class SystemResponse(BaseModel):
    hostname: str
    os: str
    boot_time: float | None
    uptime_seconds: float | None
    cpu_count: int | None
    cpu_count_physical: int | None
    collection_interval_seconds: int
    collectors: list[str]
    thresholds: dict[str, dict[str, float]]
