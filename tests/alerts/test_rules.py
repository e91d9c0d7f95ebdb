"""Selector matching and breach/recovery comparisons of compiled rules."""

from __future__ import annotations

from typing import Any

import pytest

from sysmon.alerts.config import AlertsConfig
from sysmon.alerts.rules import CompiledRule, alert_labels, compile_rules
from sysmon.models import Labels


def compiled(**rule: Any) -> CompiledRule:
    data = {"name": "r", "metric": "disk.percent", "threshold": 80, **rule}
    return compile_rules(AlertsConfig.model_validate({"rules": [data]}))[0]


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ({}, (), True),
        ({}, (("mount", "/"),), False),
        ({"mount": "any"}, (("mount", "/"),), True),
        ({"mount": "*"}, (("mount", "/var"),), True),
        ({"mount": "any"}, (), False),
        ({"mount": "any"}, (("device", "sda"),), False),
        ({"mount": "/"}, (("mount", "/"),), True),
        ({"mount": "/"}, (("mount", "/var"),), False),
        ({"mount": "/data*"}, (("mount", "/data2"),), True),
        ({"device": "nvme?n1"}, (("device", "nvme0n1"),), True),
    ],
)
def test_selector(selector: dict[str, str], labels: Labels, matches: bool) -> None:
    rule = compiled(selector=selector)
    assert rule.matches(labels) is matches
    assert rule.matches(labels) is matches  # cached answer is the same


@pytest.mark.parametrize(
    ("operator", "recovery", "value", "breaches", "recovered"),
    [
        (">", None, 80.0, False, True),
        (">", None, 80.1, True, False),
        (">", 70, 75.0, False, False),
        (">", 70, 70.0, False, True),
        (">=", None, 80.0, True, False),
        (">=", 70, 70.0, False, False),
        (">=", 70, 69.9, False, True),
        ("<", 90, 85.0, False, False),
        ("<", 90, 90.0, False, True),
        ("<=", None, 80.0, True, False),
        ("<=", None, 80.1, False, True),
    ],
)
def test_breach_and_recovery(
    operator: str, recovery: float | None, value: float, breaches: bool, recovered: bool
) -> None:
    rule = compiled(operator=operator, recovery_threshold=recovery)
    assert rule.breaches(value) is breaches
    assert rule.recovered(value) is recovered


def test_alert_labels_for_silences() -> None:
    rule = compiled(labels={"team": "ops"}, selector={"mount": "any"}, severity="critical")
    assert alert_labels(rule, (("mount", "/"),)) == {
        "rule": "r",
        "severity": "critical",
        "metric": "disk.percent",
        "team": "ops",
        "mount": "/",
    }
