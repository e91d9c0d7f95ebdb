"""Alert rules and notification channels: the ``alerts:`` section of ``config/config.yaml``.

Everything is validated when settings load, so a typo fails the start-up with a
``ConfigError`` whose key names the rule (``alerts.rules.1.for``) instead of producing a
rule that silently never fires. The models check each rule's own values; which metrics,
fields and selector keys exist comes from the collectors' declarations
(``check_rules`` against ``sysmon.catalog``, run by ``Settings``), never from a list here.

Secrets are never written in the file: a channel names the environment variable that
holds them (``password_env``, ``url_env``) or receives the value through the settings'
environment override (``SYSMON_ALERTS__CHANNELS__SLACK__URL``); either way they are
``SecretStr`` so ``repr`` and logs show ``**********``.

Durations are read by ``sysmon.timeparse.parse_duration``, the one grammar of every
duration in the configuration: ``"500ms"``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"7d"``,
``"2w"`` or a bare number of seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sysmon.errors import ConfigError
from sysmon.timeparse import format_duration, parse_duration

if TYPE_CHECKING:
    from sysmon.catalog import MetricCatalog

Operator = Literal[">", ">=", "<", "<="]
Severity = Literal["warning", "critical"]


def _positive(value: object) -> float:
    return parse_duration(value, above=0)


_as_text = PlainSerializer(format_duration, return_type=str)

Duration = Annotated[float, BeforeValidator(parse_duration), _as_text]
"""Seconds as a float in Python; a duration string in YAML and JSON (``sysmon.timeparse``)."""

PositiveDuration = Annotated[float, BeforeValidator(_positive), _as_text]
"""A ``Duration`` that must be greater than zero (an interval, a lifetime)."""


class RuleConfig(BaseModel):
    """One threshold rule, evaluated per series on every collection tick.

    ``selector`` picks the series: its keys are the label keys a series must have (and
    only those), its values a value or glob pattern, ``"any"`` (= ``"*"``) meaning one
    alert per series. The empty selector is the host totals (``cpu.percent`` of the
    whole machine, not per core). ``{"mount": "any"}`` is one alert per mount.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    metric: str = Field(description='"<metric>.<field>", e.g. "cpu.percent"')
    operator: Operator = ">"
    threshold: float
    for_: Duration = Field(default=0.0, alias="for")
    severity: Severity = "warning"
    selector: dict[str, str] = Field(default_factory=dict)
    recovery_threshold: float | None = Field(
        default=None,
        description="Hysteresis: the value must get past this (not just back over the "
        "threshold) before the alert can resolve. Default: the threshold itself.",
    )
    recovery_for: Duration = Field(
        default=60.0,
        description="How long the value must stay recovered before the alert resolves; "
        "a value hovering at the threshold re-breaches within it and does not flap.",
    )
    repeat_interval: PositiveDuration | None = Field(
        default=None, description="Overrides alerts.repeat_interval for this rule"
    )
    labels: dict[str, str] = Field(default_factory=dict)
    channels: list[str] | None = Field(
        default=None, description="Channel names; default every enabled channel"
    )
    description: str = ""

    @field_validator("metric")
    @classmethod
    def _metric_dot_field(cls, value: str) -> str:
        """Only the shape: whether the metric and field exist depends on the collectors
        (``collection.plugins`` included), so ``check_rules`` checks that against them."""
        metric, sep, fld = value.partition(".")
        if not sep or not fld or not metric:
            raise ValueError('expected "<metric>.<field>", e.g. "cpu.percent"')
        return value

    @model_validator(mode="after")
    def _consistent(self) -> RuleConfig:
        if self.recovery_threshold is not None:
            above = self.operator in (">", ">=")
            if above and self.recovery_threshold > self.threshold:
                raise ValueError(
                    f"rule {self.name!r}: recovery_threshold must be <= threshold for "
                    f"operator {self.operator!r}"
                )
            if not above and self.recovery_threshold < self.threshold:
                raise ValueError(
                    f"rule {self.name!r}: recovery_threshold must be >= threshold for "
                    f"operator {self.operator!r}"
                )
        return self


class _ChannelBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=3, ge=0, le=20, description="Attempts after the first")
    backoff_seconds: float = Field(
        default=2.0, ge=0, le=600, description="First retry delay; doubles per attempt"
    )
    send_resolved: bool = True
    queue_size: int = Field(default=1000, ge=1, le=100_000)


def _secret_from(
    direct: SecretStr | None, env_name: str | None, key: str, environ: Mapping[str, str]
) -> str:
    """The secret value: the direct one, else the named environment variable."""
    if direct is not None and direct.get_secret_value():
        return direct.get_secret_value()
    if env_name:
        value = environ.get(env_name, "")
        if value:
            return value
        raise ConfigError(key, f"environment variable {env_name} is not set")
    raise ConfigError(key, "no value configured")


class EmailChannelConfig(_ChannelBase):
    type: Literal["email"]
    host: str
    port: int | None = Field(default=None, ge=1, le=65535, description="Default 587/465/25")
    security: Literal["starttls", "tls", "none"] = "starttls"
    verify_tls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = "SYSMON_SMTP_PASSWORD"
    from_: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[sysmon]"

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for addr in value:
            if "@" not in addr:
                raise ValueError(f"not an e-mail address: {addr!r}")
        return value

    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"starttls": 587, "tls": 465, "none": 25}[self.security]

    def resolve_password(self, name: str, environ: Mapping[str, str]) -> str | None:
        """``None`` = no AUTH. Without a username there is never a password to look up."""
        if self.username is None:
            return None
        return _secret_from(
            self.password,
            self.password_env,
            f"alerts.channels.{name}.password_env",
            environ,
        )


class _UrlChannel(_ChannelBase):
    url: SecretStr | None = None
    url_env: str | None = None

    @model_validator(mode="after")
    def _has_url(self) -> _UrlChannel:
        if self.url is None and not self.url_env:
            raise ValueError("set url_env (the environment variable holding the URL) or url")
        return self

    def resolve_url(self, name: str, environ: Mapping[str, str]) -> str:
        url = _secret_from(self.url, self.url_env, f"alerts.channels.{name}.url_env", environ)
        if not url.startswith(("http://", "https://")):
            # Never echo the value: it is a secret.
            raise ConfigError(f"alerts.channels.{name}.url", "must be an http(s) URL")
        return url


class SlackChannelConfig(_UrlChannel):
    type: Literal["slack"]
    url_env: str | None = "SYSMON_SLACK_WEBHOOK_URL"


class WebhookChannelConfig(_UrlChannel):
    type: Literal["webhook"]
    url_env: str | None = "SYSMON_WEBHOOK_URL"


class AlertmanagerChannelConfig(_UrlChannel):
    """Prometheus Alertmanager (``POST /api/v2/alerts``), so a team keeps its routing,
    grouping, inhibition and silences. The URL is Alertmanager's base address
    (``http://alertmanager:9093/``; a path ending in ``/api/v2/alerts`` is used as is).

    Alertmanager resolves an alert nobody re-posts (``resolve_timeout``), so, like
    Prometheus, the channel re-posts its firing alerts every ``resend_interval`` with
    ``endsAt`` four intervals ahead: if sysmon stops, they resolve on their own.
    """

    type: Literal["alertmanager"]
    url_env: str | None = "SYSMON_ALERTMANAGER_URL"
    resend_interval: PositiveDuration = Field(
        default=60.0, description="How often firing alerts are re-posted to Alertmanager"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra labels on every alert (env: prod, ...)"
    )


ChannelConfig = Annotated[
    EmailChannelConfig | SlackChannelConfig | WebhookChannelConfig | AlertmanagerChannelConfig,
    Field(discriminator="type"),
]


def default_rules() -> list[RuleConfig]:
    """The spec's three rules: CPU > 80 % for 5 min, memory > 90 %, disk > 85 % per mount."""
    return [
        RuleConfig.model_validate(
            {
                "name": "cpu_high",
                "metric": "cpu.percent",
                "operator": ">",
                "threshold": 80,
                "for": "5m",
                "severity": "warning",
                "description": "CPU usage above 80 % for 5 minutes",
            }
        ),
        RuleConfig.model_validate(
            {
                "name": "memory_high",
                "metric": "memory.percent",
                "operator": ">",
                "threshold": 90,
                "for": "0s",
                "severity": "critical",
                "description": "Memory usage above 90 %",
            }
        ),
        RuleConfig.model_validate(
            {
                "name": "disk_high",
                "metric": "disk.percent",
                "operator": ">",
                "threshold": 85,
                "for": "0s",
                "severity": "critical",
                "selector": {"mount": "any"},
                "description": "Disk usage above 85 % on a mount",
            }
        ),
    ]


class AlertsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    repeat_interval: PositiveDuration = 4 * 3600.0
    history_keep: PositiveDuration = 90 * 86400.0
    stale_after: PositiveDuration = Field(
        default=300.0,
        description="A firing series missing from the data this long resolves",
    )
    rules: list[RuleConfig] = Field(default_factory=default_rules)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_references(self) -> AlertsConfig:
        errors: list[InitErrorDetails] = []
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "duplicate_rule",
                            "rule '{rule}': duplicate name (also rules.{first})",
                            {"rule": rule.name, "first": seen[rule.name]},
                        ),
                        loc=("rules", index, "name"),
                        input=rule.name,
                    )
                )
            seen.setdefault(rule.name, index)
            for channel in rule.channels or ():
                if channel not in self.channels:
                    errors.append(
                        InitErrorDetails(
                            type=PydanticCustomError(
                                "unknown_channel",
                                "rule '{rule}': unknown channel '{channel}'",
                                {"rule": rule.name, "channel": channel},
                            ),
                            loc=("rules", index, "channels"),
                            input=channel,
                        )
                    )
        if errors:
            raise ValidationError.from_exception_data("AlertsConfig", errors)
        return self

    def channels_for(self, rule: RuleConfig) -> list[str]:
        """Enabled channels a rule notifies (its own list, else every enabled channel)."""
        names = rule.channels if rule.channels is not None else list(self.channels)
        return [n for n in names if self.channels[n].enabled]


def check_rules(config: AlertsConfig, catalog: MetricCatalog, prefix: str = "alerts") -> None:
    """Refuse a rule whose metric, field or selector key no collector declares.

    Such a rule could never fire. The catalog comes from the collectors' own
    declarations (``sysmon.catalog``), plugins included, so a plugin's metric is as
    alertable as a built-in one without editing this module. Called when the settings
    load (``Settings``), where ``collection.plugins`` is known; the ``ConfigError`` names
    the rule's key (``alerts.rules.1.metric``, ``alerts.rules.1.selector``). A selector
    key must be one the *field* is emitted under (``disk.percent`` has ``mount``, not
    ``device``).
    """
    for index, rule in enumerate(config.rules):
        key = f"{prefix}.rules.{index}"
        metric, _, fld = rule.metric.partition(".")
        entry = catalog.metrics.get(metric)
        if entry is None:
            raise ConfigError(
                f"{key}.metric",
                f"rule {rule.name!r}: unknown metric {metric!r}; known: "
                + ", ".join(catalog.names()),
            )
        info = entry.field(fld)
        if info is None:
            raise ConfigError(
                f"{key}.metric",
                f"rule {rule.name!r}: unknown field {fld!r} of metric {metric!r}; known: "
                + ", ".join(i.field for i in entry.fields),
            )
        for label in rule.selector:
            if label not in info.labels:
                allowed = ", ".join(info.labels) or "none, the field has totals only"
                raise ConfigError(
                    f"{key}.selector",
                    f"rule {rule.name!r}: selector key {label!r} does not exist for "
                    f"{rule.metric} (allowed: {allowed})",
                )


def resolve_environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


__all__ = [
    "AlertmanagerChannelConfig",
    "AlertsConfig",
    "ChannelConfig",
    "Duration",
    "EmailChannelConfig",
    "Operator",
    "PositiveDuration",
    "RuleConfig",
    "Severity",
    "SlackChannelConfig",
    "WebhookChannelConfig",
    "check_rules",
    "default_rules",
    "format_duration",
    "parse_duration",
]
