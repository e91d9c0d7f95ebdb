"""The README's examples stay true: its YAML validates and its endpoints exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sysmon.alerts.config import AlertsConfig
from sysmon.config import load_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_alert_channel_example_is_valid() -> None:
    block = re.search(r"```yaml\n(alerts:\n.*?)```", README, re.S)
    assert block is not None
    config = AlertsConfig.model_validate(yaml.safe_load(block.group(1))["alerts"])
    assert set(config.channels) == {"email", "slack", "hook"}


def test_readme_env_overrides_are_real_keys(monkeypatch: object) -> None:
    names = set(re.findall(r"SYSMON_([A-Z_]+__[A-Z_]+)", README))
    assert names
    for name in names:
        section, key = name.lower().split("__", 1)
        settings = load_settings(None)
        assert hasattr(getattr(settings, section), key), name
