"""The dashboard in a real browser against the real service (issue 5 acceptance checks).

One server and one Chromium serve the whole module; the restart test runs last because it
kills and restarts that server on the same port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import ARTIFACTS, PageWatch, Service

pytestmark = pytest.mark.browser

CHART_IDS = ["chart-cpu", "chart-cores", "chart-memory", "chart-diskio", "chart-network"]
ALL_CHARTS_HAVE_DATA = """ids => ids.every(id => {
  const f = document.getElementById(id);
  return f && Number(f.dataset.points) > 0;
})"""


@pytest.fixture
def dashboard(service: Service, browser_context: Any) -> Iterator[tuple[Any, PageWatch]]:
    page = browser_context.new_page()
    watch = PageWatch()
    watch.attach(page, service.base_url)
    yield page, watch
    page.close()


def _open(page: Any, service: Service) -> None:
    page.goto(service.base_url + "/")
    page.wait_for_function(ALL_CHARTS_HAVE_DATA, arg=CHART_IDS, timeout=15_000)


def _cells(page: Any, column: int) -> list[float]:
    texts = page.eval_on_selector_all(
        f"#procs tbody tr td:nth-child({column})", "tds => tds.map(td => td.textContent)"
    )
    return [float(t) for t in texts]


def test_page_loads_clean_with_data_in_every_chart(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    page.goto(service.base_url + "/")
    page.wait_for_function(ALL_CHARTS_HAVE_DATA, arg=CHART_IDS, timeout=15_000)
    page.wait_for_selector("#conn[data-state=live]")

    system = json.loads(page.evaluate("fetch('/api/v1/system').then(r => r.text())"))
    assert page.inner_text("#host") == system["hostname"]
    assert page.inner_text("#os") == system["os"]
    assert page.inner_text("#uptime") != "\u2014"
    assert int(page.inner_text("#cores").split()[0]) >= 1
    assert page.inner_text("#card-cpu .value").endswith("%")
    assert page.inner_text("#card-memory .value").endswith("%")
    assert page.locator(".card.mount").count() >= 1
    assert page.locator("#procs tbody tr").count() >= 1
    # Alerts: either the API exists and the panel says something, or it is hidden (404).
    if page.is_visible("#alerts"):
        assert page.locator("#alerts-active li").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    assert watch.page_errors == []
    assert watch.console_errors == []
    assert watch.failed_requests == []
    assert watch.bad_responses == []
    assert watch.foreign_requests == [], "the page must work offline (no CDN, no fonts)"


def test_live_snapshot_updates_within_three_seconds(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, _ = dashboard
    _open(page, service)
    before = float(page.get_attribute("#updated", "data-ts") or 0)
    points_before = int(page.get_attribute("#chart-cpu", "data-points") or 0)
    page.wait_for_function(
        "ts => Number(document.getElementById('updated').dataset.ts) > ts",
        arg=before,
        timeout=3_000,
    )
    after = float(page.get_attribute("#updated", "data-ts") or 0)
    assert after > before
    # Live mode appends the pushed point to the charts (no refetch of the range API).
    page.wait_for_function(
        "n => Number(document.getElementById('chart-cpu').dataset.points) > n",
        arg=points_before,
        timeout=3_000,
    )


def test_range_picker_switches_resolution(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    live_bodies: list[dict[str, Any]] = []

    def is_cpu_totals(resp: Any) -> bool:
        return "/api/v1/metrics/cpu?" in resp.url and "core=" not in resp.url

    page.on("response", lambda r: live_bodies.append(r.json()) if is_cpu_totals(r) else None)
    _open(page, service)
    assert live_bodies and live_bodies[0]["resolution"] == "raw"
    assert "resolution=auto" in page.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)"
        ".find(n => n.includes('/api/v1/metrics/cpu?'))"
    )

    with page.expect_response(is_cpu_totals) as info:
        page.click("button[data-range='24h']")
    day = info.value.json()
    assert day["resolution"] != "raw"
    assert day["step_seconds"] > 1
    assert page.get_attribute("button[data-range='24h']", "aria-pressed") == "true"
    assert page.get_attribute("button[data-range='live']", "aria-pressed") == "false"
    page.wait_for_function(
        "r => document.getElementById('resolution').dataset.resolution === r",
        arg=day["resolution"],
    )

    # Keyboard: focus the live button and press Enter to go back to raw live data.
    page.focus("button[data-range='live']")
    with page.expect_response(is_cpu_totals) as info:
        page.keyboard.press("Enter")
    assert info.value.json()["resolution"] == "raw"
    assert page.get_attribute("button[data-range='live']", "aria-pressed") == "true"
    page.wait_for_function(ALL_CHARTS_HAVE_DATA, arg=CHART_IDS)
    assert watch.page_errors == []


LEGENDS_JS = """() => Object.fromEntries([...document.querySelectorAll('figure.chart')].map(f =>
  [f.id, [...f.querySelectorAll('.u-legend .u-value')].map(v => v.textContent)]))"""


def test_legend_shows_latest_values_and_hover_time_in_human_units(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, _ = dashboard
    _open(page, service)
    # Let a few live points arrive so the newest row has every series.
    page.wait_for_function("() => Number(document.getElementById('chart-cpu').dataset.points) > 8")
    # Not hovering, each legend follows the newest point (its time tracks the live clock).
    lag = page.evaluate(
        """() => Number(document.getElementById('updated').dataset.ts) - Date.parse(
          document.querySelector('#chart-memory .u-legend .u-value').textContent) / 1000"""
    )
    assert -1.5 < lag < 2.5, f"legend is {lag:.1f}s behind the newest snapshot"
    legends = page.evaluate(LEGENDS_JS)
    assert legends["chart-cpu"][1].endswith("%"), legends
    assert re.fullmatch(r"[\d.]+ (B|KiB|MiB|GiB|TiB)", legends["chart-memory"][1]), legends
    assert re.fullmatch(r"[\d.]+ (B|KB|MB|GB)/s", legends["chart-network"][1]), legends

    box = page.locator("#chart-cpu .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)
    hovered = page.evaluate(LEGENDS_JS)
    # The time of the point under the cursor, and the same instant on the synced charts.
    assert re.search(r"\d{1,2}:\d{2}:\d{2}", hovered["chart-cpu"][0]), hovered
    assert hovered["chart-memory"][0] == hovered["chart-cpu"][0]
    page.mouse.move(1, 1)


def test_process_table_sorts_by_memory_and_cpu(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    _open(page, service)
    mem_col, cpu_col = 5, 4

    with page.expect_response(lambda r: "/api/v1/metrics/processes?" in r.url) as info:
        page.click("#procs button[data-sort='memory']")
    assert info.value.json()["sort"] == "memory"
    assert page.get_attribute("th:has(button[data-sort='memory'])", "aria-sort") == "descending"
    assert page.get_attribute("th:has(button[data-sort='cpu'])", "aria-sort") == "none"
    page.wait_for_function("() => document.querySelectorAll('#procs tbody tr').length > 1")
    mem = _cells(page, mem_col)
    assert mem == sorted(mem, reverse=True)
    # The memory ranking comes from the server, so the top row is its top row.
    top_pid = info.value.json()["processes"][0]["pid"]
    pids = [
        int(t)
        for t in page.eval_on_selector_all(
            "#procs tbody tr td:nth-child(1)", "tds => tds.map(td => td.textContent)"
        )
    ]
    assert top_pid in pids[:3]

    page.click("#procs button[data-sort='cpu']")
    assert page.get_attribute("th:has(button[data-sort='cpu'])", "aria-sort") == "descending"
    cpu = _cells(page, cpu_col)
    assert cpu == sorted(cpu, reverse=True)
    assert page.inner_text("#procs-count").endswith("by CPU")
    assert watch.page_errors == []


def test_phone_width_and_dark_scheme(browser_context: Any, service: Service) -> None:
    page = browser_context.new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.emulate_media(color_scheme="dark")
        _open(page, service)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "no sideways scrolling on a phone"
        bg = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert bg == "rgb(14, 18, 23)"
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone-dark.png"), full_page=True)
    finally:
        page.close()


SET_HIDDEN = """hidden => {
  const state = hidden ? 'hidden' : 'visible';
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => state});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_hidden_tab_releases_its_stream_and_resumes(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    streams: list[str] = []
    closed: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/api/v1/stream" in r.url else None)
    for event in ("requestfailed", "requestfinished"):
        page.on(event, lambda r: closed.append(r.url) if "/api/v1/stream" in r.url else None)
    page.clock.install()  # fake timers, still running at real speed until fast-forwarded
    _open(page, service)
    page.wait_for_selector("#conn[data-state=live]")
    assert len(streams) == 1

    page.evaluate(SET_HIDDEN, True)
    page.clock.fast_forward(11_000)
    page.wait_for_selector("#conn[data-state=paused]")
    # The abort reaches Playwright's network events a moment later.
    page.wait_for_timeout(500)
    assert closed, "the hidden tab should close its stream"

    before = float(page.get_attribute("#updated", "data-ts") or 0)
    page.evaluate(SET_HIDDEN, False)
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_function(
        "ts => Number(document.getElementById('updated').dataset.ts) > ts", arg=before
    )
    assert len(streams) == 2
    page.wait_for_function(ALL_CHARTS_HAVE_DATA, arg=CHART_IDS)
    assert watch.page_errors == []


def test_survives_server_restart(dashboard: tuple[Any, PageWatch], service: Service) -> None:
    page, watch = dashboard
    _open(page, service)
    page.wait_for_selector("#conn[data-state=live]")

    service.kill()
    page.wait_for_selector("#conn[data-state=reconnecting]", timeout=6_000)
    assert "reconnecting" in page.inner_text("#conn")
    stalled = float(page.get_attribute("#updated", "data-ts") or 0)

    service.start()
    page.wait_for_selector("#conn[data-state=live]", timeout=15_000)
    page.wait_for_function(
        "ts => Number(document.getElementById('updated').dataset.ts) > ts",
        arg=stalled,
        timeout=5_000,
    )
    first = float(page.get_attribute("#updated", "data-ts") or 0)
    page.wait_for_function(
        "ts => Number(document.getElementById('updated').dataset.ts) > ts", arg=first
    )
    page.wait_for_function(ALL_CHARTS_HAVE_DATA, arg=CHART_IDS)
    assert page.inner_text("#card-cpu .value").endswith("%")
    page.screenshot(path=str(ARTIFACTS / "dashboard-after-restart.png"), full_page=True)
    assert watch.page_errors == []
