"""``sysmon top``'s arguments: where it connects and with which token."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sysmon.cli import build_parser, main
from sysmon.config import load_settings
from sysmon.tui.cli import normalize_url, resolve_target, server_url


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_top_is_a_subcommand_with_its_options() -> None:
    args = parse("top", "--url", "http://db1:8000", "--token", "sysmon_x", "--interval", "2")
    assert (args.url, args.token, args.interval) == ("http://db1:8000", "sysmon_x", 2.0)
    assert args.func.__name__ == "cmd_top"


def test_default_url_is_the_configured_server_and_config_works_after_top(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("server:\n  host: 0.0.0.0\n  port: 8400\n")
    target = resolve_target(parse("top", "--config", str(config)), {})
    assert target.url == "http://127.0.0.1:8400"
    assert target.token is None


def test_url_and_token_from_flags_win_over_config_and_environment(tmp_path: Path) -> None:
    args = parse("--config", str(tmp_path / "missing.yaml"), "top", "--url", "db1:9000/")
    target = resolve_target(args, {"SYSMON_TOKEN": "from-env"})
    assert target.url == "http://db1:9000", "the config file is not even read"
    assert target.token == "from-env"
    args = parse("top", "--url", "https://db1", "--token", "flag")
    assert resolve_target(args, {"SYSMON_TOKEN": "env"}).token == "flag"
    assert resolve_target(parse("top", "--url", "x"), {"SYSMON_TOKEN": ""}).token is None


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"host": "::", "port": 9000}, "http://[::1]:9000"),
        ({"host": "::1"}, "http://[::1]:8000"),
        ({"host": "10.0.0.5", "port": 80}, "http://10.0.0.5:80"),
    ],
)
def test_server_url(server: dict[str, object], url: str) -> None:
    assert server_url(load_settings(None, server=server)) == url


@pytest.mark.parametrize(
    ("given", "url"),
    [("db1:8000", "http://db1:8000"), ("https://db1/", "https://db1"), (" http://x ", "http://x")],
)
def test_normalize_url(given: str, url: str) -> None:
    assert normalize_url(given) == url


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["top", "--url", "ftp://db1"], "--url must be http:// or https://"),
        (["top", "--url", "db1", "--interval", "0"], "--interval must be positive"),
        (["top", "--url", "db1", "--cacert", "/nonexistent.pem"], "cannot use --cacert"),
        (["top", "--config", "/nonexistent.yaml"], "config error: /nonexistent.yaml"),
    ],
)
def test_mistakes_exit_2_with_one_line_before_any_screen(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
