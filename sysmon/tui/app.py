"""``TopApp``: the Textual application behind ``sysmon top``.

Three loops feed it, each as a Textual worker on the app's own event loop (so they update
widgets directly):

* **live**: ``/api/v1/stream`` (one snapshot per tick). When the stream cannot be opened or
  ends, it polls ``/api/v1/metrics/current`` every ``interval`` seconds and tries the
  stream again after ``stream_retry`` seconds.
* **processes**: ``/api/v1/metrics/processes?limit=100&sort=...`` after every new snapshot
  (one request at a time, repeated once if ticks arrived meanwhile) and at once when the
  sort changes; CPU and memory order come from the server, pid and name are sorted here.
* **slow**: ``/api/v1/alerts`` and ``/api/v1/health`` every ``slow_interval`` seconds.

A failed request keeps the last good data on screen and puts its one-line reason in the
status line (``ApiError``); nothing is raised into Textual, so no traceback can appear.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Input, Static
from textual.worker import Worker

from sysmon.tui.client import ApiClient, ApiError
from sysmon.tui.view import (
    PROCESS_COLUMNS,
    SORT_KEYS,
    SortKey,
    alerts_text,
    cpu_text,
    dig,
    disk_text,
    header_text,
    health_text,
    memory_text,
    network_text,
    number,
    order_processes,
    process_cells,
    server_sort,
)

CSS = """
#header { height: 1; padding: 0 1; background: $boost; }
.row { height: auto; }
.panel { border: round $primary; height: auto; padding: 0 1; width: 1fr; }
#alerts { border: round $warning; }
#filter { display: none; height: 3; }
#filter.shown { display: block; }
#processes { height: 1fr; min-height: 6; border: round $primary; }
#status { height: auto; max-height: 4; padding: 0 1; background: $boost; }
"""

_SORTS: dict[str, SortKey] = {key: key for key in SORT_KEYS}


class TopApp(App[None]):
    """A live terminal view of one sysmon server, through its HTTP API."""

    TITLE = "sysmon top"
    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("c", "sort('cpu')", "CPU"),
        Binding("m", "sort('memory')", "Memory"),
        Binding("p", "sort('pid')", "PID"),
        Binding("n", "sort('name')", "Name"),
        # Priority: acted on as the key arrives, before the keys queued behind it (below).
        Binding("slash", "filter", "Filter", priority=True),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        interval: float = 1.0,
        slow_interval: float = 5.0,
        stream_retry: float = 10.0,
        timeout: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__()
        self.url = url.rstrip("/")
        self.client = ApiClient(self.url, token, timeout=timeout, verify=verify)
        self.interval = interval
        self.slow_interval = slow_interval
        self.stream_retry = stream_retry
        self.sort: SortKey = "cpu"
        self.needle = ""
        self.snapshot: dict[str, Any] | None = None
        self.system: dict[str, Any] | None = None
        self.health: dict[str, Any] | None = None
        self.rows: list[dict[str, Any]] = []
        self.rows_sort = "cpu"
        self.mode = "connecting"
        self.errors: dict[str, str] = {}
        self._shown: dict[str, str | Text] = {}
        self._table_content: list[tuple[str, tuple[str, ...]]] | None = None
        self._processes_worker: Worker[None] | None = None
        self._processes_stale = False

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with Horizontal(classes="row"):
            yield Static("waiting for data", id="cpu", classes="panel")
            yield Static(id="memory", classes="panel")
        with Horizontal(classes="row"):
            yield Static(id="disks", classes="panel")
            yield Static(id="network", classes="panel")
        yield Static("loading alerts", id="alerts", classes="panel")
        yield Input(
            placeholder="filter: name or command line (Enter keeps it, Esc clears)", id="filter"
        )
        table: DataTable[str] = DataTable(id="processes", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        for panel, title in (
            ("cpu", "CPU"),
            ("memory", "Memory"),
            ("disks", "Disks"),
            ("network", "Network"),
            ("alerts", "Alerts"),
        ):
            self.query_one(f"#{panel}", Static).border_title = title
        table: DataTable[str] = self.query_one("#processes", DataTable)
        table.add_columns(*PROCESS_COLUMNS)
        table.focus()
        self._render_header()
        self._render_status()
        self._render_table()
        self._live()
        self._poll_slow()
        self.set_interval(self.slow_interval, self._poll_slow)

    async def on_unmount(self) -> None:
        # Stop the loops before closing their client: a request started on a closed
        # client raises RuntimeError, not an ApiError.
        self.workers.cancel_all()
        await self.client.aclose()

    def _table(self) -> DataTable[str] | None:
        try:
            table: DataTable[str] = self.query_one("#processes", DataTable)
        except NoMatches:
            return None
        return table

    def _update(self, widget_id: str, content: str | Text) -> None:
        """Replace a panel's content when it changed (an update costs a layout pass); a
        no-op once the app is closing (its widgets are removed before its workers are
        cancelled, and a worker may finish an await then)."""
        if self._shown.get(widget_id) == content:
            return
        with contextlib.suppress(NoMatches):
            self.query_one(f"#{widget_id}", Static).update(content)
            self._shown[widget_id] = content

    # -- data loops ----------------------------------------------------------------------

    @work(exclusive=True, group="live")
    async def _live(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                async for snapshot in self.client.stream():
                    self.mode = "live"
                    self._ok("live")
                    self._show_snapshot(snapshot)
            except ApiError as exc:
                self.mode = f"polling every {self.interval:g}s (stream: {exc})"
            until = loop.time() + self.stream_retry
            while True:
                try:
                    self._show_snapshot(await self.client.current())
                    self._ok("live")
                except ApiError as exc:
                    self._fail("live", str(exc))
                if loop.time() + self.interval > until:
                    break
                await asyncio.sleep(self.interval)
            await asyncio.sleep(self.interval)

    def _refresh_processes(self, *, restart: bool = False) -> None:
        """Ask for the table again. A request in flight is not cancelled by the next tick
        (on a link slower than the tick the table would then never arrive): it is
        repeated once when it ends. A new sort order (``restart``) does cancel it."""
        self._processes_stale = True
        worker = self._processes_worker
        if restart or worker is None or worker.is_finished:
            self._processes_worker = self._load_processes()

    @work(exclusive=True, group="processes")
    async def _load_processes(self) -> None:
        while self._processes_stale:
            self._processes_stale = False
            sort = server_sort(self.sort)
            try:
                rows = await self.client.processes(sort, 100)
            except ApiError as exc:
                self._fail("processes", str(exc))
                return
            self._ok("processes")
            self.rows, self.rows_sort = rows, sort
            self._render_table()

    @work(exclusive=True, group="slow")
    async def _poll_slow(self) -> None:
        try:
            self.health = await self.client.health()
            self._ok("health")
        except ApiError as exc:
            self.health = None
            self._fail("health", str(exc))
        self._render_status()
        if self.system is None:
            try:
                self.system = await self.client.system()
                self._render_header()
            except ApiError:
                pass  # the live loop reports the same failure
        try:
            active = await self.client.alerts()
        except ApiError as exc:
            self._update("alerts", f"alerts unavailable: {exc}")
            return
        self._update("alerts", alerts_text(active, number(dig(self.snapshot, "timestamp"))))

    # -- rendering -----------------------------------------------------------------------

    def _show_snapshot(self, snapshot: dict[str, Any]) -> None:
        previous = number(dig(self.snapshot, "timestamp"))
        self.snapshot = snapshot
        self._update("cpu", cpu_text(snapshot))
        self._update("memory", memory_text(snapshot))
        self._update("disks", disk_text(snapshot))
        self._update("network", network_text(snapshot))
        self._render_header()
        if number(snapshot.get("timestamp")) != previous or not self.rows:
            self._refresh_processes()

    def _render_header(self) -> None:
        self._update("header", header_text(self.system, self.snapshot, self.url))

    def _render_table(self) -> None:
        """Rebuild the rows (keeping the selected process selected) when they changed:
        drawing a DataTable is the costliest thing this app does."""
        table = self._table()
        if table is None:
            return
        rows: dict[str, tuple[str, ...]] = {}
        for row in order_processes(self.rows, self.sort, self.needle):
            rows.setdefault(str(row.get("pid")), process_cells(row))
        title = f"Processes  sort: {self.sort}"
        if self.needle:
            title += f"  filter: {self.needle!r} ({len(rows)} of {len(self.rows)})"
        table.border_title = title
        table.border_subtitle = "c cpu  m memory  p pid  n name  / filter"
        content = list(rows.items())
        if content == self._table_content:
            return
        self._table_content = content
        selected = None
        if table.row_count and table.is_valid_row_index(table.cursor_row):
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        table.clear()
        for key, cells in content:
            table.add_row(*cells, key=key)
        if selected in rows:
            table.move_cursor(row=table.get_row_index(selected))

    def _render_status(self) -> None:
        messages = list(dict.fromkeys(self.errors.values()))
        if messages:
            self._update("status", Text("✖ " + "; ".join(messages), style="bold red"))
            return
        line = health_text(self.health)
        line.append(f"   ● {self.mode}", style="green" if self.mode == "live" else "yellow")
        self._update("status", line)

    def _fail(self, source: str, message: str) -> None:
        if self.errors.get(source) != message:
            self.errors[source] = message
            self._render_status()

    def _ok(self, source: str) -> None:
        if self.errors.pop(source, None) is not None or source == "live":
            self._render_status()

    # -- keys ----------------------------------------------------------------------------

    def action_sort(self, key: str) -> None:
        sort = _SORTS.get(key)
        if sort is None:
            return
        self.sort = sort
        if server_sort(self.sort) == self.rows_sort:
            self._render_table()
        else:
            self._refresh_processes(restart=True)

    def action_filter(self) -> None:
        """Show and focus the filter box. Over SSH "/chrom" often arrives in one read:
        a plain binding would run only after those keys had reached the table (where c
        and m sort), and ``focus()`` is a queued callback too. So "/" is a priority
        binding and the focus moves at once; a "/" typed in the box is just text."""
        box = self.query_one("#filter", Input)
        if box.has_focus:
            box.insert_text_at_cursor("/")
            return
        box.add_class("shown")
        self.screen.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.needle = ""
        self._render_table()
        self._focus_table()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self._render_table()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            event.input.remove_class("shown")
        self._focus_table()

    def _focus_table(self) -> None:
        table = self._table()
        if table is not None:
            table.focus()
