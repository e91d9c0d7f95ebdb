"""Helpers for driving ``TopApp`` with Textual's pilot: wait on conditions, read widgets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from sysmon.tui.app import TopApp
from sysmon.tui.view import PROCESS_COLUMNS

SIZE = (180, 60)


def fast_app(url: str, token: str | None = None) -> TopApp:
    """Short intervals so waits are short; the loops are the real ones."""
    return TopApp(url, token, interval=0.1, slow_interval=0.5, stream_retry=1.0, timeout=2.0)


async def until(
    pilot: Pilot[None], condition: Callable[[], bool], what: str, timeout: float = 30.0
) -> None:
    """Poll ``condition`` every 20 ms of app time; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def text(app: TopApp, widget_id: str) -> str:
    content = app.query_one(f"#{widget_id}", Static).content
    return content.plain if isinstance(content, Text) else str(content)


def table_pids(app: TopApp) -> list[int]:
    table: DataTable[str] = app.query_one("#processes", DataTable)
    return [int(str(row.key.value)) for row in table.ordered_rows]


def table_names(app: TopApp) -> list[str]:
    table: DataTable[str] = app.query_one("#processes", DataTable)
    column = PROCESS_COLUMNS.index("NAME")
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def in_thread(func: Callable[[], object]) -> None:
    """Run a blocking call (a stack tick) without stalling the app's event loop."""
    await asyncio.to_thread(func)
