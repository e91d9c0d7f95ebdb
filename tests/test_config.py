from __future__ import annotations

from pathlib import Path

import pytest

from app.config import load_settings
from app.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_repository_config_is_valid_and_matches_spec_defaults() -> None:
    settings = load_settings(Path("config/config.yaml"))
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8000
    assert settings.collection.interval_seconds == 1
    assert [(t.resolution, t.keep) for t in settings.retention.tiers] == [
        ("raw", "1d"),
        ("1m", "7d"),
        ("5m", "30d"),
        ("1h", "365d"),
    ]


def test_defaults_without_file_bind_localhost() -> None:
    settings = load_settings(None)
    assert settings.server.host == "127.0.0.1"
    assert settings.database.backend == "sqlite"


@pytest.mark.parametrize("interval", [0, 61, -1, "fast"])
def test_interval_out_of_range_names_the_key(tmp_path: Path, interval: object) -> None:
    path = write(tmp_path, f"collection:\n  interval_seconds: {interval}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "collection.interval_seconds"


@pytest.mark.parametrize("interval", [1, 60, 15])
def test_interval_in_range(tmp_path: Path, interval: int) -> None:
    path = write(tmp_path, f"collection:\n  interval_seconds: {interval}\n")
    assert load_settings(path).collection.interval_seconds == interval


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  hots: 0.0.0.0\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "server.hots"
    assert "unknown key" in str(info.value)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == str(path)
    assert "invalid YAML" in info.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(write(tmp_path, "- a\n- b\n"))


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "collection:\n  interval_seconds: 10\nserver:\n  port: 9000\n")
    monkeypatch.setenv("SYSMON_COLLECTION__INTERVAL_SECONDS", "5")
    monkeypatch.setenv("SYSMON_DATABASE__PATH", "/tmp/elsewhere.db")
    settings = load_settings(path)
    assert settings.collection.interval_seconds == 5
    assert settings.database.path == "/tmp/elsewhere.db"
    assert settings.server.port == 9000


def test_bad_environment_value_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSMON_SERVER__PORT", "70000")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.key == "server.port"


def test_retention_tier_must_be_known(tmp_path: Path) -> None:
    path = write(tmp_path, "retention:\n  tiers:\n    - {resolution: 2m, keep: 1d}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key.startswith("retention.tiers.0")
