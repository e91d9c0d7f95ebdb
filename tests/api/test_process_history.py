"""Process history: per grid point the sums of the matching rows of one stored table,
from the per-name index of closed windows and the open window's tables; over HTTP."""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.errors import QueryError
from sysmon.main import create_app
from sysmon.storage.base import Capabilities
from sysmon.storage.sqlite import SQLiteStore, processes
from sysmon.storage.sqlite.processes import history_grid, name_index, table_sums
from tests.storage.helpers import T0, retention, snap
from tests.support.server import serve


def rows(i: int) -> list[dict[str, Any]]:
    """Two postgres backends (one more every 4th table), a shell; numbers vary with i."""
    out: list[dict[str, Any]] = [
        {
            "pid": 100,
            "name": "postgres",
            "cpu_percent": 1.0 + i,
            "memory_percent": 2.0,
            "rss_bytes": 1000,
        },
        {
            "pid": 101,
            "name": "postgres",
            "cpu_percent": 0.5,
            "memory_percent": 1.0,
            "rss_bytes": 500,
        },
        {"pid": 7, "name": "bash", "cpu_percent": 0.0, "memory_percent": 0.1, "rss_bytes": 10},
    ]
    if i % 4 == 0:
        out.append(
            {
                "pid": 102,
                "name": "postgres",
                "cpu_percent": 2.0,
                "memory_percent": 0.5,
                "rss_bytes": 250,
            }
        )
    return out


def expected(i: int) -> tuple[float, float, float, int]:
    extra = i % 4 == 0
    return (
        1.5 + i + (2.0 if extra else 0.0),
        3.0 + (0.5 if extra else 0.0),
        1500.0 + (250.0 if extra else 0.0),
        3 if extra else 2,
    )


def fill(store: SQLiteStore, clock: FakeClock, n: int, skip: range = range(0)) -> None:
    """``n`` ticks 10 s apart from T0 (one table each), none in ``skip``; then maintain."""
    for i in range(n):
        if i in skip:
            continue
        ts = T0 + 10 * i
        clock.set_wall(ts)
        store.write(snap(ts, {("cpu", ()): {"percent": 1.0}}, processes=rows(i)))
    for _ in range(50):
        store.maintain(clock.time())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "s.db", retention(), 10.0, clock)
    s.open()
    yield s
    s.close()


# ---------------------------------------------------------------- pure helpers
def test_table_sums_and_name_index() -> None:
    assert table_sums(rows(0), lambda r: r["name"] == "postgres") == (3.5, 3.5, 1750.0, 3)
    assert table_sums(rows(1), lambda r: r["pid"] == 999) == (0.0, 0.0, 0.0, 0)
    index = name_index([(T0 + 10, rows(1)), (T0, rows(0))])
    assert set(index) == {"", "postgres", "bash"}
    block = json.loads(zlib.decompress(index["postgres"]))
    assert block == [[T0, T0 + 10], [3.5, 2.5], [3.5, 3.0], [1750.0, 1500.0], [3.0, 2.0]]
    assert json.loads(zlib.decompress(index[""]))[4] == [4.0, 3.0]  # rows per table


@pytest.mark.parametrize(
    ("start", "end", "every", "mp", "want"),
    [
        (T0, T0 + 100, 10.0, 500, (10.0, T0, 11)),
        (T0 + 5, T0 + 86_400, 10.0, 500, (180.0, T0, 481)),
        (T0, T0 + 86_400, 10.0, 2, (44_140.0, T0 - T0 % 44_140, 2)),
    ],
)
def test_history_grid(
    start: float, end: float, every: float, mp: int, want: tuple[float, float, int]
) -> None:
    step, t0, n = history_grid(start, end, every, mp)
    assert (step, t0, n) == want
    assert n <= mp and t0 <= start < t0 + step and t0 + (n - 1) * step <= end


# ---------------------------------------------------------------- the store
def test_history_by_name_from_index_and_hot(store: SQLiteStore, clock: FakeClock) -> None:
    fill(store, clock, 360, skip=range(50, 53))  # an hour; the first window compacted
    with store._pool.reading() as conn:
        indexed = conn.execute("SELECT count(*) FROM proc_name WHERE name = ''").fetchone()[0]
    assert indexed >= 1, "the closed window has per-name sums"
    r = store.process_history(T0, T0 + 3590, 500, name="postgres")
    assert r.step_seconds == 10.0 and len(r.timestamps) == 360
    for i in (0, 1, 49, 53, 200, 359):
        got = tuple(r.fields[f][i] for f in ("cpu_percent", "memory_percent", "rss_bytes", "count"))
        assert got == pytest.approx(expected(i)), i
    assert r.fields["count"][50:53] == [None, None, None], "no table stored: a gap"
    # Only the open window's tables were parsed (the closed one came from the index).
    assert 0 < r.tables_parsed <= 180


def test_zero_when_stored_but_nothing_matches(store: SQLiteStore, clock: FakeClock) -> None:
    fill(store, clock, 360)
    r = store.process_history(T0, T0 + 3590, 500, name="nginx")
    assert set(r.fields["count"]) == {0} and set(r.fields["cpu_percent"]) == {0.0}


def test_downsampled_reads_the_first_table_of_each_step(
    store: SQLiteStore, clock: FakeClock
) -> None:
    fill(store, clock, 360)
    r = store.process_history(T0, T0 + 3590, 10, name="postgres")
    assert r.step_seconds == 360.0 and len(r.timestamps) == 10
    assert r.fields["cpu_percent"] == [pytest.approx(expected(36 * k)[0]) for k in range(10)]
    assert r.tables_parsed <= 10


def test_by_pid_scans_and_is_bounded(
    store: SQLiteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, clock, 360)
    r = store.process_history(T0, T0 + 3590, 500, pid=102)
    assert r.fields["count"][:5] == [1, 0, 0, 0, 1]
    assert r.fields["rss_bytes"][0] == 250.0
    with pytest.raises(QueryError) as err:
        store.process_history(T0 - 86_400, T0 + 3590, 500, name="x", pid=1)
    assert err.value.param == "name"
    monkeypatch.setattr(processes, "PID_HISTORY_WINDOWS", 0)  # the one closed window is over
    with pytest.raises(QueryError) as err:
        store.process_history(T0, T0 + 3590, 500, pid=102)
    assert err.value.param == "start" and "use name" in err.value.message
    assert store.process_history(T0, T0 + 3590, 500, name="postgres").fields["count"][0] == 3


def test_index_goes_with_its_window(store: SQLiteStore, clock: FakeClock) -> None:
    fill(store, clock, 360)
    clock.set_wall(T0 + 3 * 86_400)  # past the raw tier's 1 d
    for _ in range(50):
        store.maintain(clock.time())
    with store._pool.reading() as conn:
        assert conn.execute("SELECT count(*) FROM proc_name").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM proc_chunk").fetchone()[0] == 0


# ---------------------------------------------------------------- over HTTP
@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    clock = FakeClock(T0)
    settings = load_settings(None, database={"path": str(tmp_path / "sysmon.db")})
    writer = SQLiteStore(tmp_path / "sysmon.db", retention(), 10.0, clock)
    writer.open()
    fill(writer, clock, 360)
    writer.close()
    clock.set_wall(T0 + 3600)
    app = create_app(settings, clock=clock, channel=tmp_path / "none.sock", start_agent=False)
    with serve(app) as running, httpx.Client(base_url=running.base_url, timeout=10) as c:
        yield c


def test_history_over_http(client: httpx.Client) -> None:
    r = client.get(
        "/api/v1/metrics/processes/history",
        params={"name": "postgres", "start": T0, "end": T0 + 590},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "postgres" and body["step_seconds"] == 10.0
    assert body["timestamps"][:2] == [T0, T0 + 10]
    assert body["fields"]["count"][:5] == [3, 2, 2, 2, 3]
    assert body["fields"]["rss_bytes"][0] == 1750 and isinstance(
        body["fields"]["rss_bytes"][0], int
    )
    assert body["fields"]["cpu_percent"][1] == 2.5


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({}, "name"),
        ({"name": "a", "pid": 1}, "name"),
        ({"name": ""}, "name"),
        ({"pid": "x"}, "pid"),
        ({"name": "a", "start": "soon"}, "start"),
        ({"name": "a", "start": T0 + 10, "end": T0}, "start"),
        ({"name": "a", "max_points": 1}, "max_points"),
    ],
)
def test_bad_params_are_422_naming_them(
    client: httpx.Client, params: dict[str, Any], loc: str
) -> None:
    r = client.get("/api/v1/metrics/processes/history", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", loc]


class NoTables(SQLiteStore):
    """A store that says it keeps no process tables (like VictoriaMetrics)."""

    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities(), process_tables=False)


def test_store_without_process_tables_is_404(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    settings = load_settings(None, database={"path": str(tmp_path / "sysmon.db")})
    store = NoTables(tmp_path / "sysmon.db", retention(), 10.0, clock)
    app = create_app(
        settings, clock=clock, store=store, channel=tmp_path / "none.sock", start_agent=False
    )
    with serve(app) as running, httpx.Client(base_url=running.base_url, timeout=10) as c:
        r = c.get("/api/v1/metrics/processes/history", params={"name": "postgres"})
    assert r.status_code == 404
    assert r.json() == {"detail": "the sqlite store keeps no process tables"}
