"""The ``alerts:`` section: defaults, rule validation naming the rule, durations."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sysmon.alerts.config import AlertsConfig, format_duration, parse_duration
from sysmon.alerts.rules import compile_rules
from sysmon.config import load_settings
from sysmon.errors import ConfigError


def test_defaults_are_exactly_the_three_spec_rules() -> None:
    rules = [
        (r.name, r.metric, r.operator, r.threshold, r.for_, r.selector)
        for r in AlertsConfig().rules
    ]
    assert rules == [
        ("cpu_high", "cpu.percent", ">", 80.0, 300.0, {}),
        ("memory_high", "memory.percent", ">", 90.0, 0.0, {}),
        ("disk_high", "disk.percent", ">", 85.0, 0.0, {"mount": "any"}),
    ]
    assert AlertsConfig().repeat_interval == 4 * 3600


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("4h", 14400.0),
     ("7d", 604800.0), ("2w", 1209600.0), ("250ms", 0.25), ("45", 45.0), (10, 10.0)],
)  # fmt: skip
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", "m5", "5 m m", "-5m", "1h-3m", True, None, "five"])
def test_invalid_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [0.0, 1.0, 59.0, 60.0, 300.0, 5400.0, 90061.0, 0.5])
def test_format_duration_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def _rules(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"rules": list(rules), **extra}


GOOD = {"name": "ok", "metric": "cpu.percent", "threshold": 50}


@pytest.mark.parametrize(
    ("bad_rule", "key", "message"),
    [
        ({"for": "5 minutes"}, "alerts.rules.1.for", "invalid duration"),
        ({"metric": "cpu.precent"}, "alerts.rules.1.metric", "unknown field 'precent'"),
        ({"metric": "gpu.percent"}, "alerts.rules.1.metric", "unknown metric 'gpu'"),
        ({"metric": "cpu"}, "alerts.rules.1.metric", "<metric>.<field>"),
        ({"operator": "=>"}, "alerts.rules.1.operator", ""),
        ({"severity": "fatal"}, "alerts.rules.1.severity", ""),
        ({"threshold": "high"}, "alerts.rules.1.threshold", ""),
        ({"recovery_for": "soon"}, "alerts.rules.1.recovery_for", "invalid duration"),
        ({"treshold": 5}, "alerts.rules.1.treshold", "unknown key"),
        ({"selector": {"mount": "/"}}, "alerts.rules.1.selector", "selector key 'mount'"),
        ({"recovery_threshold": 95}, "alerts.rules.1", "rule 'bad': recovery_threshold"),
        ({"channels": ["pager"]}, "alerts.rules.1.channels", "rule 'bad': unknown channel"),
        ({"name": "ok"}, "alerts.rules.1.name", "rule 'ok': duplicate name"),
    ],
)
def test_a_bad_rule_is_a_config_error_naming_the_rule(
    bad_rule: dict[str, Any], key: str, message: str
) -> None:
    rule = {"name": "bad", "metric": "cpu.percent", "threshold": 90, **bad_rule}
    with pytest.raises(ConfigError) as info:
        load_settings(alerts=_rules(GOOD, rule))
    assert info.value.key == key
    assert message in info.value.message


def test_validation_error_loc_has_the_rule_index() -> None:
    with pytest.raises(ValidationError) as info:
        AlertsConfig.model_validate(_rules(GOOD, {**GOOD, "name": "x", "for": "5q"}))
    assert info.value.errors()[0]["loc"] == ("rules", 1, "for")


def test_channel_validation() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(alerts={"channels": {"mail": {"type": "email", "host": "h", "to": ["x"],
                                                    "from": "a@b.c"}}})  # fmt: skip
    assert info.value.key.startswith("alerts.channels.mail")
    with pytest.raises(ConfigError) as info:
        load_settings(alerts={"channels": {"hook": {"type": "webhook", "url_env": ""}}})
    assert "url_env" in info.value.message
    with pytest.raises(ConfigError) as info:
        load_settings(alerts={"channels": {"x": {"type": "pager"}}})
    assert info.value.key.startswith("alerts.channels.x")


def test_rule_channels_default_to_every_enabled_channel() -> None:
    config = AlertsConfig.model_validate(
        {
            "rules": [GOOD, {**GOOD, "name": "only", "channels": ["b"]}],
            "channels": {
                "a": {"type": "webhook", "url_env": "A"},
                "b": {"type": "slack"},
                "c": {"type": "webhook", "url_env": "C", "enabled": False},
            },
        }
    )
    assert [r.channels for r in compile_rules(config)] == [("a", "b"), ("b",)]


def test_yaml_section_round_trip(tmp_path: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "alerts:\n"
        "  repeat_interval: 2h\n"
        "  rules:\n"
        "    - name: root_full\n"
        "      metric: disk.percent\n"
        "      operator: '>='\n"
        "      threshold: 95\n"
        "      for: 30s\n"
        "      severity: critical\n"
        "      selector: {mount: /}\n"
        "      recovery_threshold: 90\n"
        "      recovery_for: 5m\n"
        "      labels: {team: ops}\n",
        encoding="utf-8",
    )
    from sysmon.config import load_settings as load

    settings = load(path)
    (rule,) = settings.alerts.rules
    assert (rule.for_, rule.recovery_for, rule.recovery_threshold) == (30.0, 300.0, 90.0)
    assert settings.alerts.repeat_interval == 7200.0
    assert rule.labels == {"team": "ops"}
