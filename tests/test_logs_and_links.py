"""What an operator sees: the log of the real service on each way of starting it, and the
dashboard link in the notifications it sends (a real webhook receiver on 127.0.0.1).

A rule on ``memory.percent > 0`` fires on the first tick, so each start shows the whole
story within seconds: started, listening, alert firing, notification sent.
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sysmon.logs import FORMAT, OWN_LOGGER, UVICORN_LOGGERS, configure_logging
from tests.alerts.receivers import HttpReceiver
from tests.support.process import ROOT, free_port, service_env, wait_healthy

HOOK_ENV = "SYSMON_TEST_HOOK_URL"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")


def write_config(tmp_path: Path, port: int, **server: Any) -> Path:
    body = {
        "database": {"path": str(tmp_path / "data" / "sysmon.db")},
        "server": {"port": port, **server},
        "alerts": {
            "rules": [{"name": "mem_any", "metric": "memory.percent", "threshold": 0}],
            "channels": {"hook": {"type": "webhook", "url_env": HOOK_ENV, "retries": 0}},
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@contextmanager
def started(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", *argv], cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_until(predicate: Any, what: str, log: Path, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; log:\n{log.read_text()[-4000:]}")


def first_firing(receiver: HttpReceiver) -> dict[str, Any]:
    return next(b for b in receiver.bodies("/ok/hook") if b["kind"] == "firing")


def assert_story(log_text: str, port: int | None) -> None:
    """sysmon's own lines are there, in the one format; third-party chatter is not."""
    assert re.search(
        r"INFO +sysmon\.agent\.service: sysmon agent \S+ \(pid \d+\) collecting", log_text
    )
    if port is not None:
        assert f"INFO    uvicorn: Uvicorn running on http://127.0.0.1:{port}" in log_text
    assert "INFO    sysmon.alerts.engine: alert firing rule=mem_any" in log_text
    assert (
        "INFO    sysmon.alerts.dispatcher: alert notification sent channel=hook kind=firing "
        "rule=mem_any" in log_text
    )
    for chatter in ("HTTP Request:", "httpx", "httpcore", "apscheduler", "GET /api/v1/"):
        assert chatter not in log_text, chatter
    assert "Traceback" not in log_text
    lines = [line for line in log_text.splitlines() if line.strip()]
    assert lines
    odd = [line for line in lines if not LINE.match(line)]
    assert not odd, odd


def test_serve_logs_the_story_and_links_to_the_port_it_serves(tmp_path: Path) -> None:
    """``sysmon serve --port P`` with ``server.port: Q`` in the file: links name P."""
    served, configured = free_port(), free_port()
    config = write_config(tmp_path, configured)
    log = tmp_path / "serve.log"
    with HttpReceiver().running() as receiver:
        env = service_env(tmp_path / "data" / "sysmon.db", **{HOOK_ENV: receiver.url("/ok/hook")})
        argv = ["sysmon", "--config", str(config), "serve", "--port", str(served)]
        with started(argv, env, log):
            base = f"http://127.0.0.1:{served}"
            wait_healthy(base, timeout=40)
            for _ in range(5):  # requests the access log would show
                httpx.get(f"{base}/api/v1/health", timeout=5)
            wait_until(lambda: receiver.bodies("/ok/hook"), "the firing notification", log)
            wait_until(lambda: "notification sent" in log.read_text(), "the sent line", log)
        body = first_firing(receiver)
    assert body["rule"] == "mem_any"
    assert body["dashboard_url"] == f"http://127.0.0.1:{served}/"
    assert_story(log.read_text(), served)


def test_uvicorn_app_main_logs_the_same_story(tmp_path: Path) -> None:
    """The spec's ``uvicorn app.main:app`` (uvicorn's own logging set-up, its access log
    on by default): the same lines, the same format, no access lines."""
    port = free_port()
    config = write_config(tmp_path, port)
    log = tmp_path / "uvicorn.log"
    with HttpReceiver().running() as receiver:
        env = service_env(
            tmp_path / "data" / "sysmon.db",
            SYSMON_CONFIG=str(config),
            **{HOOK_ENV: receiver.url("/ok/hook")},
        )
        argv = ["uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        with started(argv, env, log):
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, timeout=40)
            for _ in range(5):
                httpx.get(f"{base}/api/v1/health", timeout=5)
            wait_until(lambda: receiver.bodies("/ok/hook"), "the firing notification", log)
            wait_until(lambda: "notification sent" in log.read_text(), "the sent line", log)
        body = first_firing(receiver)
    assert body["dashboard_url"] == f"http://127.0.0.1:{port}/"
    assert_story(log.read_text(), port)


@pytest.mark.parametrize("spelling", ["public_url", "dashboard_url"])
def test_agent_alone_logs_the_story_and_links_to_public_url(tmp_path: Path, spelling: str) -> None:
    """``sysmon agent`` (no server): the same lines; ``server.public_url`` (or its
    deprecated name ``dashboard_url``) is the link, whatever address is served."""
    config = write_config(tmp_path, free_port(), **{spelling: "https://mon.example.com/sysmon/"})
    log = tmp_path / "agent.log"
    with HttpReceiver().running() as receiver:
        env = service_env(tmp_path / "data" / "sysmon.db", **{HOOK_ENV: receiver.url("/ok/hook")})
        with started(["sysmon", "--config", str(config), "agent"], env, log):
            wait_until(lambda: receiver.bodies("/ok/hook"), "the firing notification", log)
            wait_until(lambda: "notification sent" in log.read_text(), "the sent line", log)
        body = first_firing(receiver)
    assert body["dashboard_url"] == "https://mon.example.com/sysmon/"
    text = log.read_text()
    assert_story(text, None)
    deprecated = "server.dashboard_url is deprecated" in text
    assert deprecated == (spelling == "dashboard_url")


@pytest.fixture
def pristine_logging() -> Iterator[None]:
    """``configure_logging`` changes process-wide loggers: put them back afterwards."""
    names = ["", OWN_LOGGER, *UVICORN_LOGGERS, "httpx"]
    saved = [
        (logging.getLogger(n), logging.getLogger(n).level, list(logging.getLogger(n).handlers))
        for n in names
    ]
    propagate = {n: logging.getLogger(n).propagate for n in names}
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
        lg.propagate = propagate[lg.name if lg.name != "root" else ""]


@pytest.mark.usefixtures("pristine_logging")
def test_the_console_handler_writes_to_the_stderr_of_the_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stderr replaced, then closed, after the handler was made (a test runner's
    capture, a daemon's redirect) costs no line and no "I/O operation on closed file"."""
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "_sysmon_handler", False)]
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging()
    logging.getLogger("sysmon.test").warning("first")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("sysmon.test").warning("second")
    assert second.getvalue().endswith("WARNING sysmon.test: second\n")


@pytest.mark.usefixtures("pristine_logging")
@pytest.mark.parametrize(
    ("level", "access_log"), [("INFO", False), ("DEBUG", True), ("ERROR", False)]
)
def test_configure_logging_levels(level: str, access_log: bool) -> None:
    configure_logging()
    configure_logging(level, access_log=access_log)  # again, once the settings are known
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.formatter is not None and h.formatter._fmt == FORMAT]
    assert len(ours) == 1  # one handler however often it is called
    assert logging.getLogger("sysmon.alerts.engine").getEffectiveLevel() == getattr(logging, level)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("apscheduler.scheduler").getEffectiveLevel() == logging.WARNING
    access = logging.getLogger("uvicorn.access").getEffectiveLevel()
    assert access == (logging.INFO if access_log else logging.WARNING)
    assert logging.getLogger("uvicorn.error").getEffectiveLevel() == getattr(logging, level)
    assert not logging.getLogger("uvicorn.error").handlers
