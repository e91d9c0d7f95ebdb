from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sysmon.config import (
    SERVED_URL_ENV,
    check_tls_files,
    check_writable_file,
    forwarded_allow_ips,
    load_settings,
    public_url,
    served_url,
)
from sysmon.errors import ConfigError


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


def test_uvloop_must_be_installed_to_be_chosen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvloop is an extra (``sysmon[uvloop]``): asked for without it, the key is named at
    load, not a traceback from uvicorn once the server starts."""
    path = write(tmp_path, "server:\n  event_loop: uvloop\n")
    assert load_settings(path).server.event_loop == "uvloop"  # installed here (dev)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "server.event_loop"
    assert "pip install 'sysmon[uvloop]'" in info.value.message
    assert load_settings(None).server.event_loop == "asyncio"


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


# --- one duration grammar in every key that takes a duration -----------------------------

RULE = {"name": "r", "metric": "cpu.percent", "threshold": 50}


def _rule(**extra: object) -> dict[str, object]:
    return {"alerts": {"rules": [{**RULE, **extra}]}}


def _tiers(last_keep: object) -> dict[str, object]:
    keeps = ["1d", "7d", "30d", last_keep]
    tiers = [
        {"resolution": r, "keep": k} for r, k in zip(["raw", "1m", "5m", "1h"], keeps, strict=True)
    ]
    return {"retention": {"tiers": tiers}}


# (key, settings overrides for a value, how to read the seconds back)
DURATION_KEYS: list[tuple[str, Callable[[object], dict[str, Any]], Callable[[Any], float]]] = [
    ("alerts.rules.0.for", lambda v: _rule(**{"for": v}), lambda s: s.alerts.rules[0].for_),
    (
        "alerts.rules.0.recovery_for",
        lambda v: _rule(recovery_for=v),
        lambda s: s.alerts.rules[0].recovery_for,
    ),
    (
        "alerts.rules.0.repeat_interval",
        lambda v: _rule(repeat_interval=v),
        lambda s: s.alerts.rules[0].repeat_interval,
    ),
    (
        "alerts.repeat_interval",
        lambda v: {"alerts": {"repeat_interval": v}},
        lambda s: s.alerts.repeat_interval,
    ),
    (
        "alerts.history_keep",
        lambda v: {"alerts": {"history_keep": v}},
        lambda s: s.alerts.history_keep,
    ),
    (
        "alerts.stale_after",
        lambda v: {"alerts": {"stale_after": v}},
        lambda s: s.alerts.stale_after,
    ),
    ("retention.tiers.3.keep", _tiers, lambda s: s.retention.tiers[3].keep_seconds),
    (
        "retention.processes_every",
        lambda v: {"retention": {"processes_every": v}},
        lambda s: s.retention.processes_every_seconds,
    ),
]
KEY_IDS = [k for k, _, _ in DURATION_KEYS]


@pytest.mark.parametrize(("key", "make", "read"), DURATION_KEYS, ids=KEY_IDS)
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("7d", 604_800.0),
     ("2w", 1_209_600.0), ("45", 45.0), (120, 120.0)],
)  # fmt: skip
def test_every_duration_key_reads_the_one_grammar(
    key: str,
    make: Callable[[object], dict[str, Any]],
    read: Callable[[Any], float],
    text: object,
    seconds: float,
) -> None:
    assert read(load_settings(None, **make(text))) == seconds


@pytest.mark.parametrize(("key", "make", "read"), DURATION_KEYS, ids=KEY_IDS)
@pytest.mark.parametrize("bad", ["5 minutes", "1y", "-5m", "30m1h"])
def test_every_duration_key_refuses_with_the_one_message(
    key: str, make: Callable[[object], dict[str, Any]], read: Callable[[Any], float], bad: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, **make(bad))
    assert info.value.key == key
    assert info.value.message.startswith(f"invalid duration {bad!r}: use a number of seconds")


@pytest.mark.parametrize(
    ("key", "overrides"),
    [
        ("alerts.repeat_interval", {"alerts": {"repeat_interval": "0s"}}),
        ("alerts.history_keep", {"alerts": {"history_keep": 0}}),
        ("alerts.stale_after", {"alerts": {"stale_after": "0ms"}}),
        ("alerts.rules.0.repeat_interval", _rule(repeat_interval="0s")),
        ("retention.tiers.3.keep", _tiers("0s")),
    ],
)
def test_keys_with_a_lower_bound_say_so(key: str, overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, **overrides)
    assert info.value.key == key
    assert "must be greater than zero" in info.value.message


def test_existing_duration_spellings_keep_working(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "retention:\n  processes_every: 0s\n  tiers:\n"
        "    - {resolution: raw, keep: 1d}\n    - {resolution: 1m, keep: 12h}\n"
        "alerts:\n  repeat_interval: 4h\n  rules:\n"
        "    - {name: a, metric: cpu.percent, threshold: 9, for: 5m, recovery_for: 90}\n",
    )
    settings = load_settings(path)
    assert settings.retention.tiers[1].keep == "12h"
    assert settings.retention.processes_every_seconds == 0.0
    assert settings.alerts.repeat_interval == 14_400.0
    assert (settings.alerts.rules[0].for_, settings.alerts.rules[0].recovery_for) == (300.0, 90.0)


# --- what the file may not say ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("server:\n  port: 8001\n  host: 127.0.0.1\n  port: 8002\n", "server.port", (4, 2)),
        ("server: {}\nlogging: {}\nserver: {}\n", "server", (3, 1)),
        (
            "alerts:\n  rules:\n    - name: a\n      metric: cpu.percent\n"
            "      threshold: 1\n      threshold: 2\n",
            "alerts.rules.0.threshold",
            (6, 5),
        ),
        (
            "collectors:\n  processes:\n    top_n: 5\n    top_n: 6\n",
            "collectors.processes.top_n",
            (4, 3),
        ),
    ],
)
def test_duplicate_keys_are_refused_naming_key_and_lines(
    tmp_path: Path, text: str, key: str, lines: tuple[int, int]
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert info.value.key == key
    assert (
        info.value.message == f"duplicate key (line {lines[0]}; first written on line {lines[1]})"
    )


def test_yaml_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    text = (
        "alerts:\n  channels:\n    hook: &base {type: webhook, url_env: A, retries: 1}\n"
        "    hook2:\n      <<: *base\n      retries: 2\n"
    )
    settings = load_settings(write(tmp_path, text))
    assert settings.alerts.channels["hook2"].retries == 2


@pytest.mark.parametrize(
    ("channel", "key", "env_key"),
    [
        ("{type: webhook, url: 'http://127.0.0.1:9/hook'}", "alerts.channels.c.url", "url_env"),
        ("{type: slack, url: 'https://hooks.slack.com/x'}", "alerts.channels.c.url", "url_env"),
        (
            "{type: email, host: h, from: a@b.c, to: [x@y.z], username: u, password: hunter2}",
            "alerts.channels.c.password",
            "password_env",
        ),
    ],
)
def test_inline_secrets_are_refused_pointing_at_the_env_key(
    tmp_path: Path, channel: str, key: str, env_key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, f"alerts:\n  channels:\n    c: {channel}\n"))
    assert info.value.key == key
    assert "not read from the config file" in info.value.message
    assert f"{env_key}:" in info.value.message
    assert "hunter2" not in str(info.value) and "hooks.slack" not in str(info.value)


def test_secret_through_the_settings_environment_override_is_still_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSMON_ALERTS__CHANNELS__C__URL", "http://127.0.0.1:9/hook")
    settings = load_settings(write(tmp_path, "alerts:\n  channels:\n    c: {type: webhook}\n"))
    assert settings.alerts.channels["c"].resolve_url("c", {}) == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("given", "stored"),
    [("loud", None), ("LOUD", None), ("", None), ("debug", "DEBUG"), ("Warning", "WARNING"),
     ("INFO", "INFO"), ("critical", "CRITICAL")],
)  # fmt: skip
def test_log_level_is_validated_case_insensitively(
    tmp_path: Path, given: str, stored: str | None
) -> None:
    path = write(tmp_path, f"logging:\n  level: '{given}'\n")
    if stored is not None:
        assert load_settings(path).logging.level == stored
        return
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.key == "logging.level"
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in info.value.message


# --- environment JSON --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "key", "variable"),
    [
        ({"SYSMON_SERVER": "{bad"}, "server", "SYSMON_SERVER"),
        ({"SYSMON_COLLECTORS": "[1"}, "collectors", "SYSMON_COLLECTORS"),
        ({"SYSMON_SERVER__LIMITS": "{bad", "SYSMON_SERVER__PORT": "9000"}, "server.limits",
         "SYSMON_SERVER__LIMITS"),
        # A list key written as a bare value (not JSON), beside a plain string key that
        # pydantic-settings takes as it is (and so must not be blamed).
        ({"SYSMON_SERVER__FORWARDED_ALLOW_IPS": "10.0.0.1", "SYSMON_SERVER__HOST": "0.0.0.0"},
         "server.forwarded_allow_ips", "SYSMON_SERVER__FORWARDED_ALLOW_IPS"),
    ],
)  # fmt: skip
def test_unparsable_json_in_the_environment_names_key_and_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], key: str, variable: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.key == key
    assert f"environment variable {variable} is not valid JSON" in info.value.message


def test_json_section_in_the_environment_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSMON_SERVER", '{"port": 9100}')
    assert load_settings(None).server.port == 9100


# --- server.public_url: the link in every notification ----------------------------------


def test_public_url_default_is_the_configured_address() -> None:
    assert public_url(load_settings(None).server, {}) == "http://127.0.0.1:8000/"
    server = load_settings(None, server={"port": 8400}).server
    assert public_url(server, {}) == "http://127.0.0.1:8400/"


def test_public_url_default_prefers_the_address_actually_served() -> None:
    server = load_settings(None, server={"port": 8000}).server
    assert public_url(server, {SERVED_URL_ENV: "http://127.0.0.1:8400/"}) == (
        "http://127.0.0.1:8400/"
    )


def test_public_url_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    server = load_settings(None, server={"public_url": "https://mon.example.com"}).server
    assert server.public_url == "https://mon.example.com/"
    assert public_url(server, {SERVED_URL_ENV: "http://127.0.0.1:8400/"}) == (
        "https://mon.example.com/"
    )
    monkeypatch.setenv("SYSMON_SERVER__PUBLIC_URL", "https://proxy.example/sysmon/")
    assert public_url(load_settings(None).server, {}) == "https://proxy.example/sysmon/"


@pytest.mark.parametrize(
    ("host", "port", "tls", "url"),
    [
        ("127.0.0.1", 8400, False, "http://127.0.0.1:8400/"),
        ("localhost", 443, True, "https://localhost:443/"),
        ("::1", 8000, False, "http://[::1]:8000/"),
        ("0.0.0.0", 8000, False, f"http://{socket.gethostname()}:8000/"),
        ("::", 8000, False, f"http://{socket.gethostname()}:8000/"),
    ],
)
def test_served_url(host: str, port: int, tls: bool, url: str) -> None:
    assert served_url(host, port, tls=tls) == url


@pytest.mark.parametrize("bad", ["ftp://x/", "mon.example.com", "http://", "http://a b/"])
def test_public_url_must_be_http(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, server={"public_url": bad})
    assert info.value.key == "server.public_url"


def test_dashboard_url_is_a_deprecated_alias(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sysmon.config"):
        server = load_settings(None, server={"dashboard_url": "http://mon.example:8080"}).server
    assert server.public_url == "http://mon.example:8080/"
    assert server.dashboard_url == server.public_url
    assert "server.dashboard_url is deprecated" in caplog.text


def test_dashboard_url_and_public_url_together_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, server={"dashboard_url": "http://a/", "public_url": "http://b/"})
    assert info.value.key == "server.dashboard_url"


# --- server.forwarded_allow_ips: whose X-Forwarded-For is believed ---------------------
# (the real server's use of it: tests/security/test_forwarded_allow_ips.py)


def test_forwarded_allow_ips_default_is_a_proxy_on_this_machine() -> None:
    server = load_settings(None).server
    assert server.forwarded_allow_ips == ["127.0.0.1", "::1"]  # uvicorn's own default
    assert forwarded_allow_ips(server, {}) == ["127.0.0.1", "::1"]


def test_forwarded_allow_ips_reads_addresses_and_networks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "server:\n  forwarded_allow_ips: [' 10.0.0.2', 172.18.0.0/16, '::1', 'fd00::/8']\n",
    )
    server = load_settings(path).server
    assert server.forwarded_allow_ips == ["10.0.0.2", "172.18.0.0/16", "::1", "fd00::/8"]
    assert load_settings(
        None, server={"forwarded_allow_ips": ["*"]}
    ).server.forwarded_allow_ips == ["*"]
    assert load_settings(None, server={"forwarded_allow_ips": []}).server.forwarded_allow_ips == []


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        (["nginx"], "'nginx' is not an IP address or a CIDR network"),
        (["10.0.0.300"], "not an IP address or a CIDR network"),
        ([""], "not an IP address or a CIDR network"),
        (["10.0.0.1/8"], "has host bits set: write the network, 10.0.0.0/8"),
        (["*", "10.0.0.1"], "write it alone"),
    ],
)
def test_a_bad_forwarded_allow_ips_entry_names_the_key(entries: list[str], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, server={"forwarded_allow_ips": entries})
    assert info.value.key == "server.forwarded_allow_ips"
    assert says in info.value.message


def test_forwarded_allow_ips_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSMON_SERVER__FORWARDED_ALLOW_IPS", '["10.0.0.1", "10.1.0.0/16"]')
    assert load_settings(None).server.forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16"]
    monkeypatch.setenv("SYSMON_SERVER__FORWARDED_ALLOW_IPS", '["10.0.0.1/8"]')
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.key == "server.forwarded_allow_ips"


def test_uvicorns_variable_stands_in_only_while_the_key_is_unset(
    caplog: pytest.LogCaptureFixture,
) -> None:
    legacy = {"FORWARDED_ALLOW_IPS": "10.0.0.2, 10.1.0.0/16"}
    with caplog.at_level(logging.WARNING, logger="sysmon.config"):
        assert forwarded_allow_ips(load_settings(None).server, legacy) == [
            "10.0.0.2",
            "10.1.0.0/16",
        ]
    assert "move it to that key" in caplog.text
    # Set, even to the default, the key wins.
    for value in (["127.0.0.1", "::1"], ["10.9.9.9"]):
        server = load_settings(None, server={"forwarded_allow_ips": value}).server
        assert forwarded_allow_ips(server, legacy) == value
    with pytest.raises(ConfigError) as info:
        forwarded_allow_ips(load_settings(None).server, {"FORWARDED_ALLOW_IPS": "nginx"})
    assert info.value.key == "FORWARDED_ALLOW_IPS"


# --- files the service will need ---------------------------------------------------------


def test_database_path_in_a_new_directory_is_fine(tmp_path: Path) -> None:
    check_writable_file("database.path", tmp_path / "a" / "b" / "sysmon.db")


def test_database_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError) as info:
        check_writable_file("database.path", tmp_path / "file" / "data" / "sysmon.db")
    assert info.value.key == "database.path"
    assert f"{tmp_path / 'file'} is not a directory" in info.value.message


def test_database_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        check_writable_file("database.path", tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(ConfigError) as info:
        check_writable_file("database.path", folder / "sysmon.db")
    assert f"cannot write in {folder}: not writable by user" in info.value.message


def test_unwritable_directory_names_directory_and_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root nothing is unwritable: the permission answer is faked at os.access."""
    real_access = os.access
    folder = tmp_path / "ro"
    folder.mkdir()

    def access(path: Any, mode: int) -> bool:
        return False if Path(path) == folder else real_access(path, mode)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(ConfigError) as info:
        check_writable_file("database.path", folder / "data" / "sysmon.db")
    assert info.value.message.startswith(f"cannot create directories in {folder}")
    assert "not writable by user " in info.value.message


def test_tls_files_must_be_readable(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    security = {"ssl_certfile": str(cert), "ssl_keyfile": str(tmp_path / "missing.pem")}
    with pytest.raises(ConfigError) as info:
        check_tls_files(load_settings(None, server={"security": security}).server)
    assert info.value.key == "server.security.ssl_keyfile"
    assert "missing.pem is not a readable file" in info.value.message
    (tmp_path / "missing.pem").write_text("k")
    check_tls_files(load_settings(None, server={"security": security}).server)


def test_a_list_key_not_written_as_json_says_how_to_write_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYSMON_SERVER__FORWARDED_ALLOW_IPS", "10.0.0.1,10.0.0.2")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.key == "server.forwarded_allow_ips"
    assert "a list is written as JSON" in info.value.message
    assert "10.0.0.1" not in info.value.message  # never the value itself
