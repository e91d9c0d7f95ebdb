"""The host picker and the process tree in a real browser against a real server.

Host picker: a SQLite file holds one host, so the server here gets a store that also
lists a second host, ``beta``: ``TwoHostStore`` is the real ``SQLiteStore`` (the real
agent writes the file every second with real psutil data) whose ``hosts()`` adds beta
and whose reads for beta answer this host's series shifted ``BETA_LAG`` seconds into the
past. So beta stopped reporting about two minutes ago: it is down, its newest point is
two minutes old, and its range answers end in a stretch of ``null`` (the gap a down
host's charts show). The single-host page is checked against the ordinary service.

Process tree: a parent process and its child started by the test (each holding some
memory, so they rank in the collector's table), found in the page's tree by unfolding
the path to them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import httpx
import psutil
import pytest

from sysmon.agent.service import Agent
from sysmon.config import load_settings
from sysmon.main import create_app
from sysmon.storage.base import HostSeen, RangeQuery, SeriesResult
from sysmon.storage.sqlite import SQLiteStore
from tests.support.server import serve
from tests.support.stack import short_socket
from tests.web.conftest import PageWatch, Service

pytestmark = pytest.mark.browser

LOCAL = "alpha"
BETA = "beta"
BETA_LAG = 130.0  # seconds: "down 2 min"
BETA_NIC = "beta0"  # an interface only beta has
CHARTS = ["chart-cpu", "chart-memory", "chart-load"]
HISTORY = re.compile(r"/api/v1/metrics/(?!current|processes)[a-z_]+\?")


class TwoHostStore(SQLiteStore):
    """The real store, listing a second host whose series are this host's, shifted
    ``BETA_LAG`` seconds back (see the module doc)."""

    def hosts(self) -> Sequence[HostSeen]:
        own = list(super().hosts())
        if not own or own[0].last_seen is None:
            return own
        return [*own, HostSeen(BETA, own[0].last_seen - BETA_LAG)]

    def query(self, q: RangeQuery) -> SeriesResult:
        if q.host != BETA:
            return super().query(q)
        shifted = replace(q, host=None, start=q.start + BETA_LAG, end=q.end + BETA_LAG)
        res = super().query(self._beta_labels(shifted))
        back = None if res.partial_from is None else res.partial_from - BETA_LAG
        return replace(res, timestamps=[t - BETA_LAG for t in res.timestamps], partial_from=back)

    def series(self, metric: str, host: str | None = None) -> Sequence[Any]:
        own = super().series(metric, None if host == BETA else host)
        if host == BETA and metric == "network":
            return [*own, (("interface", BETA_NIC),)]  # a device only beta has
        return own

    def _beta_labels(self, q: RangeQuery) -> RangeQuery:
        """Beta's own interface reads this host's first one (any data will do)."""
        if q.labels != (("interface", BETA_NIC),):
            return q
        nic = next(v for labels in super().series("network") for k, v in labels)
        return replace(q, labels=(("interface", nic),))


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real agent (scheduled, every second) and a server reading its file through
    ``TwoHostStore``; yields the base URL once beta is listed as down."""
    tmp = tmp_path_factory.mktemp("two-hosts")
    settings = load_settings(
        None,
        database={"path": str(tmp / "sysmon.db")},
        collection={"interval_seconds": 1},
        agent={"host": LOCAL},
    )
    sock = short_socket()
    agent = Agent(settings, channel=sock)
    agent.start()
    try:
        store = TwoHostStore(
            settings.database.path,
            retention=settings.retention,
            interval_seconds=1,
            readonly=True,
            host=LOCAL,
        )
        app = create_app(settings, store=store, channel=sock, start_agent=False)
        with serve(app) as running:
            deadline = time.monotonic() + 20
            while True:
                try:
                    body = httpx.get(f"{running.base_url}/api/v1/hosts", timeout=5).json()
                    if len(body["hosts"]) == 2 and app.state.feed.get() is not None:
                        break
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                assert time.monotonic() < deadline, "the server never listed two hosts"
                time.sleep(0.2)
            yield running.base_url
    finally:
        agent.stop()
        shutil.rmtree(sock.parent, ignore_errors=True)


@pytest.fixture
def page_watch(browser_context: Any) -> Iterator[tuple[Any, PageWatch, list[str]]]:
    page = browser_context.new_page()
    watch = PageWatch()
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    yield page, watch, requests
    page.close()


def _open(page: Any, base_url: str) -> None:
    page.goto(base_url + "/")
    page.wait_for_function(
        "ids => ids.every(id => Number(document.getElementById(id).dataset.points) > 0)",
        arg=CHARTS,
        timeout=20_000,
    )
    page.wait_for_selector("#conn[data-state=live]")


def _history(requests: list[str], since: int = 0) -> list[str]:
    return [u for u in requests[since:] if HISTORY.search(u)]


def test_picker_lists_both_hosts_and_marks_the_down_one(
    page_watch: tuple[Any, PageWatch, list[str]], two_hosts: str
) -> None:
    page, watch, requests = page_watch
    watch.attach(page, two_hosts)
    _open(page, two_hosts)
    page.wait_for_selector("#hosts:not([hidden])")
    options = page.eval_on_selector_all(
        "#host-picker option", "os => os.map(o => [o.value, o.textContent])"
    )
    assert options == [[LOCAL, f"{LOCAL} (this server)"], [BETA, f"{BETA} (down 2 min)"]]
    assert page.input_value("#host-picker") == LOCAL
    assert page.is_hidden("#host-note")
    # The local host is the server's default: no request names a host.
    assert _history(requests), "no history request seen"
    assert not [u for u in _history(requests) if "host=" in u]
    assert watch.page_errors == [] and watch.bad_responses == []


def test_picking_beta_sends_host_on_every_history_request(
    page_watch: tuple[Any, PageWatch, list[str]], two_hosts: str
) -> None:
    page, watch, requests = page_watch
    watch.attach(page, two_hosts)
    _open(page, two_hosts)
    page.wait_for_selector("#hosts:not([hidden])")
    mark = len(requests)
    with page.expect_response(
        lambda r: "/api/v1/metrics/cpu?" in r.url and "host=beta" in r.url
    ) as cpu_info:
        page.select_option("#host-picker", BETA)
    # Live cannot show beta: the page went to its last hour.
    assert page.get_attribute(".ranges button[data-range='1h']", "aria-pressed") == "true"
    assert page.get_attribute("#host-picker", "data-up") == "false"
    page.wait_for_function(
        "ids => ids.every(id => Number(document.getElementById(id).dataset.points) > 0)",
        arg=CHARTS,
    )
    after = _history(requests, mark)
    assert after and all("host=beta" in u for u in after), after
    # Beta's answer ends in the gap after its last point, drawn as a gap.
    body = cpu_info.value.json()
    values = body["fields"]["percent"]
    assert any(v is not None for v in values)
    last_point = max(t for t, v in zip(body["timestamps"], values, strict=True) if v is not None)
    assert values[-1] is None and body["end"] - last_point >= BETA_LAG - 60
    note = page.inner_text("#host-note")
    assert "beta's history" in note and f"this server's ({LOCAL})" in note

    # A section chart (per device) asks for beta too once it is shown.
    mark = len(requests)
    selector = re.compile(r"/api/v1/metrics/[a-z_]+\?.*[?&](device|interface|mount)=")
    with page.expect_request(lambda r: bool(selector.search(r.url))):
        page.locator("#sections figure.chart").first.scroll_into_view_if_needed()
    per_device = [u for u in _history(requests, mark) if selector.search(u)]
    assert per_device and all("host=beta" in u for u in per_device), per_device

    # CSV names the host whose data the chart shows.
    link = page.locator("#chart-cpu a.csv")
    link.scroll_into_view_if_needed()
    with page.expect_download() as info:
        link.click()
    assert info.value.suggested_filename.startswith(f"sysmon_{BETA}_cpu_1h_")

    # Live with beta picked: this server's agent, said visibly; no host= in Live.
    mark = len(requests)
    page.click(".ranges button[data-range='live']")
    page.wait_for_selector("#host-note:not([hidden])")
    assert page.inner_text("#host-note") == (
        f"Live data is this server's agent ({LOCAL}); pick a range for {BETA}'s history."
    )
    page.wait_for_function("() => Number(document.getElementById('chart-cpu').dataset.points) > 0")
    live = _history(requests, mark)
    assert live and not [u for u in live if "host=" in u], live
    with page.expect_download() as info:
        page.locator("#chart-cpu a.csv").click()
    assert info.value.suggested_filename.startswith(f"sysmon_{LOCAL}_cpu_live_")

    # Back to this server's host: the note goes, requests name no host.
    page.select_option("#host-picker", LOCAL)
    assert page.is_hidden("#host-note")
    mark = len(requests)
    with page.expect_response(lambda r: "/api/v1/metrics/cpu?" in r.url):
        page.click(".ranges button[data-range='1h']")
    page.wait_for_function("() => Number(document.getElementById('chart-cpu').dataset.points) > 0")
    again = _history(requests, mark)
    assert again and not [u for u in again if "host=" in u], again
    assert watch.page_errors == [] and watch.bad_responses == []


def test_single_host_page_has_no_picker(
    page_watch: tuple[Any, PageWatch, list[str]], service: Service
) -> None:
    page, watch, requests = page_watch
    watch.attach(page, service.base_url)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/hosts")) as info:
        _open(page, service.base_url)
    assert len(info.value.json()["hosts"]) == 1
    page.click(".ranges button[data-range='1h']")
    page.wait_for_function("() => Number(document.getElementById('chart-cpu').dataset.points) > 0")
    assert page.is_hidden("#hosts") and page.is_hidden("#host-note")
    assert _history(requests) and not [u for u in _history(requests) if "host=" in u]
    assert watch.page_errors == [] and watch.bad_responses == []


# ---------------------------------------------------------------- process tree

HOLDER = """
import subprocess, sys, time
block = b"\\x01" * (64 << 20)  # touched, so resident: ranks in the memory top N
if sys.argv[1] == "parent":
    child = subprocess.Popen([sys.executable, "-c", sys.argv[2], "child", ""])
    try:
        time.sleep(120)
    finally:
        child.kill()
else:
    time.sleep(120)
"""


@pytest.fixture
def parent_and_child() -> Iterator[tuple[int, int]]:
    parent = subprocess.Popen([sys.executable, "-c", HOLDER, "parent", HOLDER])
    try:
        deadline = time.monotonic() + 10
        while not (kids := psutil.Process(parent.pid).children()):
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        yield parent.pid, kids[0].pid
    finally:
        parent.kill()
        parent.wait(timeout=5)


def _path_to(roots: list[dict[str, Any]], pid: int) -> list[int] | None:
    for r in roots:
        if r["pid"] == pid:
            return [pid]
        below = _path_to(r.get("children", []), pid)
        if below is not None:
            return [r["pid"], *below]
    return None


def test_tree_nests_children_under_their_parent_and_folds(
    page_watch: tuple[Any, PageWatch, list[str]],
    service: Service,
    parent_and_child: tuple[int, int],
) -> None:
    page, watch, _ = page_watch
    watch.attach(page, service.base_url)
    parent, child = parent_and_child
    _open(page, service.base_url)
    assert page.get_attribute("#procs-tree", "aria-pressed") == "false"  # flat by default

    # Wait until a tick's table holds both (the collector reads every second).
    deadline = time.monotonic() + 15
    while True:
        tree = httpx.get(
            f"{service.base_url}/api/v1/metrics/processes?limit=20&sort=cpu&tree=1", timeout=5
        ).json()["processes"]
        path = _path_to(tree, child)
        if path is not None and path[-2:] == [parent, child]:
            break
        assert time.monotonic() < deadline, "parent and child never in the tree together"
        time.sleep(0.5)

    with page.expect_response(lambda r: "tree=1" in r.url):
        page.click("#procs-tree")
    assert page.get_attribute("#procs-tree", "aria-pressed") == "true"
    row = "#procs tbody tr[data-pid='{}']"
    # Unfold the ancestors down to the parent (everything starts folded).
    for pid in path[:-2]:
        page.locator(f"#procs button.fold[data-pid='{pid}']").click()
        page.wait_for_selector(row.format(path[path.index(pid) + 1]))
    parent_row = page.locator(row.format(parent))
    assert parent_row.get_attribute("data-folded") == "yes"
    assert page.locator(row.format(child)).count() == 0
    depth = int(parent_row.get_attribute("data-depth") or "-1")
    assert depth == len(path) - 2
    # Folded: the subtree totals, marked.
    for col in (4, 5):
        assert parent_row.locator(f"td:nth-child({col})").inner_text().startswith("\u03a3")

    page.locator(f"#procs button.fold[data-pid='{parent}']").click()
    child_row = page.locator(row.format(child))
    child_row.wait_for()
    assert child_row.get_attribute("data-parent") == str(parent)
    assert child_row.get_attribute("data-depth") == str(depth + 1)
    assert page.locator(row.format(parent)).get_attribute("data-folded") == "no"
    cpu = page.locator(row.format(parent)).locator("td:nth-child(4)").inner_text()
    assert not cpu.startswith("\u03a3")
    float(cpu)  # its own value
    # The child rows come right after the parent's.
    pids = page.eval_on_selector_all(
        "#procs tbody tr", "trs => trs.map(t => Number(t.dataset.pid))"
    )
    assert pids[pids.index(parent) + 1] == child

    # Folded again: the child is gone; a refresh keeps the fold state.
    page.locator(f"#procs button.fold[data-pid='{parent}']").click()
    page.wait_for_selector(row.format(child), state="detached")
    with page.expect_response(lambda r: "tree=1" in r.url, timeout=15_000):
        pass
    page.wait_for_timeout(200)
    assert page.locator(row.format(child)).count() == 0
    assert page.locator(row.format(parent)).get_attribute("data-folded") == "yes"

    # Back to the flat table.
    page.click("#procs-tree")
    page.wait_for_function(
        "() => document.querySelectorAll('#procs tbody tr[data-depth]').length === 0"
        " && document.querySelectorAll('#procs tbody tr').length > 1"
    )
    assert page.inner_text("#procs-count").endswith("by CPU")
    assert watch.page_errors == [] and watch.bad_responses == []


def test_another_hosts_sections_are_its_own_devices(
    page_watch: tuple[Any, PageWatch, list[str]], two_hosts: str
) -> None:
    """Picking beta plans the per-device sections from beta's own series (its
    ``beta0`` interface appears), and going back to this host takes it away."""
    page, watch, _ = page_watch
    watch.attach(page, two_hosts)
    _open(page, two_hosts)
    page.wait_for_selector("#hosts:not([hidden])")
    beta_chart = f"#sections figure.chart[id*='{BETA_NIC}']"
    assert page.locator(beta_chart).count() == 0
    with page.expect_response(lambda r: f"/api/v1/hosts/{BETA}/series" in r.url) as info:
        page.select_option("#host-picker", BETA)
    answer = info.value.json()
    assert BETA_NIC in answer["metrics"]["network"]["interface"]
    page.wait_for_selector(beta_chart, state="attached")
    with page.expect_request(lambda r: f"interface={BETA_NIC}" in r.url and "host=beta" in r.url):
        page.locator(beta_chart).first.scroll_into_view_if_needed()
    page.select_option("#host-picker", LOCAL)
    page.wait_for_selector(beta_chart, state="detached")
    assert watch.page_errors == [] and watch.bad_responses == [], watch
