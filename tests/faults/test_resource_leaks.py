"""Resources a long-running service must not run out of.

File descriptors must not pile up as the API's worker threads come and go, and one
range query must not allocate memory in proportion to the span it asks for.

Found by the soak test (bench/soak.py): after 9 minutes at 20 req/s the service had 84
open descriptors each on ``sysmon.db`` and ``sysmon.db-wal`` with only ~14 threads
alive, growing every minute. anyio's worker threads exit when idle and new ones are
started later; each new thread opens its own read connection
(``SQLiteStore._reader``), and the store kept every one of them in ``_readers`` until
``close``, so connections of dead threads were never released. At the default limit of
1024 descriptors the service would eventually have failed every query and write with
EMFILE. Fixed by a bounded pool of read connections borrowed per call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.models import Collected, Sample, Snapshot
from sysmon.storage.base import RangeQuery
from sysmon.storage.sqlite import SQLiteStore
from tests.faults.harness import START
from tests.support.process import ROOT

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


def test_range_query_memory_does_not_grow_with_the_requested_span(tmp_path: Path) -> None:
    # A fresh interpreter, so its peak RSS is this query's and nothing else's
    # (tracemalloc would do, but slows the query down fifty-fold).
    script = f"""
import resource
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.models import Collected, Sample, Snapshot
from sysmon.storage.base import RangeQuery
from sysmon.storage.sqlite import SQLiteStore
store = SQLiteStore({str(tmp_path / "sysmon.db")!r}, load_settings(None).retention, 1,
                    FakeClock(start={START + 10}))
store.open()
fields = tuple(Sample("cpu", f"f{{i}}", 1.0) for i in range(12))
store.write(Snapshot(timestamp={START}, results={{"cpu": Collected(samples=fields)}}))
store.query(RangeQuery("cpu", {START - 3600}, {START + 10}))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = store.query(RangeQuery("cpu", 0.0, {START + 10}))  # the whole epoch: "start=0"
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(len(res.timestamps), (after - before) // 1024)
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    points, grew_mib = int(out[0]), int(out[1])
    assert points <= 1000
    assert grew_mib < 32, f"one query grew the peak RSS by {grew_mib} MiB"
