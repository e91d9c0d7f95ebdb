"""A collector raises or hangs; process listing races with exiting/denied processes.

Expected behaviour (sysmon/collectors/base.py, sysmon/scheduler.py):

* a collector that raises is named in the tick's ``errors`` and the other collectors'
  results are published and stored for that tick;
* a collector that hangs is abandoned after ``collector_timeout_seconds``: the tick does
  not wait longer than that, later ticks skip it without waiting at all while it is
  still stuck ("still running"), and it is called again once it returns;
* psutil's ``NoSuchProcess``/``AccessDenied`` for one process while details are read
  keeps that row (without user/cmdline); the same errors escaping the process listing
  itself fail only the ``processes`` collector for that tick.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from sysmon.collectors.source import DiskIO, ProcessInfo
from tests.faults.harness import START, TickingSource, service


class StuckDisk(TickingSource):
    """``disk_io_counters`` blocks until released (an NFS mount gone away, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.stuck = True

    def disk_io_counters(self) -> dict[str, DiskIO]:
        if self.stuck:
            self.release.wait(20)
        return dict(super().disk_io_counters())


def test_raising_and_hanging_collectors_do_not_stop_the_tick(tmp_path: Path) -> None:
    source = StuckDisk()
    source.fail["net_io_counters"] = RuntimeError("netlink socket closed")
    with service(
        tmp_path,
        source=source,
        collection={"interval_seconds": 1, "collector_timeout_seconds": 0.3},
    ) as svc:
        try:
            t0 = time.monotonic()
            (first,) = svc.tick()
            first_took = time.monotonic() - t0
            t0 = time.monotonic()
            (second,) = svc.tick()
            second_took = time.monotonic() - t0
        finally:
            source.stuck = False
            source.release.set()
        assert first_took < 2.0
        assert second_took < 0.25, "a still-hung collector must not be waited for again"
        assert first.errors["disk"] == "missed its 0.3s deadline"
        assert first.errors["network"] == "RuntimeError: netlink socket closed"
        assert second.errors["disk"] == (
            "still running since the tick 1s ago (over its 0.3s deadline)"
        )
        assert {"cpu", "memory", "processes"} <= set(first.results)
        assert "disk" not in first.results and "network" not in first.results

        health = svc.health()
        assert set(health["collector_errors"]) == {"disk", "network"}
        # Every miss is counted and named, per collector; the others missed nothing.
        assert health["status"] == "degraded"
        assert health["collectors"]["disk"]["missed_last_minute"] == 2
        assert "deadline" in health["collectors"]["disk"]["last_reason"]
        assert health["collectors"]["network"]["missed_last_minute"] == 2
        assert health["collectors"]["cpu"]["missed_last_hour"] == 0
        assert any("collector disk missed 2 samples" in p for p in health["problems"])
        body = svc.client.get("/api/v1/metrics/current").json()
        assert body["errors"]["network"] == "RuntimeError: netlink socket closed"
        assert body["metrics"]["memory"]["total"]["total_bytes"] > 0
        # The ticks with failed collectors were still stored.
        assert svc.stored(START, START + 1) == [START, START + 1]

        # Once the stuck call returns and the error is gone, both come back.
        del source.fail["net_io_counters"]
        deadline = time.monotonic() + 10
        while True:
            (snap,) = svc.tick()
            if not snap.errors or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert snap.errors == {}
        assert {"disk", "network"} <= set(snap.results)


def test_processes_vanishing_or_denied_while_details_are_read(tmp_path: Path) -> None:
    source = TickingSource()
    with service(tmp_path, source=source) as svc:
        # pid 100 exits between the listing and the details call; 200 is denied.
        details = source.state["process_details"]
        details["100"] = {"error": "NoSuchProcess"}
        details["200"] = {"error": "AccessDenied"}
        source._ticks[1]["process_details"] = details
        source._ticks[2]["process_details"] = details
        (snap,) = svc.tick()
        assert "processes" not in snap.errors
        rows = {r["pid"]: r for r in snap.results["processes"].rows}
        assert rows[100]["user"] is None and rows[100]["cmdline"] == ""
        assert rows[200]["user"] is None and rows[200]["cmdline"] == ""
        assert rows[1]["user"] == "root"
        r = svc.client.get("/api/v1/metrics/processes", params={"limit": 100})
        assert r.status_code == 200
        assert {p["pid"] for p in r.json()["processes"]} == set(rows)


class RaisesMidListing(TickingSource):
    """The process listing yields two processes, then psutil raises."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error: Exception | None = error

    def processes(self) -> Iterator[ProcessInfo]:
        listing = super().processes()
        yield next(listing)
        yield next(listing)
        if self.error is not None:
            raise self.error
        yield from listing


def test_error_escaping_the_process_listing_fails_only_that_collector(tmp_path: Path) -> None:
    for error in (psutil.AccessDenied(4242), psutil.NoSuchProcess(4242)):
        source = RaisesMidListing(error)
        with service(tmp_path / type(error).__name__, source=source) as svc:
            (snap,) = svc.tick()
            assert snap.errors["processes"].startswith(type(error).__name__)
            assert set(snap.errors) == {"processes"}
            assert {"cpu", "memory", "disk", "network"} <= set(snap.results)
            source.error = None
            (snap,) = svc.tick()
            assert snap.errors == {}
            assert len(snap.results["processes"].rows) > 2
            assert svc.stored(START, START + 1) == [START, START + 1]
