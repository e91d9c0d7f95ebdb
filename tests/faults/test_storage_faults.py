"""The database misbehaves: the disk fills up, another process locks the file.

Expected behaviour (docs/CONTRACTS.md, sysmon/scheduler.py ``BufferedWriter``):

* collection and ``/api/v1/metrics/current`` go on (they never depend on the store);
* ``/api/v1/health`` says ``degraded`` with ``pending_writes`` > 0 and the error;
* every tick collected meanwhile is kept in memory and written, in order, as soon as
  the store accepts writes again: nothing is lost.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.faults.harness import START, CappedStore, service


def test_disk_full_keeps_serving_reports_degraded_and_loses_nothing(tmp_path: Path) -> None:
    with service(tmp_path) as svc:
        svc.tick(3)
        assert svc.pending == 0
        assert svc.health()["status"] == "ok"

        store = svc.store
        assert isinstance(store, CappedStore)
        store.fill_disk()
        # Free pages inside the file still take a few ticks; then a write must fail.
        for _ in range(500):
            svc.tick()
            if svc.pending:
                break
        assert svc.pending == 1, "the disk never filled up"
        svc.tick(4)
        assert svc.pending == 5

        last = svc.clock.time() - 1
        current = svc.client.get("/api/v1/metrics/current")
        assert current.status_code == 200
        assert current.json()["timestamp"] == last
        health = svc.health()
        assert health["status"] == "degraded"
        assert health["database"]["pending_writes"] == 5
        assert "disk full" in health["database"]["last_error"]
        assert health["database"]["reachable"] is True

        store.free_disk()
        svc.tick()
        assert svc.pending == 0
        health = svc.health()
        assert health["status"] == "ok"
        assert health["database"]["last_error"] is None
        end = svc.clock.time() - 1
        expected = [START + i for i in range(int(end - START) + 1)]
        assert svc.stored(START, end) == expected


def test_locked_database_degrades_then_recovers_with_every_tick(tmp_path: Path) -> None:
    with service(tmp_path) as svc:
        svc.tick(2)
        other = sqlite3.connect(svc.db, isolation_level=None, timeout=0)
        try:
            other.execute("BEGIN EXCLUSIVE")
            t0 = time.monotonic()
            svc.tick()  # the write waits out the store's busy timeout (5 s), then gives up
            waited = time.monotonic() - t0
            assert svc.pending == 1
            health = svc.health()
            assert health["status"] == "degraded"
            assert health["database"]["pending_writes"] == 1
            assert "locked" in health["database"]["last_error"]
            # WAL: readers are not blocked by the other process's write lock.
            r = svc.client.get(
                "/api/v1/metrics/memory",
                params={"start": START, "end": START + 1, "resolution": "raw"},
            )
            assert r.status_code == 200
            assert r.json()["fields"]["total_bytes"][0] is not None
            assert svc.client.get("/api/v1/metrics/current").status_code == 200
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert waited < 30
        svc.tick()
        assert svc.pending == 0
        assert svc.health()["status"] == "ok"
        assert svc.stored(START, START + 3) == [START + i for i in range(4)]
        with sqlite3.connect(svc.db) as check:
            assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
