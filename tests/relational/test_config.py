"""``relational.url``: PostgreSQL only, never with a password from the config file; the
password comes from the environment or a file, and an unreadable file says so."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sysmon.config import load_settings
from sysmon.errors import ConfigError
from sysmon.relational.config import RelationalConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_default_is_the_sqlite_files() -> None:
    assert load_settings(None).relational.resolved_url() is None


def test_a_password_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "relational:\n  url: postgresql://sysmon:hunter2@db/sysmon\n")
    with pytest.raises(ConfigError, match=r"relational\.url: secrets are not read") as caught:
        load_settings(path)
    assert "hunter2" not in str(caught.value)


def test_the_password_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "relational:\n  url: postgresql://sysmon@db:5432/sysmon\n")
    monkeypatch.setenv("SYSMON_RELATIONAL_PASSWORD", "p@ss:w/rd")
    relational = load_settings(path).relational
    assert relational.url == "postgresql+psycopg://sysmon@db:5432/sysmon"
    assert relational.resolved_url() == "postgresql+psycopg://sysmon:p%40ss%3Aw%2Frd@db:5432/sysmon"
    assert "p@ss" not in repr(load_settings(path))


def test_the_whole_url_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSMON_RELATIONAL__URL", "postgresql://u:pw@h/d")
    assert load_settings(None).relational.resolved_url() == "postgresql+psycopg://u:pw@h/d"


def test_the_password_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    config = RelationalConfig(url="postgresql://u@h/d", password_file=str(secret))
    assert config.resolved_url({"SYSMON_RELATIONAL_PASSWORD": "env"}) == (
        "postgresql+psycopg://u:from-file@h/d"
    )
    missing = RelationalConfig(url="postgresql://u@h/d", password_file=str(tmp_path / "no"))
    with pytest.raises(ConfigError, match=r"relational\.password_file: cannot read"):
        missing.resolved_url({})
    assert RelationalConfig(url="postgresql://u@h/d").resolved_url({}) == (
        "postgresql+psycopg://u@h/d"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/d", "scheme 'mysql' is not supported"),
        ("sqlite:///x.db", "scheme 'sqlite' is not supported"),
        ("postgresql://u@h", "the URL names no database"),
        ("postgresql://u@h:notaport/d", "not a database URL"),
    ],
)
def test_bad_urls_name_the_key(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"relational.url: {message}")):
        load_settings(write(tmp_path, f"relational:\n  url: {url}\n"))
