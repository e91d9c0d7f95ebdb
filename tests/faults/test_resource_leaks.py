"""File descriptors must not pile up as the API's worker threads come and go.

Found by the soak test (bench/soak.py): after 9 minutes at 20 req/s the service had 84
open descriptors each on ``sysmon.db`` and ``sysmon.db-wal`` with only ~14 threads
alive, growing every minute. anyio's worker threads exit when idle and new ones are
started later; each new thread opens its own read connection
(``SQLiteStore._reader``), and the store keeps every one of them in ``_readers`` until
``close``, so connections of dead threads are never released. At the default limit of
1024 descriptors the service would eventually fail every query and write with EMFILE.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from app.clock import FakeClock
from app.config import load_settings
from app.models import Collected, Sample, Snapshot
from app.storage.base import RangeQuery
from app.storage.sqlite import SQLiteStore
from tests.faults.harness import START

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd")


def open_fds_on(db: Path) -> int:
    names = {str(db), f"{db}-wal"}
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in names:
                count += 1
        except OSError:
            continue
    return count


@pytest.mark.xfail(
    strict=True,
    reason="bug: SQLiteStore keeps the read connection of every thread that ever queried "
    "(app/storage/sqlite.py _reader/_readers); see the module docstring",
)
def test_reader_connections_of_finished_threads_are_released(tmp_path: Path) -> None:
    db = tmp_path / "sysmon.db"
    clock = FakeClock(start=START + 1)
    store = SQLiteStore(db, load_settings(None).retention, interval_seconds=1, clock=clock)
    store.open()
    try:
        tick = Collected(samples=(Sample("memory", "total_bytes", 1.0),))
        store.write(Snapshot(timestamp=START, results={"memory": tick}))

        def query() -> None:
            res = store.query(RangeQuery("memory", START, START, resolution="raw"))
            assert res.fields["total_bytes"] == [1.0]

        query()
        baseline = open_fds_on(db)
        for _ in range(40):  # 40 short-lived worker threads, one query each
            worker = threading.Thread(target=query)
            worker.start()
            worker.join()
        assert open_fds_on(db) - baseline <= 4
    finally:
        store.close()
