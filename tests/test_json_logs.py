"""``logging.file``: the real service (``sysmon serve``, a subprocess) writes JSON lines,
one per record and one per request, while its console stays the human format."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sysmon.api.requestlog import redacted_query, request_id
from sysmon.logs import JsonFormatter, add_file_log, file_log_path, remove_file_log
from tests.support.process import ROOT, free_port, service_env, wait_healthy

SECRET = "s3cret-T0KEN-value"
HUMAN = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """A running ``sysmon serve`` with ``logging.file``: (base URL, JSON file, console)."""
    tmp = tmp_path_factory.mktemp("jsonlogs")
    port = free_port()
    config = tmp / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"path": str(tmp / "data" / "sysmon.db")},
                "logging": {"file": str(tmp / "logs" / "sysmon.jsonl")},
            }
        )
    )
    console = tmp / "console.log"
    with console.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysmon", "--config", str(config), "serve", "--port", str(port)],
            cwd=ROOT,
            env=service_env(tmp / "data" / "sysmon.db"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, timeout=40)
        yield base, tmp / "logs" / "sysmon.server.jsonl", console
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _access(path: Path, rid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [e for e in read_lines(path) if e.get("request_id") == rid]
        if found:
            (entry,) = found
            return entry
        time.sleep(0.05)
    raise AssertionError(f"no access line for {rid}:\n{path.read_text()[-2000:]}")


def test_every_line_is_json_with_the_common_fields(served: tuple[str, Path, Path]) -> None:
    base, path, _ = served
    httpx.get(f"{base}/api/v1/health", timeout=5)
    entries = read_lines(path)
    assert entries
    for entry in entries:
        assert ISO.match(entry["timestamp"]), entry
        assert entry["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert isinstance(entry["logger"], str) and isinstance(entry["message"], str)
        assert entry["process"] == "server" and isinstance(entry["pid"], int)
    started = [e for e in entries if e["logger"] == "sysmon.main"]
    assert started and started[0]["message"].startswith("sysmon server ")
    assert any(e["logger"] == "uvicorn" and "Uvicorn running" in e["message"] for e in entries)
    assert not any(e["logger"] == "uvicorn.access" for e in entries)  # ours replaces it


def test_request_line_has_id_route_method_status_latency(served: tuple[str, Path, Path]) -> None:
    base, path, _ = served
    r = httpx.get(
        f"{base}/api/v1/metrics/cpu",
        params={"resolution": "raw", "token": SECRET},
        headers={"X-Request-ID": "req-42.a_b"},
        timeout=5,
    )
    # (200, or 422 where unknown query parameters are refused: the line is the same)
    assert r.headers["X-Request-ID"] == "req-42.a_b"  # propagated
    entry = _access(path, "req-42.a_b")
    assert entry["logger"] == "sysmon.access" and entry["level"] == "INFO"
    assert entry["method"] == "GET"
    assert entry["route"] == "/api/v1/metrics/{metric}"
    assert entry["path"] == "/api/v1/metrics/cpu"
    assert entry["status"] == r.status_code
    assert isinstance(entry["latency_ms"], float) and 0 < entry["latency_ms"] < 5000
    assert entry["bytes"] == len(r.content)
    assert entry["client"] == "127.0.0.1"
    assert entry["query"] == "resolution=raw&token=***"
    assert entry["message"].startswith(f"GET /api/v1/metrics/cpu {r.status_code} ")
    assert SECRET not in path.read_text()


def test_request_ids_are_generated_when_absent_or_unsafe(served: tuple[str, Path, Path]) -> None:
    base, path, _ = served
    plain = httpx.get(f"{base}/api/v1/health", timeout=5)
    unsafe = httpx.get(f"{base}/nowhere", headers={"X-Request-ID": 'a b"c'}, timeout=5)
    for response in (plain, unsafe):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    missing = _access(path, unsafe.headers["X-Request-ID"])
    assert missing["status"] == 404 and missing["route"] is None
    assert _access(path, plain.headers["X-Request-ID"])["route"] == "/api/v1/health"


def test_console_stays_human_and_has_no_access_lines(served: tuple[str, Path, Path]) -> None:
    base, _, console = served
    httpx.get(f"{base}/api/v1/health", timeout=5)
    lines = [line for line in console.read_text().splitlines() if line.strip()]
    assert lines and all(HUMAN.match(line) for line in lines), lines
    assert not any("sysmon.access" in line or "GET /api/v1" in line for line in lines)


# --- the pieces, without a server -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "logged"),
    [
        (b"", ""),
        (b"start=1&end=2", "start=1&end=2"),
        (b"token=abc&x=1", "token=***&x=1"),
        (b"access_token=abc&api-key=k&password=p", "access_token=***&api-key=***&password=***"),
        (b"max_tokens=5", "max_tokens=5"),
    ],
)
def test_redacted_query(raw: bytes, logged: str) -> None:
    assert redacted_query(raw) == logged


def test_request_id_keeps_plain_tokens_only() -> None:
    assert request_id(b"abc-1.2_3") == "abc-1.2_3"
    for bad in (None, b"", b"x" * 129, b"a\nb", b"\xff"):
        assert re.fullmatch(r"[0-9a-f]{32}", request_id(bad))


def test_file_log_path_inserts_the_process() -> None:
    assert file_log_path("/var/log/sysmon/sysmon.jsonl", "agent") == Path(
        "/var/log/sysmon/sysmon.agent.jsonl"
    )


def test_file_rotates_and_keeps_the_backups(tmp_path: Path) -> None:
    handler = add_file_log(tmp_path / "s.jsonl", "test", max_bytes=2048, backups=2)
    log = logging.getLogger("sysmon.test_rotation")
    log.setLevel(logging.INFO)
    try:
        for i in range(100):
            log.info("line %d", i, extra={"n": i})
    finally:
        remove_file_log(handler)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["s.test.jsonl", "s.test.jsonl.1", "s.test.jsonl.2"]
    assert all((tmp_path / f).stat().st_size <= 2048 for f in files)
    last = read_lines(tmp_path / "s.test.jsonl")[-1]
    assert last["message"] == "line 99" and last["n"] == 99
    assert oct((tmp_path / "s.test.jsonl").stat().st_mode & 0o777) == "0o640"


def test_exceptions_are_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("sysmon.x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    text = JsonFormatter("agent").format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["message"] == "failed" and entry["process"] == "agent"
    assert entry["exception"].startswith("Traceback") and "ValueError: boom" in entry["exception"]


def test_warnings_and_errors_are_scrubbed_of_secrets_info_is_not() -> None:
    """An exception's message can quote a command line or a URL (a collector's error, a
    failed connection): warnings and errors are masked by the command-line rules, in
    the console format and the JSON file alike."""
    from sysmon.logs import FORMAT, _Formatter

    leaky = "probe failed: mysql --password=pw-0001 https://u:pw-0002@db/x?token=pw-0003"
    try:
        raise RuntimeError(leaky)
    except RuntimeError:
        error = logging.LogRecord(
            "sysmon.x", logging.ERROR, __file__, 1, "tick: %s", (leaky,), None
        )
        error.exc_info = sys.exc_info()
    info = logging.LogRecord("sysmon.x", logging.INFO, __file__, 1, "plain --key=value", (), None)
    console = _Formatter(FORMAT).format(error)
    entry = json.loads(JsonFormatter("agent").format(error))
    for text in (console, entry["message"], entry["exception"]):
        assert "pw-000" not in text
    assert "--password=***" in entry["message"] and "u:***@db" in entry["exception"]
    assert "Traceback" in console and "RuntimeError" in entry["exception"]
    assert json.loads(JsonFormatter("agent").format(info))["message"] == "plain --key=value"
