"""Issue 5 benchmark: what the dashboard costs the browser and the server.

1. Time to first chart: a cold page load (fresh browser context, empty cache) on
   localhost until the page's ``sysmon:first-chart`` performance mark (set when the first
   uPlot chart has data), median of ``--runs`` loads.
2. Bytes of JS + CSS shipped: every script and stylesheet the page loads (uPlot included),
   decoded body size, against the 300 KB budget.
3. Server CPU with ``--dashboards`` pages open for ``--seconds`` versus none: utime+stime
   of the server process tree from /proc/<pid>/stat, as % of one core. The idle window is
   measured before and after the loaded one (A-B-A) and averaged, so a drift in the
   collector's own cost does not count as dashboard cost.

    .venv/bin/python -m bench.bench_dashboard [--seconds 60] [--dashboards 10] [--runs 5]
        [--write bench/dashboard_results.md]

Needs /usr/bin/chromium (Debian package) and ``npm ci`` done.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.proctree import sample_tree
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.process import free_port, service_env, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
SERVER_ARGV = [sys.executable, "-m", "uvicorn", "sysmon.main:app", "--host", "127.0.0.1"]
BUDGET_BYTES = 300 * 1000
CPU_BUDGET_PERCENT = 1.0
FIRST_CHART_JS = """() => {
  const m = performance.getEntriesByName('sysmon:first-chart')[0];
  return m ? m.startTime : null;
}"""
INIT_JS = "() => performance.getEntriesByName('sysmon:init')[0].startTime"
RESOURCES_JS = """() => performance.getEntriesByType('resource')
  .filter(e => e.initiatorType === 'script' || e.initiatorType === 'link'
               || /\\.(js|css)(\\?|$)/.test(e.name))
  .map(e => ({name: e.name, decoded: e.decodedBodySize, transfer: e.transferSize}))"""


def log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def cpu_window(pid: int, seconds: float) -> float:
    """Average CPU of the process tree over ``seconds``, in % of one core."""
    start = sample_tree(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    end = sample_tree(pid)
    return (end.cpu_seconds - start.cpu_seconds) / (time.monotonic() - t0) * 100


def first_chart(
    browser: Any, base: str, runs: int
) -> tuple[list[float], list[float], list[dict[str, Any]]]:
    """Cold loads: (first-chart ms, app.js start ms, resources of the last load)."""
    times: list[float] = []
    inits: list[float] = []
    resources: list[dict[str, Any]] = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(base + "/")
        page.wait_for_function(FIRST_CHART_JS, timeout=20_000)
        times.append(float(page.evaluate(FIRST_CHART_JS)))
        inits.append(float(page.evaluate(INIT_JS)))
        resources = page.evaluate(RESOURCES_JS)
        context.close()
    return times, inits, resources


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--dashboards", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--write", help="write the markdown report to this file")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="sysmon-bench-dash-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [*SERVER_ARGV, "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        env=service_env(tmp / "sysmon.db"),
        stdout=server_log,
        stderr=subprocess.STDOUT,
    )
    results: dict[str, Any] = {}
    try:
        wait_healthy(base)
        log(f"server up on {base}; warm-up {args.warmup:.0f}s")
        time.sleep(args.warmup)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            results["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
            times, inits, resources = first_chart(browser, base, args.runs)
            results["first_chart_ms"] = [round(t) for t in times]
            results["first_chart_ms_median"] = round(statistics.median(times))
            results["init_ms_median"] = round(statistics.median(inits))
            results["resources"] = resources
            results["js_css_bytes"] = sum(int(r["decoded"]) for r in resources)
            log(f"first chart median {results['first_chart_ms_median']} ms")

            idle_before = cpu_window(proc.pid, args.seconds)
            log(f"idle: {idle_before:.2f}% of a core")
            # One context per dashboard, i.e. ten viewers: tabs of one browser profile
            # share its limit of 6 HTTP/1.1 connections per server, which open streams
            # would exhaust (the page releases its stream when its tab is hidden).
            contexts = [
                browser.new_context(viewport={"width": 1280, "height": 900})
                for _ in range(args.dashboards)
            ]
            pages = []
            for context in contexts:
                page = context.new_page()
                page.goto(base + "/")
                pages.append(page)
            for page in pages:
                page.wait_for_function(FIRST_CHART_JS, timeout=20_000)
            time.sleep(3)  # let the initial history requests finish
            loaded = cpu_window(proc.pid, args.seconds)
            log(f"{args.dashboards} dashboards: {loaded:.2f}% of a core")
            states = [page.evaluate("document.visibilityState") for page in pages]
            ages = [
                time.time() - float(page.get_attribute("#updated", "data-ts") or 0)
                for page in pages
            ]
            for context in contexts:
                context.close()
            browser.close()
        time.sleep(2)
        idle_after = cpu_window(proc.pid, args.seconds)
        log(f"idle again: {idle_after:.2f}% of a core")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        server_log.close()

    results["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    idle = (idle_before + idle_after) / 2
    results.update(
        {
            "seconds": args.seconds,
            "dashboards": args.dashboards,
            "cpu_idle_before_percent": round(idle_before, 3),
            "cpu_idle_after_percent": round(idle_after, 3),
            "cpu_loaded_percent": round(loaded, 3),
            "cpu_added_percent": round(loaded - idle, 3),
            "pages_visible": states.count("visible"),
            "max_snapshot_age_seconds": round(max(ages), 2),
        }
    )
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    if args.write:
        Path(args.write).write_text(report(results, sys.argv))
        log(f"wrote {args.write}")
    return 0


def ok(cond: bool) -> str:
    return "yes" if cond else "**NO**"


def report(r: dict[str, Any], argv: list[str]) -> str:
    rows = "\n".join(
        f"| `{Path(x['name'].split('?')[0]).name}` | {x['decoded']:,} | {x['transfer']:,} |"
        for x in r["resources"]
    )
    cmd = " ".join(["python -m bench.bench_dashboard", *argv[1:]])
    return f"""# Dashboard benchmark (issue 5)

Command (from the repo root, after `npm ci`):

    .venv/bin/{cmd}

Machine: {os.cpu_count()} cores, {platform.system()} {platform.release()}, Chromium at
{CHROMIUM}, server `uvicorn app.main:app` collecting every 1 s into a fresh SQLite file.
The machine was shared with other work while this ran (load average {r["loadavg_start"][0]} at
the start, {r["loadavg_end"][0]} at the end, on {os.cpu_count()} cores), so treat small
differences as noise.

## Results

| measure | value | target | met |
|---|---|---|---|
| time to first chart (median of {len(r["first_chart_ms"])} cold loads) | \
{r["first_chart_ms_median"]} ms (runs: {", ".join(map(str, r["first_chart_ms"]))}) | - | - |
| of which: until app.js starts (HTML, CSS, uPlot, parse) | {r["init_ms_median"]} ms | - | - |
| JS + CSS shipped (decoded, uPlot included) | {r["js_css_bytes"]:,} bytes | < 300 KB | \
{ok(r["js_css_bytes"] < BUDGET_BYTES)} |
| server CPU, no dashboard (before / after) | {r["cpu_idle_before_percent"]:.2f}% / \
{r["cpu_idle_after_percent"]:.2f}% of a core | - | - |
| server CPU, {r["dashboards"]} dashboards for {r["seconds"]:.0f} s | \
{r["cpu_loaded_percent"]:.2f}% of a core | - | - |
| added by {r["dashboards"]} dashboards | {r["cpu_added_percent"]:+.2f}% of a core | < 1% | \
{ok(r["cpu_added_percent"] < CPU_BUDGET_PERCENT)} |

During the loaded window all {r["pages_visible"]} pages were `visible` and the newest
snapshot on every page was at most {r["max_snapshot_age_seconds"]} s old when it ended,
so each page really was receiving the live stream.

Files the page loads (JS and CSS; no compression is configured, so transfer includes
headers on top of the body):

| file | decoded bytes | transfer bytes |
|---|---|---|
{rows}

How it is measured: time to first chart is the `sysmon:first-chart` performance mark
(ms after navigation start), set by `app.js` right after the first uPlot chart receives
data; each run uses a new browser context, so nothing is cached. CPU is utime+stime of
the server's process tree from `/proc/<pid>/stat` over each window, divided by the wall
time; the idle figure is the mean of the windows before and after the dashboards.
"""


if __name__ == "__main__":
    raise SystemExit(main())
