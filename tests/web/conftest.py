"""Browser-test fixtures: the real service in a subprocess and Debian's headless Chromium.

The service runs as a user would start it (``uvicorn app.main:app``) with real psutil
collection every second, so the page is tested against real data and the real SSE stream.
The server can be killed and started again on the same port to test reconnection.
Playwright drives ``/usr/bin/chromium``; its own browser downloads are never used, so the
tests skip with a message when that binary is missing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.process import ROOT, free_port, service_env, wait_healthy

ARTIFACTS = ROOT / "test-artifacts"
UPLOT = ROOT / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js"
# Until the alerts API lands, the page asks for it, gets 404 and hides the panel.
TOLERATED_404_PREFIX = "/api/v1/alerts"
# Until the metric catalog lands, the page asks for it, gets 404 and reads the snapshot's
# keys instead (sections.js).
TOLERATED_404_EXACT = ("/api/v1/metrics",)


@dataclass
class Service:
    """One sysmon server on a fixed port that can be killed and restarted in place."""

    port: int
    db_path: Path
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        env = service_env(self.db_path, **self.extra_env)
        # Appending keeps the log of every run; it is read only when something fails.
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            wait_healthy(self.base_url, timeout=30)
        except TimeoutError:
            self.kill()
            raise RuntimeError(f"service did not start; log:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL: the harshest restart (no graceful close of the SSE streams)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "<no log>"


@dataclass
class PageWatch:
    """Everything a page reported that would mean a broken dashboard."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    def attach(self, page: Any, base_url: str) -> None:
        def on_console(msg: Any) -> None:
            if msg.type != "error":
                return
            url = str((msg.location or {}).get("url", ""))
            if _tolerated(url, base_url) and "404" in msg.text:
                return
            self.console_errors.append(f"{msg.text} @ {url}")

        def on_response(resp: Any) -> None:
            if resp.status >= 400 and not (resp.status == 404 and _tolerated(resp.url, base_url)):
                self.bad_responses.append(f"{resp.status} {resp.url}")

        def on_request(req: Any) -> None:
            if not (req.url.startswith(base_url) or req.url.startswith("data:")):
                self.foreign_requests.append(req.url)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on(
            "requestfailed", lambda req: self.failed_requests.append(f"{req.url} {req.failure}")
        )
        page.on("response", on_response)
        page.on("request", on_request)


def _tolerated(url: str, base_url: str) -> bool:
    if url.startswith(base_url + TOLERATED_404_PREFIX):
        return True
    return any(url == base_url + path for path in TOLERATED_404_EXACT)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    if not UPLOT.exists():
        pytest.fail(f"{UPLOT} is missing: run `npm ci` in {ROOT} first")
    tmp = tmp_path_factory.mktemp("web-service")
    svc = Service(port=free_port(), db_path=tmp / "sysmon.db", log_path=tmp / "server.log")
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: `apt-get install -y chromium` to run browser tests")
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
            color_scheme="light",
        )
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()
