"""``sysmon top`` driven by Textual's pilot against a real agent and server.

The stack ticks on demand (fake clock), so the numbers on screen can be compared exactly
with what the API answers at the same moment; nothing sleeps except short condition
polls.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from textual import events

from sysmon.tui.app import TopApp
from sysmon.tui.client import ApiError
from sysmon.tui.format import fmt_percent
from sysmon.tui.view import matches
from tests.security.auth_support import auth_stack
from tests.support.stack import Stack
from tests.tui.pilot import SIZE, fast_app, in_thread, table_names, table_pids, text, until


def get(server: Stack, path: str, **params: Any) -> Any:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        answer = client.get(path, params=params)
        answer.raise_for_status()
        return answer.json()


def cpu_total(server: Stack) -> str:
    return fmt_percent(get(server, "/api/v1/metrics/current")["metrics"]["cpu"]["total"]["percent"])


def shown_total(app: TopApp) -> str:
    """The first percentage of the CPU panel: the total (the bar before it has no digits)."""
    first_line = text(app, "cpu").splitlines()[0]
    found = re.search(r"[\d.]+%", first_line)
    assert found is not None, first_line
    return found.group()


def pids(server: Stack, sort: str) -> list[int]:
    rows = get(server, "/api/v1/metrics/processes", limit=100, sort=sort)["processes"]
    return [r["pid"] for r in rows]


def test_shows_the_host_cpu_from_each_tick_over_the_live_stream(server: Stack) -> None:
    async def scenario() -> None:
        app = fast_app(server.base_url)
        async with app.run_test(size=SIZE) as pilot:
            first = cpu_total(server)
            await until(pilot, lambda: text(app, "cpu").startswith("Total "), "the CPU panel")
            assert shown_total(app) == first
            await until(pilot, lambda: "● live" in text(app, "status"), "the live stream")
            assert "health: " in text(app, "status")
            assert text(app, "memory").startswith("Mem ")
            assert "total" in text(app, "network") and "all" in text(app, "disks")

            stamp = app.snapshot["timestamp"] if app.snapshot else None
            await in_thread(server.tick)
            await until(
                pilot,
                lambda: app.snapshot is not None and app.snapshot["timestamp"] != stamp,
                "the next tick",
            )
            assert shown_total(app) == cpu_total(server)
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


@pytest.fixture
def busy(server: Stack) -> Iterator[int]:
    """A process that spins between two ticks, so that ordering by CPU differs from
    ordering by memory (with ticks back to back most processes show 0 % CPU)."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        server.tick()  # first sighting: its CPU time becomes the baseline
        start = psutil.Process(child.pid).cpu_times()
        deadline = time.monotonic() + 10
        while sum(psutil.Process(child.pid).cpu_times()[:2]) - sum(start[:2]) < 0.05:
            assert time.monotonic() < deadline, "the busy process never ran"
            time.sleep(0.01)
        server.tick()
        yield child.pid
    finally:
        child.kill()
        child.wait()


def test_m_sorts_by_memory_like_the_api_then_p_and_n_sort_locally(server: Stack, busy: int) -> None:
    by_cpu, by_memory = pids(server, "cpu"), pids(server, "memory")
    assert busy in by_cpu
    assert by_cpu != by_memory, "precondition: the two orders differ on this machine"

    async def scenario() -> None:
        app = fast_app(server.base_url)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: table_pids(app) == by_cpu, "rows in CPU order")
            await pilot.press("m")
            await until(pilot, lambda: table_pids(app) == by_memory, "rows in memory order")
            await pilot.press("p")
            await until(pilot, lambda: table_pids(app) == sorted(by_cpu), "rows in pid order")
            await pilot.press("n")
            await until(
                pilot,
                lambda: table_names(app) == sorted(table_names(app), key=str.casefold),
                "rows in name order",
            )
            await pilot.press("c")
            await until(pilot, lambda: table_pids(app) == by_cpu, "rows in CPU order again")

    asyncio.run(scenario())


def test_slash_filters_by_name_and_escape_clears(server: Stack) -> None:
    rows = get(server, "/api/v1/metrics/processes", limit=100, sort="cpu")["processes"]
    # A name typed as a user would: letters only, from a process that is not everywhere.
    names = sorted({r["name"] for r in rows}, key=lambda n: sum(matches(r, n) for r in rows))
    needle = next(run[:6] for n in names for run in re.findall("[A-Za-z]{3,}", n))
    expected = [r["pid"] for r in rows if matches(r, needle)]
    assert 0 < len(expected) < len(rows)

    async def scenario() -> None:
        app = fast_app(server.base_url)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: len(table_pids(app)) == len(rows), "the full table")
            await pilot.press("slash", *needle)
            await until(pilot, lambda: table_pids(app) == expected, f"rows matching {needle!r}")
            assert app.sort == "cpu", "letters typed into the filter are not sort keys"
            await pilot.press("enter")  # keeps the filter, back to the table
            assert table_pids(app) == expected
            await pilot.press("escape")
            await until(pilot, lambda: len(table_pids(app)) == len(rows), "the full table again")

    asyncio.run(scenario())


def test_shows_an_active_alert(server: Stack) -> None:
    (alert,) = get(server, "/api/v1/alerts")["alerts"]
    assert (alert["rule"], alert["state"]) == ("mem_any", "firing")

    async def scenario() -> None:
        app = fast_app(server.base_url)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "mem_any" in text(app, "alerts"), "the alert")
            line = text(app, "alerts")
            assert line.startswith("FIRING ") and "memory.percent = " in line and "> 0" in line

    asyncio.run(scenario())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_server_is_a_line_on_screen_not_a_traceback() -> None:
    url = f"http://127.0.0.1:{closed_port()}"

    async def scenario() -> None:
        app = fast_app(url)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "cannot reach" in text(app, "status"), "the error line")
            assert text(app, "status") == (
                f"✖ cannot reach {url}: connection refused "
                "(is sysmon running? --url to point elsewhere)"
            )
            await pilot.press("m")  # keys still work while disconnected
            await pilot.pause(0.3)  # a few retries of every loop
            assert app.is_running
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


def test_without_a_token_says_how_to_pass_one_and_with_an_api_key_it_works(
    tmp_path: Path,
) -> None:
    with auth_stack(tmp_path) as api:
        api.running.tick(2)
        created = api.client.post("/api/v1/keys", json={"name": "top"}, headers=api.bearer("alice"))
        key = created.json()["key"]
        url = api.running.base_url

        async def scenario() -> None:
            refused = fast_app(url)
            async with refused.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: "401" in text(refused, "status"), "the 401 line")
                assert "pass --token TOKEN or set SYSMON_TOKEN" in text(refused, "status")
            allowed = fast_app(url, token=key)
            async with allowed.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: "● live" in text(allowed, "status"), "the stream")
                assert text(allowed, "cpu").startswith("Total ")
                await until(pilot, lambda: len(table_pids(allowed)) > 0, "process rows")

        asyncio.run(scenario())


def test_falls_back_to_polling_current_when_the_stream_fails(server: Stack) -> None:
    async def scenario() -> None:
        app = fast_app(server.base_url)

        async def broken_stream() -> AsyncIterator[dict[str, Any]]:
            raise ApiError("502 a proxy that buffers event streams")
            yield {}  # pragma: no cover - makes this an async generator

        app.client.stream = broken_stream  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: "polling every" in text(app, "status"), "polling mode")
            assert "502 a proxy" in text(app, "status")
            await until(pilot, lambda: text(app, "cpu").startswith("Total "), "the CPU panel")
            stamp = app.snapshot["timestamp"] if app.snapshot else None
            await in_thread(server.tick)
            await until(
                pilot,
                lambda: app.snapshot is not None and app.snapshot["timestamp"] != stamp,
                "the next tick, by polling",
            )
            assert shown_total(app) == cpu_total(server)

    asyncio.run(scenario())


def test_keys_typed_right_after_slash_spell_the_filter_not_sort_keys() -> None:
    """As over SSH: the terminal delivers "/chrom" in one read, before any repaint."""

    async def scenario() -> None:
        app = fast_app(f"http://127.0.0.1:{closed_port()}")
        async with app.run_test(size=SIZE) as pilot:
            for key, char in [("slash", "/"), *((c, c) for c in "chrom")]:
                app.post_message(events.Key(key, char))
            await until(pilot, lambda: app.needle == "chrom", "the filter text")
            assert app.sort == "cpu"
            await pilot.press("slash", "u")  # in the box, "/" is text (paths)
            assert app.needle == "chrom/u"

    asyncio.run(scenario())
