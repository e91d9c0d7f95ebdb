"""Settings: ``config/config.yaml`` overlaid with ``SYSMON_*`` environment variables.

Every key can be overridden from the environment with ``SYSMON_`` + the upper-cased
dotted path, ``__`` between levels: ``SYSMON_COLLECTION__INTERVAL_SECONDS=5``,
``SYSMON_SERVER__PORT=9000``, ``SYSMON_DATABASE__PATH=/var/lib/sysmon.db``. Values in the
environment win over the file. Any problem raises ``ConfigError`` naming the dotted key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.alerts.config import AlertsConfig
from app.api.limits import HttpLimits
from app.errors import ConfigError
from app.security.config import AuthConfig, HttpSecurityConfig
from app.storage.config import DatabaseConfig, RetentionConfig

DEFAULT_CONFIG_PATH = Path("config/config.yaml")
CONFIG_ENV = "SYSMON_CONFIG"


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    access_log: bool = Field(
        default=False, description="Log every HTTP request (costs ~20 % throughput)"
    )
    dashboard_url: str | None = Field(
        default=None, description="Public URL of the dashboard, used in notifications"
    )
    workers: int = Field(default=1, ge=1, le=64, description="API worker processes")
    limits: HttpLimits = Field(default_factory=HttpLimits)
    security: HttpSecurityConfig = Field(default_factory=HttpSecurityConfig)
    start_agent: bool = Field(
        default=True,
        description="Start and supervise a local agent when none holds the data directory",
    )


class CollectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_seconds: int = Field(default=1, ge=1, le=60)
    collector_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Deadline of one collector run; below the interval (default 0.8 x it)",
    )
    plugins: list[str] = Field(
        default_factory=list,
        description="Extra modules whose @register classes become collectors",
    )

    @field_validator("collector_timeout_seconds")
    @classmethod
    def _deadline_below_interval(cls, timeout: float | None, info: ValidationInfo) -> float | None:
        interval = info.data.get("interval_seconds")
        if timeout is not None and interval is not None and timeout >= interval:
            raise ValueError(
                f"must be below collection.interval_seconds ({timeout:g} >= {interval}): "
                "a collector's run has to end before its next one is due"
            )
        return timeout

    @property
    def deadline_seconds(self) -> float:
        """How long one collector run may take before its sample counts as missed."""
        if self.collector_timeout_seconds is not None:
            return self.collector_timeout_seconds
        return 0.8 * self.interval_seconds


class AgentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    socket: str | None = Field(
        default=None,
        description="Unix socket for live ticks (default: agent.sock in the data directory)",
    )
    integrity_check_seconds: float = Field(
        default=30.0, ge=1, le=3600, description="How often the database is quick_check'ed"
    )


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_range_seconds: int = Field(default=3600, ge=1)
    max_points: int = Field(default=1000, ge=10, le=10_000)
    current_process_rows: int = Field(default=20, ge=0, le=200)
    store_threads: int = Field(
        default=4, ge=1, le=64, description="Worker threads reading the store at once"
    )


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: str = "INFO"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYSMON_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    collection: CollectionConfig = Field(default_factory=CollectionConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    collectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the YAML file (passed as init kwargs).
        return (env_settings, init_settings)


def _format_errors(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = len(exc.errors()) - 1
    if more:
        others = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[1:])
        msg = f"{msg} (and {more} more: {others})"
    return ConfigError(key, msg)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "config file not found") from exc
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "top level must be a mapping of sections")
    return data


def config_path_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    value = env.get(CONFIG_ENV)
    if value:
        return Path(value)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from ``path`` (YAML), the environment, then ``overrides``."""
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    for key, value in overrides.items():
        data[key] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise _format_errors(exc) from None
