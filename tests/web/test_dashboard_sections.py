"""Issue 13 dashboard checks in a real browser against the real service and its data:
per-device sections, the load chart, zoom and pan (Live included), CSV export, the grid
without half-empty rows, and the ES modules loading clean from our own origin.

The charts expose what they show as attributes of their figure: ``data-points`` (values
drawn) and ``data-x-min``/``data-x-max`` (the visible x range, epoch seconds), so the
tests read the page the way a user sees it instead of reaching into the scripts.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.conftest import ARTIFACTS, PageWatch, Service

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "sysmon" / "web" / "static"
MAIN_CHARTS = ["chart-cpu", "chart-cores", "chart-memory", "chart-load", "chart-diskio"]
HAS_POINTS = """sel => { const f = document.querySelector(sel);
  return Boolean(f) && Number(f.dataset.points) > 0; }"""
X_RANGE = """id => { const f = document.getElementById(id);
  return [Number(f.dataset.xMin), Number(f.dataset.xMax)]; }"""
NEWER_SNAPSHOT = "ts => Number(document.getElementById('updated').dataset.ts) > ts"


@pytest.fixture
def dashboard(service: Service, browser_context: Any) -> Iterator[tuple[Any, PageWatch]]:
    page = browser_context.new_page()
    watch = PageWatch()
    watch.attach(page, service.base_url)
    yield page, watch
    page.close()


def _open(page: Any, service: Service, points: int = 5) -> None:
    page.goto(service.base_url + "/")
    page.wait_for_function(
        """([ids, n]) => ids.every(id => Number(document.getElementById(id).dataset.points) > n)""",
        arg=[MAIN_CHARTS, points],
        timeout=20_000,
    )
    page.wait_for_selector("#conn[data-state=live]")


def _current(service: Service) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{service.base_url}/api/v1/metrics/current", timeout=5).json()
    return body


def _show(page: Any, selector: str) -> None:
    """Scroll a chart into view (sections build their charts when shown) and wait for data."""
    page.locator(selector).first.scroll_into_view_if_needed()
    page.wait_for_function(HAS_POINTS, arg=selector, timeout=15_000)


def _drag(page: Any, chart_id: str, start: float, end: float, shift: bool = False) -> None:
    """Drag across a chart's plot area from one fraction of its width to another."""
    over = page.locator(f"#{chart_id} .u-over")
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    if shift:
        page.keyboard.down("Shift")
    page.mouse.move(box["x"] + box["width"] * start, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    page.mouse.up()
    if shift:
        page.keyboard.up("Shift")


def test_sections_show_every_device_with_data_and_modules_load_clean(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    scripts: dict[str, str] = {}
    page.on(
        "response",
        lambda r: (
            scripts.__setitem__(r.url, r.headers.get("content-type", ""))
            if r.url.endswith(".js")
            else None
        ),
    )
    device_requests: list[str] = []
    page.on(
        "request",
        lambda r: (
            device_requests.append(r.url)
            if any(k in r.url for k in ("device=", "interface=", "mount="))
            else None
        ),
    )
    _open(page, service)
    metrics = _current(service)["metrics"]
    devices = sorted(metrics["disk"].get("device", {}))
    interfaces = sorted(metrics["network"].get("interface", {}))
    mounts = sorted(metrics["disk"].get("mount", {}))
    assert devices and interfaces and mounts, "this host should have a disk, a NIC and a mount"

    # One throughput chart per disk, one traffic chart per interface, one per mount, each
    # titled with its device, and each filled with that device's series.
    titles = page.eval_on_selector_all(
        "#sections figure figcaption .title", "els => els.map(e => e.textContent)"
    )
    for name in devices:
        assert f"{name} \u00b7 throughput" in titles
        assert f"{name} \u00b7 IOPS" in titles
        assert f"{name} \u00b7 busy" in titles
    for name in interfaces:
        assert f"{name} \u00b7 traffic" in titles
        assert f"{name} \u00b7 errors and drops" in titles
    for name in mounts:
        assert any(t.startswith(f"{name} \u00b7 space") for t in titles), titles
    _show(page, "#sec-disks figure.chart")
    _show(page, "#sec-interfaces figure.chart")
    _show(page, "#sec-filesystems figure.chart")
    assert any(f"device={devices[0]}" in u for u in device_requests)
    assert any("interface=" in u for u in device_requests)
    assert any("mount=" in u for u in device_requests)
    # Sections only for metrics that exist: none of these collectors run in this build
    # unless the snapshot lists them.
    for name in ("sensors", "pressure", "containers", "gpu"):
        assert page.locator(f"#sec-m-{name}").count() == (1 if metrics.get(name) else 0)

    # The load chart: three averages from the cpu totals.
    legend = page.eval_on_selector_all(
        "#chart-load .u-legend .u-series th", "els => els.map(e => e.textContent.trim())"
    )
    assert legend[1:] == ["1 min", "5 min", "15 min"]
    assert int(page.get_attribute("#chart-load", "data-points") or 0) > 0
    page.screenshot(path=str(ARTIFACTS / "dashboard-sections.png"), full_page=True)

    # Every module of the page was served as JavaScript from our origin.
    modules = {p.name for p in STATIC.glob("*.js")} - {"login.js"}
    served = {url.rsplit("/", 1)[-1]: kind for url, kind in scripts.items()}
    assert modules <= set(served), modules - set(served)
    for name in modules:
        assert served[name].split(";")[0] in ("text/javascript", "application/javascript")
    assert page.inner_text("#notice") == "" or not page.is_visible("#notice")
    assert watch.page_errors == []
    assert watch.console_errors == []
    assert watch.failed_requests == []
    assert watch.bad_responses == []
    assert watch.foreign_requests == []


def test_drag_zooms_every_chart_pauses_live_and_double_click_resets(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    _open(page, service)
    lo, hi = page.evaluate(X_RANGE, "chart-cpu")
    assert hi - lo == pytest.approx(300, abs=0.01), "Live shows the last 5 minutes"
    assert page.is_hidden("#zoom")

    _drag(page, "chart-cpu", 0.30, 0.70)
    page.wait_for_selector("#zoom:not([hidden])")
    zlo, zhi = page.evaluate(X_RANGE, "chart-cpu")
    assert lo < zlo < zhi < hi
    assert zhi - zlo == pytest.approx(0.4 * 300, rel=0.1)
    # Every chart shows the same span (the memory chart was not touched).
    assert page.evaluate(X_RANGE, "chart-memory") == pytest.approx([zlo, zhi])
    assert "Live view paused" in page.inner_text("#zoom")
    assert page.get_attribute("#zoom", "data-live") == "paused"

    # New snapshots still arrive and are kept, but the view no longer follows them.
    points = int(page.get_attribute("#chart-cpu", "data-points") or 0)
    for _ in range(2):
        ts = float(page.get_attribute("#updated", "data-ts") or 0)
        page.wait_for_function(NEWER_SNAPSHOT, arg=ts, timeout=5_000)
    page.wait_for_function(
        "n => Number(document.getElementById('chart-cpu').dataset.points) > n", arg=points
    )
    assert page.evaluate(X_RANGE, "chart-cpu") == pytest.approx([zlo, zhi])

    # Double-click: the whole live window again, following the newest snapshot.
    page.locator("#chart-memory .u-over").dblclick()
    page.wait_for_selector("#zoom[hidden]", state="attached")
    newest = float(page.get_attribute("#updated", "data-ts") or 0)
    rlo, rhi = page.evaluate(X_RANGE, "chart-cpu")
    assert rhi - rlo == pytest.approx(300, abs=0.01)
    assert rhi >= newest - 0.01
    page.wait_for_function(NEWER_SNAPSHOT, arg=newest, timeout=5_000)
    page.wait_for_function(
        "x => Number(document.getElementById('chart-cpu').dataset.xMax) > x", arg=rhi
    )
    assert watch.page_errors == []


def test_shift_drag_pans_escape_resets_and_a_new_range_drops_the_zoom(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    _open(page, service)
    _drag(page, "chart-cpu", 0.40, 0.80)
    page.wait_for_selector("#zoom:not([hidden])")
    zlo, zhi = page.evaluate(X_RANGE, "chart-cpu")

    # Dragging right with Shift moves the view back in time by the dragged distance.
    _drag(page, "chart-cpu", 0.50, 0.75, shift=True)
    page.wait_for_function(
        "x => Number(document.getElementById('chart-cpu').dataset.xMin) < x", arg=zlo
    )
    plo, phi = page.evaluate(X_RANGE, "chart-cpu")
    assert phi - plo == pytest.approx(zhi - zlo, rel=1e-6), "panning keeps the span"
    assert zlo - plo == pytest.approx(0.25 * (zhi - zlo), rel=0.15)
    assert page.evaluate(X_RANGE, "chart-network") == pytest.approx([plo, phi])

    # Esc resets (keyboard users get the "Reset zoom" button as well).
    page.keyboard.press("Escape")
    page.wait_for_selector("#zoom[hidden]", state="attached")
    lo, hi = page.evaluate(X_RANGE, "chart-cpu")
    assert hi - lo == pytest.approx(300, abs=0.01)

    # Another range drops the zoom.
    _drag(page, "chart-cpu", 0.1, 0.5)
    page.wait_for_selector("#zoom:not([hidden])")
    page.click("button[data-range='1h']")
    page.wait_for_selector("#zoom[hidden]", state="attached")
    assert page.get_attribute("html", "data-zoomed") == "no"
    assert watch.page_errors == []


def _download(page: Any, chart_id: str) -> tuple[str, list[dict[str, str]], list[str]]:
    link = page.locator(f"#{chart_id} a.csv")
    link.scroll_into_view_if_needed()
    with page.expect_download() as info:
        link.click()
    download = info.value
    text = Path(download.path()).read_text()
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return download.suggested_filename, rows, list(reader.fieldnames or [])


def _float(cell: str) -> float | None:
    return float(cell) if cell != "" else None


def test_csv_holds_exactly_the_visible_points(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, watch = dashboard
    _open(page, service, points=20)
    # Zoom in Live: the view is frozen, so the file and the store can be compared.
    _drag(page, "chart-cpu", 0.2, 0.95)
    page.wait_for_selector("#zoom:not([hidden])")
    lo, hi = page.evaluate(X_RANGE, "chart-cpu")
    name, rows, header = _download(page, "chart-cpu")
    assert name.startswith("sysmon_cpu_live-zoom_") and name.endswith(".csv")
    assert header == [
        "timestamp",
        "time_utc",
        "cpu.percent",
        "cpu.user_percent",
        "cpu.system_percent",
        "cpu.iowait_percent",
    ]
    assert len(rows) >= 5
    stamps = [float(r["timestamp"]) for r in rows]
    assert stamps == sorted(stamps) and lo <= stamps[0] and stamps[-1] <= hi
    drawn = int(page.get_attribute("#chart-cpu", "data-points") or 0)
    assert sum(1 for r in rows for k in header[2:] if r[k] != "") <= drawn

    # The same points as the store's raw series over that span (history and pushed
    # snapshots alike), value for value.
    stored = httpx.get(
        f"{service.base_url}/api/v1/metrics/cpu",
        params={"start": lo, "end": hi, "resolution": "raw"},
        timeout=5,
    ).json()
    assert stored["resolution"] == "raw"
    keep = [i for i, t in enumerate(stored["timestamps"]) if lo <= t <= hi]
    assert stamps == [stored["timestamps"][i] for i in keep]
    for column in header[2:]:
        field = column.split(".", 1)[1]
        values = stored["fields"].get(field)
        want = [values[i] for i in keep] if values else [None] * len(keep)
        got = [_float(r[column]) for r in rows]
        assert got == want, column
    for r in rows[:3]:
        iso = r["time_utc"].replace("Z", "+00:00")
        assert math.isclose(
            datetime.fromisoformat(iso).timestamp(), float(r["timestamp"]), abs_tol=1e-3
        )

    # A per-device chart names its device in every column.
    device = sorted(_current(service)["metrics"]["disk"]["device"])[0]
    _show(page, f"#chart-disk-{device}-io")
    name, rows, header = _download(page, f"chart-disk-{device}-io")
    assert name.startswith(f"sysmon_disk-{device}-io_live-zoom_")
    assert header[2:] == [
        f"disk.read_bytes_per_sec{{device={device}}}",
        f"disk.write_bytes_per_sec{{device={device}}}",
    ]
    assert rows and all(lo <= float(r["timestamp"]) <= hi for r in rows)
    assert watch.page_errors == []
    assert watch.foreign_requests == []


GRID_ROWS = """() => [...document.querySelectorAll('.charts')].map(grid => {
  const g = grid.getBoundingClientRect();
  const boxes = [...grid.children].filter(el => el.offsetParent !== null)
    .map(el => el.getBoundingClientRect());
  return {width: g.width, boxes: boxes.map(b => [Math.round(b.top), b.left - g.left, b.width])};
})"""


def _rows(grid: dict[str, Any]) -> list[list[list[float]]]:
    rows: dict[int, list[list[float]]] = {}
    for top, left, width in grid["boxes"]:
        rows.setdefault(int(top), []).append([left, width])
    return list(rows.values())


def test_no_row_has_a_lone_chart_beside_an_empty_cell(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    page, _ = dashboard
    _open(page, service)
    page.wait_for_selector("#sec-filesystems figure.chart")
    grids = page.evaluate(GRID_ROWS)
    assert len(grids) >= 4  # History, disks, interfaces, filesystems
    two_up = 0
    for grid in grids:
        for row in _rows(grid):
            assert len(row) <= 2
            if len(row) == 1:
                left, width = row[0]
                assert left == pytest.approx(0, abs=1)
                assert width == pytest.approx(grid["width"], abs=2), "a lone chart spans the row"
            else:
                two_up += 1
                assert all(w == pytest.approx(grid["width"] / 2, abs=15) for _, w in row)
    assert two_up >= 3, "desktop width puts two charts side by side"

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function(
        "() => document.getElementById('chart-cpu').getBoundingClientRect().width < 400"
    )
    for grid in page.evaluate(GRID_ROWS):
        for row in _rows(grid):
            assert len(row) == 1
            assert row[0][1] == pytest.approx(grid["width"], abs=2)
    # Each canvas follows its figure on the next ResizeObserver callback, and a chart
    # built during the switch is measured then: wait for that, not just for chart-cpu.
    page.wait_for_function(
        "() => document.documentElement.scrollWidth <= window.innerWidth", timeout=5000
    )


CATALOG = {
    "metrics": [
        {
            "name": "disk",
            "labels": ["device", "mount"],
            "fields": [
                {"field": "read_bytes_per_sec", "unit": "bytes/s", "labels": ["device"]},
                {"field": "write_bytes_per_sec", "unit": "bytes/s", "labels": ["device"]},
                {"field": "busy_percent", "unit": "%", "labels": ["device"]},
                {"field": "percent", "unit": "%", "labels": ["mount"]},
            ],
        },
        {
            "name": "inodes",
            "labels": ["mount"],
            "fields": [
                {"field": "used", "unit": "inodes", "labels": ["mount"]},
                {"field": "used_percent", "unit": "%", "labels": ["mount"]},
            ],
        },
        {
            "name": "sensors",
            "labels": ["sensor"],
            "fields": [{"field": "temperature_celsius", "unit": "\u00b0C", "labels": ["sensor"]}],
        },
        {
            "name": "pressure",
            "labels": [],
            "fields": [
                {"field": "cpu_some_avg10", "unit": "%", "labels": []},
                {"field": "io_full_avg10", "unit": "%", "labels": []},
            ],
        },
        {
            "name": "containers",
            "labels": ["container"],
            "fields": [{"field": "cpu_percent", "unit": "%", "labels": ["container"]}],
        },
    ]
}
CURRENT = {
    "metrics": {
        "disk": {
            "total": {},
            "device": {
                "sdb": {"read_bytes_per_sec": 1.0, "write_bytes_per_sec": 2.0, "busy_percent": 3.0},
                "sda": {"read_bytes_per_sec": 1.0, "write_bytes_per_sec": 2.0, "busy_percent": 3.0},
            },
            "mount": {"/": {"percent": 50.0}, "/home": {"percent": 20.0}},
        },
        "inodes": {"total": {}, "mount": {"/": {"used": 10, "used_percent": 1.0}}},
        "sensors": {"total": {}, "sensor": {"coretemp/Core 0": {"temperature_celsius": 50}}},
        "pressure": {"total": {"cpu_some_avg10": 0.5, "io_full_avg10": 0.0}},
        # containers: in the catalog, but nothing collected: no section
    }
}
PLAN = """async ([catalog, current]) => {
  const { plan } = await import('/static/sections.js');
  return plan(catalog, current).map(s => ({id: s.id, title: s.title,
    charts: s.defs.map(d => ({title: d.title, unit: d.unit, series: d.series.map(x =>
      `${x.metric}.${x.field}` + (x.key ? `{${x.key}=${x.value}}` : ''))}))}));
}"""


def test_sections_follow_the_catalog_or_the_snapshot(
    dashboard: tuple[Any, PageWatch], service: Service
) -> None:
    """The planning function of the page's own module, fed a catalog in the shape the
    catalog endpoint serves, and then no catalog (a server without it)."""
    page, _ = dashboard
    page.goto(service.base_url + "/")
    sections = page.evaluate(PLAN, [CATALOG, CURRENT])
    assert [s["id"] for s in sections] == ["disks", "filesystems", "m-pressure", "m-sensors"]
    disks, filesystems, pressure, sensors = sections
    assert [c["title"] for c in disks["charts"]] == [
        "sda \u00b7 throughput",
        "sda \u00b7 busy",
        "sdb \u00b7 throughput",
        "sdb \u00b7 busy",
    ]
    # Inodes join the space chart of the mounts that have them.
    assert filesystems["charts"] == [
        {
            "title": "/ \u00b7 space and inodes",
            "unit": "%",
            "series": ["disk.percent{mount=/}", "inodes.used_percent{mount=/}"],
        },
        {"title": "/home \u00b7 space", "unit": "%", "series": ["disk.percent{mount=/home}"]},
    ]
    # Other metrics: a chart per unit, a line per device; totals-only fields by unit.
    assert pressure["title"] == "Pressure (PSI)"
    assert pressure["charts"] == [
        {
            "title": "pressure \u00b7 %",
            "unit": "%",
            "series": ["pressure.cpu_some_avg10", "pressure.io_full_avg10"],
        }
    ]
    assert sensors["charts"] == [
        {
            "title": "temperature by sensor",
            "unit": "\u00b0C",
            "series": ["sensors.temperature_celsius{sensor=coretemp/Core 0}"],
        }
    ]

    # No catalog: what the snapshot lists, with units guessed from the field names.
    fallback = page.evaluate(PLAN, [None, CURRENT])
    assert [s["id"] for s in fallback] == ["disks", "filesystems", "m-pressure", "m-sensors"]
    assert fallback[0]["charts"] == disks["charts"]
    assert fallback[1]["charts"] == filesystems["charts"]
    assert fallback[3]["charts"][0]["unit"] == "\u00b0C"
    assert fallback[2]["charts"][0]["unit"] == ""  # "avg10" says nothing about a unit
