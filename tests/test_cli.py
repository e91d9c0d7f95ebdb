"""The ``sysmon`` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        check=False,
    )


def test_config_check_accepts_the_shipped_config() -> None:
    result = run("--config", "config/config.yaml", "config", "check")
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("collection:\n  interval_seconds: 0\n", "collection.interval_seconds"),
        ("collectors:\n  cpu:\n    bogus: 1\n", "collectors.cpu.bogus"),
        ("collectors:\n  gpu: {}\n", "collectors.gpu"),
        ("collectors:\n  processes:\n    top_n: many\n", "collectors.processes.top_n"),
        ("server:\n  port: 0\n", "server.port"),
    ],
)
def test_config_check_names_the_bad_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    result = run("--config", str(path), "config", "check")
    assert result.returncode == 2
    assert f"config error: {key}" in result.stderr
    assert "Traceback" not in result.stderr


def test_env_override_is_checked_too() -> None:
    result = run("config", "check", env={"SYSMON_COLLECTION__INTERVAL_SECONDS": "120"})
    assert result.returncode == 2
    assert "collection.interval_seconds" in result.stderr


def test_collect_once_prints_one_json_snapshot() -> None:
    result = run("collect", "--once", "--wait", "0.3")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["metrics"]["memory"]["total"]["total_bytes"] > 0
    assert 0 <= doc["metrics"]["cpu"]["total"]["percent"] <= 100
    assert doc["processes"]


def test_config_check_requires_channel_secrets_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("alerts:\n  channels:\n    slack:\n      type: slack\n")
    missing = run("--config", str(path), "config", "check")
    assert missing.returncode == 2
    assert "alerts.channels.slack.url_env" in missing.stderr
    assert "SYSMON_SLACK_WEBHOOK_URL" in missing.stderr
    secret = "http://127.0.0.1:9/services/T000/B000/very-secret-token"
    present = run(
        "--config", str(path), "config", "check", env={"SYSMON_SLACK_WEBHOOK_URL": secret}
    )
    assert present.returncode == 0, present.stderr
    assert "very-secret-token" not in present.stdout + present.stderr
