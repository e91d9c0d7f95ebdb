"""Settings: ``config/config.yaml`` overlaid with ``SYSMON_*`` environment variables.

Every key can be overridden from the environment with ``SYSMON_`` + the upper-cased
dotted path, ``__`` between levels: ``SYSMON_COLLECTION__INTERVAL_SECONDS=5``,
``SYSMON_SERVER__PORT=9000``, ``SYSMON_DATABASE__PATH=/var/lib/sysmon.db``. Values in the
environment win over the file. Any problem raises ``ConfigError`` naming the dotted key:
a bad value, an unknown key, a key written twice in the file, unparsable JSON in a
``SYSMON_<SECTION>`` variable, or a secret written into the file (secrets come from the
environment, never from the file).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import logging
import os
import re
import socket
import typing
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from sysmon.agent.forward_config import ForwardList
from sysmon.alerts.config import AlertsConfig
from sysmon.errors import ConfigError
from sysmon.fanout_config import RedisConfig
from sysmon.relational.config import RelationalConfig
from sysmon.secreturl import refuse_inline_passwords
from sysmon.security.config import AuthConfig, HttpLimits, HttpSecurityConfig
from sysmon.storage.config import DatabaseConfig, RetentionConfig
from sysmon.tasks.config import TasksConfig
from sysmon.telemetry import TelemetryConfig

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_PATH = Path("config/config.yaml")
CONFIG_ENV = "SYSMON_CONFIG"
SERVED_URL_ENV = "SYSMON_SERVED_URL"
"""Set by ``sysmon serve``/``sysmon server`` for their children: the address actually
served (``--host``/``--port``/TLS flags included). Not a settings key: it only fills in
``server.public_url`` when neither the file nor ``SYSMON_SERVER__PUBLIC_URL`` sets it."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

LOOPBACK_PROXIES = ("127.0.0.1", "::1")
"""``server.forwarded_allow_ips``' default: uvicorn's own (0.55), a proxy on this machine."""
UVICORN_PROXIES_ENV = "FORWARDED_ALLOW_IPS"
"""uvicorn's variable for the same list (comma-separated), named by the deploy notes before
the key existed: still read when the configuration does not set the key."""


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    access_log: bool = Field(
        default=False, description="Log every HTTP request (costs ~20 % throughput)"
    )
    public_url: str | None = Field(
        default=None,
        description="The address users reach the dashboard by (behind a proxy, say); "
        "every notification links to it. Default: the address actually served.",
    )
    workers: int = Field(default=1, ge=1, le=64, description="API worker processes")
    event_loop: typing.Literal["asyncio", "uvloop"] = Field(
        default="asyncio",
        description="The server's event loop. asyncio: p99 16-29 ms at 100 connections on one "
        "worker, 2-3 MiB less memory; uvloop (not installed by default: "
        "pip install 'sysmon[uvloop]'): ~20 % more /current requests per second, p99 "
        "0.1-0.4 s (bench/README.md, session 9)",
    )
    limits: HttpLimits = Field(default_factory=HttpLimits)
    security: HttpSecurityConfig = Field(default_factory=HttpSecurityConfig)
    start_agent: bool = Field(
        default=True,
        description="Start and supervise a local agent when none holds the data directory",
    )
    forwarded_allow_ips: list[str] = Field(
        default_factory=lambda: list(LOOPBACK_PROXIES),
        description="Proxies whose X-Forwarded-For/-Proto are believed (client address in "
        "the access log, audit log and rate limits; https): IP addresses or CIDR networks; "
        "['*'] trusts every peer, [] none",
    )

    @model_validator(mode="before")
    @classmethod
    def _dashboard_url_is_public_url(cls, data: Any) -> Any:
        """``dashboard_url`` (deprecated) is read as ``public_url``, with a warning."""
        if not isinstance(data, dict) or "dashboard_url" not in data:
            return data
        data = dict(data)
        old = data.pop("dashboard_url")
        if data.get("public_url") not in (None, old):
            raise ConfigError(  # not a ValueError: pydantic lets it through, key intact
                "server.dashboard_url",
                "deprecated name of server.public_url, which is set too: keep only public_url",
            )
        if old is not None:
            logger.warning(
                "server.dashboard_url is deprecated: rename it to server.public_url "
                "(read as public_url for now)"
            )
            data["public_url"] = old
        return data

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in value.strip():
            raise ValueError(
                f"must be an http(s) URL such as https://monitor.example.com/: {value!r}"
            )
        return parts.geturl() if parts.path else parts.geturl() + "/"

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed: pip install 'sysmon[uvloop]' (or uvloop)")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: list[str]) -> list[str]:
        """Addresses and networks, normalised; ``*`` only alone (uvicorn reads a ``*``
        among other entries as a name that never matches, and an entry it cannot parse as
        silently: a typo would quietly stop trusting the proxy)."""
        items = [item.strip() for item in value]
        if "*" in items:
            if len(items) > 1:
                raise ValueError("'*' trusts every peer: write it alone, as ['*']")
            return ["*"]
        return [_proxy_address(item) for item in items]

    @property
    def dashboard_url(self) -> str | None:
        """Deprecated name of ``public_url`` (read-only)."""
        return self.public_url

    @property
    def tls(self) -> bool:
        return bool(self.security.ssl_certfile and self.security.ssl_keyfile)


def _proxy_address(item: str) -> str:
    try:
        if "/" in item:
            return str(ipaddress.ip_network(item))
        return str(ipaddress.ip_address(item))
    except ValueError as exc:
        if "has host bits set" in str(exc):
            network = ipaddress.ip_network(item, strict=False)
            raise ValueError(f"{item!r} has host bits set: write the network, {network}") from None
        raise ValueError(
            f"{item!r} is not an IP address or a CIDR network (e.g. 10.0.0.5, 10.0.0.0/24, "
            "::1; ['*'] alone trusts every peer)"
        ) from None


def forwarded_allow_ips(
    server: ServerConfig, environ: Mapping[str, str] | None = None, *, warn: bool = True
) -> list[str]:
    """The proxies uvicorn believes (its ``forwarded_allow_ips``): the key's value; when
    the configuration leaves the key out, a non-empty ``$FORWARDED_ALLOW_IPS`` (uvicorn's
    comma-separated variable, which earlier deploy notes said to set) still wins over
    the default, checked like the key (``ConfigError`` naming the variable) and with a
    warning to move it there unless ``warn`` is false."""
    env = os.environ if environ is None else environ
    legacy = env.get(UVICORN_PROXIES_ENV, "").strip()
    if "forwarded_allow_ips" in server.model_fields_set or not legacy:
        return list(server.forwarded_allow_ips)
    try:
        trusted = ServerConfig(forwarded_allow_ips=legacy.split(",")).forwarded_allow_ips
    except ValidationError as exc:
        raise ConfigError(
            UVICORN_PROXIES_ENV, exc.errors()[0]["msg"].removeprefix("Value error, ")
        ) from None
    if warn:
        logger.warning(
            "%s is read because server.forwarded_allow_ips is not set: move it to that "
            "key (SYSMON_SERVER__FORWARDED_ALLOW_IPS='%s')",
            UVICORN_PROXIES_ENV,
            json.dumps(trusted),
        )
    return trusted


def served_url(host: str, port: int, *, tls: bool) -> str:
    """The dashboard's address for a server listening on ``host:port``. A wildcard bind
    (0.0.0.0, ::) is reached by the machine's name, not by the wildcard itself."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = socket.gethostname()
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{'https' if tls else 'http'}://{host}:{port}/"


def public_url(server: ServerConfig, environ: Mapping[str, str] | None = None) -> str:
    """The link every notification carries: ``server.public_url`` when set, else the
    address actually served (``$SYSMON_SERVED_URL``, handed down by ``sysmon serve`` and
    ``sysmon server`` to their children), else ``server.host``/``server.port``."""
    if server.public_url:
        return server.public_url
    env = os.environ if environ is None else environ
    served = env.get(SERVED_URL_ENV)
    if served:
        return served
    return served_url(server.host, server.port, tls=server.tls)


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
    host: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="This machine's name in every store, the hosts list and alerts "
        "(the host label of each sample; default: the machine's hostname)",
    )

    @property
    def host_name(self) -> str:
        """``host``, else the machine's hostname: the one name the stores (``host``
        label), forwarding, ``/api/v1/hosts`` and alert messages use for this agent."""
        return self.host or socket.gethostname()


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_range_seconds: int = Field(default=3600, ge=1)
    max_points: int = Field(default=1000, ge=10, le=10_000)
    current_process_rows: int = Field(default=20, ge=0, le=200)
    store_threads: int = Field(
        default=4, ge=1, le=64, description="Worker threads reading the store at once"
    )
    live_window_seconds: int = Field(
        default=900,
        ge=0,
        le=86_400,
        description="Newest raw seconds the server keeps in memory from the live ticks "
        "(SQLite only) to answer recent raw range queries without a store read; 0: off",
    )


class LoggingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: str = Field(
        default="INFO",
        description="sysmon's own log level; other libraries log warnings and errors only",
    )
    file: str | None = Field(
        default=None,
        description="Also write JSON lines (one per record, access log included) to this "
        "path; each process writes its own file, its role before the extension "
        "(sysmon.jsonl -> sysmon.server.jsonl, sysmon.agent.jsonl)",
    )
    file_max_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Rotate the JSON file at this size"
    )
    file_backups: int = Field(
        default=5, ge=0, le=100, description="Rotated JSON files kept (.1 ... .N)"
    )

    @field_validator("level", mode="before")
    @classmethod
    def _known_level(cls, value: object) -> str:
        text = str(value).strip().upper() if isinstance(value, str) else ""
        if text not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}: use one of {', '.join(LOG_LEVELS)}")
        return text


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SYSMON_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    forward: ForwardList = Field(
        default_factory=list,
        description="Remote backends that also receive every tick, each through a "
        "bounded on-disk queue (sysmon.agent.forward_config)",
    )
    relational: RelationalConfig = Field(default_factory=RelationalConfig)
    collection: CollectionConfig = Field(default_factory=CollectionConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    collectors: dict[str, dict[str, Any]] = Field(default_factory=dict)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    tasks: TasksConfig = Field(default_factory=TasksConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)

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

    @model_validator(mode="after")
    def _rules_match_the_collectors(self) -> Settings:
        """Alert rules may only name metrics, fields and label keys the collectors
        declare; checked here, the one place that knows both the rules and
        ``collection.plugins`` (``sysmon.catalog``). Raises ``ConfigError`` naming the rule."""
        from sysmon.alerts.config import check_rules
        from sysmon.catalog import metric_catalog
        from sysmon.collectors.registry import discover

        check_rules(self.alerts, metric_catalog(discover(plugins=self.collection.plugins)))
        return self

    @model_validator(mode="after")
    def _redis_backs_rate_limits(self) -> Settings:
        """``redis.url`` also stores the rate limits, unless
        ``server.security.rate_limits.storage`` was set explicitly (``sysmon.fanout_config``)."""
        limits = self.server.security.rate_limits
        url = self.redis.resolved_url()
        if url is not None and "storage" not in limits.model_fields_set:
            if url.startswith("unix://"):
                url = "redis+unix://" + url.removeprefix("unix://")  # the limits library's name
            self.server.security.rate_limits = limits.model_copy(update={"storage": url})
        return self


def config_error(exc: ValidationError) -> ConfigError:
    """The first problem of a pydantic error as a ``ConfigError`` for its dotted key."""
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = len(exc.errors()) - 1
    if more:
        others = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[1:])
        msg = f"{msg} (and {more} more: {others})"
    return ConfigError(key, msg)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping: PyYAML keeps
    the last one silently, so a second ``port:`` further down would quietly win."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.paths: dict[int, str] = {}

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        prefix = self.paths.get(id(node), "")
        seen: dict[object, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *anchor`` may be overridden on purpose
            key = self.construct_object(key_node, deep=True)
            dotted = f"{prefix}{key}"
            line = key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in seen:
                raise ConfigError(
                    dotted, f"duplicate key (line {line}; first written on line {seen[key]})"
                )
            if isinstance(key, Hashable):
                seen[key] = line
            self._name_children(value_node, f"{dotted}.")
        return super().construct_mapping(node, deep=deep)

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        prefix = self.paths.get(id(node), "")
        for index, item in enumerate(node.value):
            self._name_children(item, f"{prefix}{index}.")
        return super().construct_sequence(node, deep=deep)

    def _name_children(self, node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.paths.setdefault(id(node), prefix)


def _load_yaml(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "config file not found") from exc
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), f"not UTF-8 text: {exc.reason}") from exc
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"invalid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "top level must be a mapping of sections")
    _refuse_inline_secrets(data)
    refuse_inline_passwords(data)
    return data


# Channel keys that hold a secret, and the key that names its environment variable.
_INLINE_SECRETS = {"url": "url_env", "password": "password_env"}


def _refuse_inline_secrets(data: Mapping[str, Any]) -> None:
    """Secrets come from the environment, never from the file (a config file is copied,
    committed and pasted into bug reports): an alert channel's ``url:`` or ``password:``
    in the file is refused, pointing at its ``*_env`` key. The settings' own environment
    override (``SYSMON_ALERTS__CHANNELS__<NAME>__URL``) still works."""
    alerts = data.get("alerts")
    channels = alerts.get("channels") if isinstance(alerts, Mapping) else None
    if not isinstance(channels, Mapping):
        return
    for name, channel in channels.items():
        if not isinstance(channel, Mapping):
            continue
        for secret, env_key in _INLINE_SECRETS.items():
            if channel.get(secret) is not None:
                raise ConfigError(
                    f"alerts.channels.{name}.{secret}",
                    "secrets are not read from the config file: put it in an environment "
                    f"variable and name that variable with {env_key} "
                    f"(e.g. {env_key}: SYSMON_{str(name).upper()}_{secret.upper()})",
                )


def config_path_from_env(environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    value = env.get(CONFIG_ENV)
    if value:
        return Path(value)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


_SETTINGS_FIELD = re.compile(r'field "([^"]+)"')


def _env_json_error(exc: SettingsError, environ: Mapping[str, str]) -> ConfigError:
    """pydantic-settings' ``SettingsError`` (unparsable JSON in ``SYSMON_SERVER`` and the
    like) as a ``ConfigError`` naming the key and the variable (never its value)."""
    found = _SETTINGS_FIELD.search(str(exc))
    field = found.group(1) if found else "<environment>"
    prefix = f"SYSMON_{field}".upper()
    for name, value in sorted(environ.items()):
        upper = name.upper()
        key = upper.removeprefix("SYSMON_").lower().replace("__", ".")
        # Only complex values are parsed as JSON: the culprit is the section's own
        # variable or a nested one for a list or object key (or holding one).
        if upper != prefix and not (
            upper.startswith(prefix + "__")
            and (value.lstrip()[:1] in ("[", "{") or _complex_key(key.split(".")))
        ):
            continue
        try:
            json.loads(value)
        except ValueError as bad:
            hint = ' (a list is written as JSON, e.g. \'["a", "b"]\')' if _list_key(key) else ""
            return ConfigError(key, f"environment variable {name} is not valid JSON{hint}: {bad}")
    cause = exc.__cause__
    detail = f": {cause}" if cause is not None else ""
    return ConfigError(field, f"cannot read it from the environment{detail}")


def _key_annotation(path: Sequence[str]) -> Any:
    """The type annotation of the settings key at ``path`` (None if there is none)."""
    model: Any = Settings
    annotation: Any = None
    for part in path:
        fields = getattr(model, "model_fields", None)
        if not isinstance(fields, dict) or part not in fields:
            return None
        annotation = fields[part].annotation
        model = annotation
    return annotation


def _key_type(path: Sequence[str]) -> type | None:
    """The container or model type of the settings key at ``path`` (``list`` for
    ``list[str]``), None for anything else."""
    annotation = _key_annotation(path)
    origin = typing.get_origin(annotation) or annotation
    return origin if isinstance(origin, type) else None


def _complex_key(path: Sequence[str]) -> bool:
    """Whether pydantic-settings reads the key at ``path`` from the environment as JSON."""
    kind = _key_type(path)
    return kind is not None and issubclass(kind, (list, dict, tuple, set, BaseModel))


def _list_key(key: str) -> bool:
    kind = _key_type(key.split("."))
    return kind is not None and issubclass(kind, (list, tuple, set))


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from ``path`` (YAML), the environment, then ``overrides``."""
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    for key, value in overrides.items():
        data[key] = value
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise config_error(exc) from None
    except SettingsError as exc:
        raise _env_json_error(exc, os.environ) from None


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def check_writable_file(key: str, path: Path) -> None:
    """``path`` can be created or written by this user: it is a writable file, or it does
    not exist and its directory (or the nearest existing ancestor, which the agent
    creates the rest of) is a writable directory. SQLite also writes ``-wal`` and
    ``-shm`` files beside the database, so the directory must be writable either way."""
    path = path.expanduser().absolute()
    if path.is_dir():
        raise ConfigError(key, f"{path} is a directory, not a file")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(key, f"{path} is not writable by user {_user()}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(key, f"cannot create {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        verb = "write in" if folder == path.parent else "create directories in"
        raise ConfigError(key, f"cannot {verb} {folder}: not writable by user {_user()}")


def check_tls_files(server: ServerConfig) -> None:
    """``server.security.ssl_certfile``/``ssl_keyfile``, when set, are readable files (that
    both or neither are set is the model's own check)."""
    security = server.security
    for name, value in (
        ("ssl_certfile", security.ssl_certfile),
        ("ssl_keyfile", security.ssl_keyfile),
    ):
        if value and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            raise ConfigError(
                f"server.security.{name}", f"{value} is not a readable file for user {_user()}"
            )
