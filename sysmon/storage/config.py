"""Storage configuration: which backend, where, and the retention tiers.

Durations (``keep``, ``processes_every``) follow the one grammar of
``sysmon.timeparse.parse_duration`` (``"1d"``, ``"12h"``, ``"365d"``, ``"1h30m"``, ``"2w"``,
or a bare number of seconds). A bad value fails at load time with a pydantic error whose
location names the key (``retention.tiers.0.keep``), which ``sysmon.config`` turns into a
``ConfigError`` for that dotted key.

The defaults are the spec's tiers: raw 1 day, 1 minute 7 days, 5 minutes 30 days,
1 hour 365 days. Each tier is rolled up from the one below it, so the list must start
with ``raw`` and go from fine to coarse.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sysmon.storage.base import RESOLUTION_STEP_SECONDS
from sysmon.timeparse import parse_duration

TierName = Literal["raw", "1m", "5m", "1h"]

TIER_STEP_SECONDS: dict[str, float] = dict(RESOLUTION_STEP_SECONDS)
"""Bucket width of each rollup tier (the raw tier's step is the collection interval)."""


def _check_duration(value: object, *, positive: bool) -> str:
    """The duration as written (``keep: 7d`` stays ``"7d"``), once it parses."""
    parse_duration(value, above=0 if positive else None)  # refuses anything else
    return value if isinstance(value, str) else str(value)


BackendName = Literal["sqlite", "victoriametrics", "influxdb"]
InfluxApi = Literal["v2", "v1"]


class DatabaseConfig(BaseModel):
    """Where samples go. ``backend`` picks the store (``sysmon.storage.factory``):

    * ``sqlite`` (default): the embedded file at ``path``, tiers from ``retention``;
    * ``victoriametrics``: a VictoriaMetrics single-node server at ``url`` (``http://``
      or ``https://``, e.g. ``http://127.0.0.1:8428``); it owns retention and
      downsampling, and keeps no process tables;
    * ``influxdb``: line protocol to an InfluxDB server at ``url`` (``api`` v2:
      ``org`` + ``bucket``, InfluxDB 2 or VictoriaMetrics; v1: ``bucket`` is the
      InfluxDB 1.x database), reads through InfluxQL ``/query``; the API token comes
      from the variable named by ``token_env`` or the file ``token_file``
      (``sysmon.storage.influx`` says which servers each part was tested against).

    ``url`` carries no credentials: a ``user:password@`` part is refused, because
    secrets are never read from the config file (it is copied, committed and pasted
    into bug reports). The VictoriaMetrics store sends none; put the server on a trusted
    network or behind a proxy on localhost. ``path`` is still used with a remote
    backend: the live-channel socket and the alert store sit beside it.
    """

    model_config = ConfigDict(extra="forbid")

    backend: BackendName = "sqlite"
    path: str = "data/sysmon.db"
    url: str | None = Field(
        default=None,
        validate_default=True,
        description="Server URL of a remote backend (victoriametrics), e.g. http://127.0.0.1:8428",
    )
    write_buffer_max_ticks: int = Field(default=86_400, ge=1)
    # InfluxDB (backend influxdb, sysmon.storage.influx); the token is never read from here.
    org: str | None = Field(
        default=None,
        description="InfluxDB 2 organization (backend influxdb, api v2: required)",
    )
    bucket: str = Field(
        default="sysmon",
        min_length=1,
        description="InfluxDB 2 bucket (api v2) or InfluxDB 1.x database (api v1); reads "
        "ask /query with db=<bucket> (InfluxDB 2: through its DBRP mapping)",
    )
    api: InfluxApi = Field(
        default="v2",
        description="InfluxDB write API: v2 = /api/v2/write?org=&bucket= (InfluxDB 2, "
        "VictoriaMetrics), v1 = /write?db= (InfluxDB 1.x)",
    )
    token_env: str | None = Field(
        default="SYSMON_INFLUX_TOKEN",
        description="Environment variable holding the InfluxDB API token (if it needs one)",
    )
    token_file: str | None = Field(
        default=None,
        description="File holding the InfluxDB API token (a Docker or systemd secret); "
        "wins over token_env",
    )
    token: None = Field(
        default=None,
        exclude=True,
        description="Refused: the token comes from token_env or token_file, never the config",
    )

    @field_validator("token", mode="before")
    @classmethod
    def _no_inline_token(cls, value: object) -> None:
        if value is not None:
            raise ValueError(
                "secrets are not read from the config: put the InfluxDB token in the "
                "environment variable named by database.token_env (SYSMON_INFLUX_TOKEN by "
                "default) or a file named by database.token_file"
            )
        return None

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        backend = info.data.get("backend")
        if value is None:
            if backend is not None and backend != "sqlite":
                raise ValueError(f"required with backend {backend!r} (e.g. http://127.0.0.1:8428)")
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "credentials are not read from the config (no user:password@ in the URL); "
                "the server must accept unauthenticated writes from this host"
            )
        return value


class TierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: TierName
    keep: str = Field(description="How long rows of this tier are kept: 1d, 7d, 30d, 365d, 12h")

    @field_validator("keep", mode="before")
    @classmethod
    def _valid_keep(cls, value: object) -> str:
        return _check_duration(value, positive=True)

    @property
    def keep_seconds(self) -> float:
        return parse_duration(self.keep)

    @property
    def step_seconds(self) -> float | None:
        """Bucket width; ``None`` for raw (its step is the collection interval)."""
        return TIER_STEP_SECONDS.get(self.resolution)


def _default_tiers() -> list[TierConfig]:
    return [
        TierConfig(resolution="raw", keep="1d"),
        TierConfig(resolution="1m", keep="7d"),
        TierConfig(resolution="5m", keep="30d"),
        TierConfig(resolution="1h", keep="365d"),
    ]


_ORDER = {"raw": 0, "1m": 1, "5m": 2, "1h": 3}


class RetentionConfig(BaseModel):
    """Tiers plus the process-history cadence.

    ``processes_every``: a top-process table is stored at most this often (``"0s"`` =
    every tick). Process tables are ~50x bigger than a tick of metrics, so storing one
    per second for a day would dwarf the whole metric history; see sysmon/storage/README.md.
    They are kept as long as the raw tier.
    """

    model_config = ConfigDict(extra="forbid")

    tiers: list[TierConfig] = Field(default_factory=_default_tiers)
    processes_every: str = "10s"

    @field_validator("processes_every", mode="before")
    @classmethod
    def _valid_every(cls, value: object) -> str:
        return _check_duration(value, positive=False)

    @field_validator("tiers")
    @classmethod
    def _valid_tiers(cls, tiers: list[TierConfig]) -> list[TierConfig]:
        # Each tier rolls up from the one below it: raw first, fine to coarse, no repeats.
        if not tiers or tiers[0].resolution != "raw":
            raise ValueError("the first tier must be resolution 'raw'")
        order = [_ORDER[t.resolution] for t in tiers]
        if order != sorted(set(order)):
            raise ValueError("tiers must go from fine to coarse (raw, 1m, 5m, 1h) without repeats")
        return tiers

    @model_validator(mode="after")
    def _keeps_reach_next_bucket(self) -> RetentionConfig:
        # A tier must keep its rows at least two buckets of the next tier, or the next
        # rollup would find its source already deleted.
        for lower, upper in zip(self.tiers, self.tiers[1:], strict=False):
            step = upper.step_seconds or 0.0
            if lower.keep_seconds < 2 * step:
                raise ValueError(
                    f"tier {lower.resolution!r} keep {lower.keep!r} is shorter than two "
                    f"{upper.resolution} buckets; tier {upper.resolution!r} could not roll up"
                )
        return self

    @property
    def processes_every_seconds(self) -> float:
        return parse_duration(self.processes_every)

    def tier(self, resolution: str) -> TierConfig | None:
        for t in self.tiers:
            if t.resolution == resolution:
                return t
        return None
