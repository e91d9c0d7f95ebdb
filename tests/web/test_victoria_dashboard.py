"""The dashboard on a VictoriaMetrics backend, in a real browser: a real agent (scheduled,
every second, real psutil) writes to a real ``victoria-metrics`` through
``VictoriaStore``, and the server reads its history from there (no SQLite read). The page
loads clean, its Live charts fill, and the 1 h view's chart is drawn from
VictoriaMetrics' answer (the same values the API returns)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmon.agent.service import Agent
from sysmon.clock import SystemClock
from sysmon.config import load_settings
from sysmon.main import create_app
from sysmon.storage.victoria import VictoriaStore
from tests.support.server import serve
from tests.support.stack import short_socket
from tests.support.victoria import victoria_server
from tests.web.conftest import PageWatch

pytestmark = pytest.mark.browser

HOST = "vm-dash"
CHARTS = ["chart-cpu", "chart-memory", "chart-load"]


@pytest.fixture(scope="module")
def on_victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("vm-dashboard")
    with victoria_server(tmp / "vm") as vm:
        settings = load_settings(
            None,
            database={"path": str(tmp / "sysmon.db"), "backend": "victoriametrics", "url": vm.url},
            collection={"interval_seconds": 1},
            agent={"host": HOST},
        )
        clock = SystemClock()
        sock = short_socket()
        agent = Agent(
            settings,
            clock=clock,
            store=VictoriaStore(vm.url, clock=clock, host=HOST, interval_seconds=1),
            channel=sock,
        )
        agent.start()
        try:
            # The 1h view sends a dozen queries at once (totals, each core, memory, load)
            # to a VictoriaMetrics sharing two cores with Chromium, the agent and the
            # server: once in CI one took over the store's default 5 s and the page got
            # a 503. This test is about where the history comes from, not how fast.
            store = VictoriaStore(
                vm.url, clock=clock, host=HOST, interval_seconds=1, timeout_seconds=30
            )
            app = create_app(settings, clock=clock, store=store, channel=sock, start_agent=False)
            with serve(app) as running:
                deadline = time.monotonic() + 30
                while True:  # a few ticks searchable in VictoriaMetrics
                    vm.flush()
                    now = time.time()
                    body = httpx.get(
                        f"{running.base_url}/api/v1/metrics/cpu",
                        params={"start": now - 60, "end": now, "resolution": "raw"},
                        timeout=5,
                    ).json()
                    points = [v for v in body.get("fields", {}).get("percent", []) if v is not None]
                    if len(points) >= 3:
                        break
                    assert time.monotonic() < deadline, f"no history in VictoriaMetrics: {body}"
                    time.sleep(0.5)
                yield running.base_url
        finally:
            agent.stop()
            shutil.rmtree(sock.parent, ignore_errors=True)


def test_dashboard_reads_its_history_from_victoriametrics(
    browser_context: Any, on_victoria: str
) -> None:
    page = browser_context.new_page()
    watch = PageWatch()
    watch.attach(page, on_victoria)
    cpu_answers: list[dict[str, Any]] = []

    def is_cpu_totals(resp: Any) -> bool:
        return "/api/v1/metrics/cpu?" in resp.url and "core=" not in resp.url

    page.on("response", lambda r: cpu_answers.append(r.json()) if is_cpu_totals(r) else None)
    try:
        page.goto(on_victoria + "/")
        page.wait_for_function(
            "ids => ids.every(id => Number(document.getElementById(id).dataset.points) > 0)",
            arg=CHARTS,
            timeout=20_000,
        )
        with page.expect_response(is_cpu_totals) as info:
            page.click("button[data-range='1h']")
        hour = info.value.json()
        stored = [v for v in hour["fields"]["percent"] if v is not None]
        assert stored, hour  # VictoriaMetrics answered the hour with the agent's ticks
        page.wait_for_function(
            "id => Number(document.getElementById(id).dataset.points) > 0",
            arg="chart-cpu",
            timeout=10_000,
        )
        assert cpu_answers[0]["resolution"] == "raw"  # the Live view's history, also from VM
        assert watch.page_errors == [] and watch.console_errors == [], watch
        assert watch.bad_responses == [] and watch.failed_requests == [], watch
        assert watch.foreign_requests == []
    finally:
        page.close()
