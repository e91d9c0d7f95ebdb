"""``open_store`` picks the backend named by ``database.backend``; the database settings
refuse what could not work (no URL, credentials in the URL, an unknown backend)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.errors import ConfigError
from sysmon.storage.factory import BACKENDS, open_store
from sysmon.storage.sqlite import SQLiteStore
from tests.storage.helpers import T0


def settings(tmp_path: Path, **database: object) -> Settings:
    return load_settings(None, database={"path": str(tmp_path / "sysmon.db"), **database})


@pytest.mark.parametrize("readonly", [False, True])
def test_sqlite_is_the_default_and_honours_readonly(tmp_path: Path, readonly: bool) -> None:
    s = settings(tmp_path)
    assert s.database.backend == "sqlite" and s.database.url is None
    store = open_store(s, FakeClock(T0), readonly=readonly)
    assert isinstance(store, SQLiteStore)
    caps = store.capabilities()
    assert caps.writable is not readonly
    assert caps.finest_step_seconds == s.collection.interval_seconds
    assert [r.name for r in caps.resolutions] == [t.resolution for t in s.retention.tiers]
    assert not (tmp_path / "sysmon.db").exists()  # built, not opened


def test_victoriametrics_is_built_from_the_url(tmp_path: Path) -> None:
    pytest.importorskip("sysmon.storage.victoria")
    s = settings(tmp_path, backend="victoriametrics", url="http://127.0.0.1:1")
    store = open_store(s, FakeClock(T0), readonly=True)
    assert type(store).__name__ == "VictoriaStore"
    assert store.capabilities().backend == store.stats().backend
    assert store.capabilities().process_tables is False


def test_a_missing_backend_module_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sysmon.storage.victoria", None)  # import fails
    s = settings(tmp_path, backend="victoriametrics", url="http://127.0.0.1:8428")
    with pytest.raises(ConfigError) as info:
        open_store(s, FakeClock(T0), readonly=False)
    assert info.value.key == "database.backend"
    assert "'victoriametrics' is not available" in info.value.message
    assert "sysmon.storage.victoria" in info.value.message


def test_an_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, backend="cassandra")
    assert info.value.key == "database.backend"
    # A settings object built without validation is refused by the factory itself.
    s = settings(tmp_path)
    bad = s.model_copy(update={"database": s.database.model_copy(update={"backend": "cassandra"})})
    with pytest.raises(ConfigError) as info:
        open_store(bad, FakeClock(T0), readonly=False)
    assert info.value.key == "database.backend"
    assert "unknown backend 'cassandra'" in info.value.message
    assert {"sqlite", "victoriametrics"} <= set(BACKENDS)


def test_a_remote_backend_needs_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, backend="victoriametrics")
    assert info.value.key == "database.url"
    assert "required with backend 'victoriametrics'" in info.value.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://vm:8428", "http:// or https://"),
        ("http://", "http:// or https://"),
        ("http://admin:hunter2@vm:8428", "credentials are not read from the config"),
    ],
)
def test_bad_urls_are_refused_without_echoing_secrets(
    tmp_path: Path, url: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        settings(tmp_path, backend="victoriametrics", url=url)
    assert info.value.key == "database.url"
    assert message in info.value.message
    assert "hunter2" not in str(info.value)


def test_the_url_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSMON_DATABASE__URL", "https://vm.internal:8428")
    s = load_settings(None, database={"backend": "victoriametrics"})
    assert s.database.url == "https://vm.internal:8428"
