"""The ``sysmon`` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sysmon.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sysmon", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
        check=False,
        cwd=cwd or ROOT,
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


# --- config check tells the truth --------------------------------------------------------


def good_config(folder: Path) -> Path:
    path = folder / "good.yaml"
    path.write_text(f"database:\n  path: {folder / 'data' / 'sysmon.db'}\n")
    return path


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_config_check_checks_exactly_the_given_file(tmp_path: Path, before: bool) -> None:
    good = good_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: 0\n")
    for path, ok in ((good, True), (bad, False)):
        flag = ["--config", str(path)]
        argv = [*flag, "config", "check"] if before else ["config", "check", *flag]
        # $SYSMON_CONFIG names the other file: --config must win.
        other = bad if ok else good
        result = run(*argv, env={"SYSMON_CONFIG": str(other)})
        if ok:
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith(f"configuration OK: {path} (from --config)")
        else:
            assert result.returncode == 2
            assert result.stderr.strip() == (
                "config error: server.port: Input should be greater than or equal to 1"
            )


def test_config_check_says_when_it_used_sysmon_config(tmp_path: Path) -> None:
    good = good_config(tmp_path)
    result = run("config", "check", env={"SYSMON_CONFIG": str(good)})
    assert result.returncode == 0, result.stderr
    assert f"configuration OK: {good} (from $SYSMON_CONFIG)" in result.stdout


def test_config_check_says_when_it_used_builtin_defaults(tmp_path: Path) -> None:
    result = run("config", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no config file" in result.stdout
    assert "built-in defaults" in result.stdout


def test_config_check_names_the_environment_overrides_not_their_values(tmp_path: Path) -> None:
    env = {
        "SYSMON_SERVER__PORT": "9123",
        "SYSMON_LOGGING__LEVEL": "debug",
        "SYSMON_SMTP_PASSWORD": "hunter2",  # a secret, not a configuration key
    }
    result = run("--config", str(good_config(tmp_path)), "config", "check", env=env)
    assert result.returncode == 0, result.stderr
    assert "overridden by the environment: SYSMON_LOGGING__LEVEL, SYSMON_SERVER__PORT" in (
        result.stdout
    )
    assert "SMTP" not in result.stdout and "9123" not in result.stdout


def test_a_named_config_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    for argv in (["--config", str(missing), "config", "check"], ["config", "check"]):
        result = run(*argv, env={"SYSMON_CONFIG": str(missing)})
        assert result.returncode == 2
        assert result.stderr.strip() == f"config error: {missing}: config file not found"


def _cert(folder: Path) -> Path:
    cert = folder / "cert.pem"
    cert.write_text("not really a certificate")
    return cert


# (yaml, extra env, the key the error must name, a phrase of the message)
MISTAKES: list[tuple[str, dict[str, str], str, str]] = [
    ("logging:\n  level: LOUD\n", {}, "logging.level", "unknown log level 'LOUD'"),
    ("", {"SYSMON_SERVER": "{bad"}, "server", "SYSMON_SERVER is not valid JSON"),
    ("", {"SYSMON_LOGGING__LEVEL": "loud"}, "logging.level", "unknown log level"),
    ("server:\n  port: 8001\n  port: 8002\n", {}, "server.port", "duplicate key (line 3;"),
    (
        "alerts:\n  channels:\n    hook: {type: webhook, url: 'http://127.0.0.1:9/x'}\n",
        {},
        "alerts.channels.hook.url",
        "name that variable with url_env",
    ),
    (
        "alerts:\n  channels:\n    mail: {type: email, host: h, from: a@b.c, to: [x@y.z],"
        " username: u, password: pw}\n",
        {},
        "alerts.channels.mail.password",
        "name that variable with password_env",
    ),
    ("database:\n  path: {tmp}/file/data/sysmon.db\n", {}, "database.path", "is not a directory"),
    (
        "server:\n  security:\n    ssl_certfile: {tmp}/cert.pem\n"
        "    ssl_keyfile: {tmp}/missing-key.pem\n",
        {},
        "server.security.ssl_keyfile",
        "missing-key.pem is not a readable file",
    ),
    ("alerts:\n  repeat_interval: 0s\n", {}, "alerts.repeat_interval", "greater than zero"),
    ("retention:\n  processes_every: 5 min\n", {}, "retention.processes_every", "invalid"),
]


def _mistake_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "file").write_text("a file where a directory should be")
    _cert(tmp_path)
    path = tmp_path / "mistake.yaml"
    body = text.replace("{tmp}", str(tmp_path))
    if "database:" not in body:
        body += f"database:\n  path: {tmp_path / 'data' / 'sysmon.db'}\n"
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    ("text", "env", "key", "phrase"), MISTAKES, ids=[m[2] + ":" + m[3][:20] for m in MISTAKES]
)
def test_config_check_catches_what_serve_would_hit(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    env: dict[str, str],
    key: str,
    phrase: str,
) -> None:
    """In-process (``main``), so the table stays fast; the subprocess tests below show the
    same mistakes stop ``serve``, ``agent`` and ``server`` the same way."""
    monkeypatch.setattr(
        "sysmon.cli.configure_logging", lambda *a, **k: None
    )  # keep pytest's logging
    for name in [n for n in os.environ if n.startswith("SYSMON_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(["--config", str(_mistake_file(tmp_path, text)), "config", "check"])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert err.startswith(f"config error: {key}: "), err
    assert phrase in err
    assert "Traceback" not in err
    assert out == ""


STARTUP_MISTAKES = [
    ("log-level", "logging:\n  level: LOUD\n", {}, "logging.level"),
    ("env-json", "", {"SYSMON_SERVER": "{bad"}, "server"),
    ("duplicate-key", "server:\n  port: 8001\n  port: 8002\n", {}, "server.port"),
    ("database-path", "database:\n  path: {tmp}/file/data/sysmon.db\n", {}, "database.path"),
]
# The server only reads the database (it may run as another user): not its check.
STARTUPS = [
    pytest.param(command, text, env, key, id=f"{name}-{command}")
    for name, text, env, key in STARTUP_MISTAKES
    for command in ("serve", "agent", "server")
    if not (command == "server" and key == "database.path")
]


@pytest.mark.parametrize(("command", "text", "env", "key"), STARTUPS)
def test_startup_refuses_a_config_mistake_with_the_key_and_exit_2(
    tmp_path: Path, command: str, text: str, env: dict[str, str], key: str
) -> None:
    path = _mistake_file(tmp_path, text)
    result = run(command, "--config", str(path), env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"config error: {key}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_missing_channel_secret_before_starting_anything(tmp_path: Path) -> None:
    path = _mistake_file(tmp_path, "alerts:\n  channels:\n    hook: {type: webhook}\n")
    result = run("serve", "--config", str(path))
    assert result.returncode == 2
    assert (
        "config error: alerts.channels.hook.url_env: environment variable SYSMON_WEBHOOK_URL"
        in (result.stderr)
    )
    assert "started (pid" not in result.stderr
