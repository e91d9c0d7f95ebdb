"""A real sysmon app on 127.0.0.1 with the edges under the test's control.

Real: the app, the HTTP server, the collection loop, the buffered writer and the SQLite
file. Controlled: the clock (``FakeClock``, ticks are driven by the test, nothing
sleeps), the system source (``FakeSource`` fed from tests/fixtures, so a fault can be
injected into exactly one psutil call) and, for the disk-full case, the size cap of the
database file (``CappedStore``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.models import Snapshot
from sysmon.storage.base import RangeQuery
from sysmon.storage.sqlite import SQLiteStore
from tests.collectors.fakes import FakeSource, load_ticks, only_fake_source
from tests.support.stack import Stack, stack

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a whole second


class CappedStore(SQLiteStore):
    """The real store whose file can be made "full" and "emptied" while it runs.

    ``PRAGMA max_page_count`` is SQLite's own size limit: a transaction that needs one
    more page fails with SQLITE_FULL, the same error a full disk gives, through the same
    code path (no monkeypatching of sqlite). It is per connection, so it is set on the
    store's writer connection; the test drives ticks itself, so nothing writes at the
    same time.
    """

    def _writer_connection(self) -> sqlite3.Connection:
        conn = self._writer
        assert conn is not None, "store not open"
        return conn

    def fill_disk(self) -> None:
        """No page beyond the ones the file has now (free pages inside it still fill)."""
        conn = self._writer_connection()
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {pages}")

    def free_disk(self) -> None:
        self._writer_connection().execute("PRAGMA max_page_count = 1073741823")


class TickingSource(FakeSource):
    """``FakeSource`` that walks through the fixture ticks and then stays on the last."""

    def __init__(self) -> None:
        self._ticks = load_ticks()
        super().__init__(self._ticks[0])
        self._i = 0

    def next_tick(self) -> None:
        self._i = min(self._i + 1, len(self._ticks) - 1)
        self.set_state(self._ticks[self._i])


@dataclass
class Service:
    stack: Stack
    client: httpx.Client
    clock: FakeClock
    source: TickingSource
    store: SQLiteStore
    db: Path

    @property
    def app(self) -> Any:
        return self.stack.app

    def tick(self, n: int = 1) -> list[Snapshot]:
        """Collect ``n`` ticks one second apart (the metronome's job, done inline)."""
        out = []
        for _ in range(n):
            out.extend(self.stack.tick(1))
            self.source.next_tick()
        return out

    @property
    def pending(self) -> int:
        return int(self.stack.agent.writer.pending)

    def health(self) -> dict[str, Any]:
        r = self.client.get("/api/v1/health")
        assert r.status_code == 200
        return dict(r.json())

    def stored(self, start: float, end: float, metric: str = "memory") -> list[float]:
        """Timestamps in [start, end] with a stored raw tick (``total_bytes`` is a gauge
        every fixture tick has)."""
        res = self.store.query(RangeQuery(metric, start, end, resolution="raw"))
        values = res.fields.get("total_bytes", [])
        return [t for t, v in zip(res.timestamps, values, strict=True) if v is not None]


def settings_for(db: Path, **overrides: Any) -> Settings:
    """Every sample from ``FakeSource``: the collectors that read the host themselves
    are off unless a test turns them on."""
    collectors = {**only_fake_source(), **overrides.pop("collectors", {})}
    return load_settings(None, database={"path": str(db)}, collectors=collectors, **overrides)


@contextmanager
def service(
    tmp_path: Path,
    *,
    store: SQLiteStore | None = None,
    source: TickingSource | None = None,
    **overrides: Any,
) -> Iterator[Service]:
    db = tmp_path / "sysmon.db"
    settings = settings_for(db, **overrides)
    clock = FakeClock(start=START)
    the_store = store or CappedStore(
        db, retention=settings.retention, interval_seconds=1, clock=clock
    )
    the_source = source or TickingSource()
    with (
        stack(settings, clock, source=the_source, store=the_store) as running,
        httpx.Client(base_url=running.base_url, timeout=30) as client,
    ):
        yield Service(running, client, clock, the_source, the_store, db)
