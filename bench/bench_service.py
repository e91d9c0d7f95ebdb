"""Issue 2 benchmark: the whole service at a 1 s interval.

1. CPU % of one core and RSS of the service's process tree over ``--idle`` seconds
   (default 60) after a warm-up, read from /proc.
2. ``/api/v1/metrics/current`` and a 1-hour range query under 100 concurrent connections
   (wrk when installed, else a bounded asyncio client): requests/s, p50, p99.

The database is pre-filled with one hour of ticks (real collector output, replayed with
shifted timestamps) so the range query has a full hour to read.

    .venv/bin/python -m bench.bench_service [--idle 60] [--load 15] [--repeat 3] [--connections 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from bench.loadgen import load
from bench.proctree import sample_tree
from sysmon.agent.collection import Collection
from sysmon.clock import SystemClock
from sysmon.collectors.registry import discover
from sysmon.collectors.source import PsutilSource
from sysmon.config import load_settings
from sysmon.models import Snapshot
from sysmon.storage.sqlite import SQLiteStore
from tests.support.process import free_port, spawn_service, wait_healthy

ROOT = Path(__file__).resolve().parents[1]


def prefill(db: Path, seconds: int) -> float:
    settings = load_settings(None)
    source = PsutilSource()
    collectors = discover().build(settings.collectors, source)
    collection = Collection(collectors, SystemClock(), deadline_seconds=5.0)
    collection.tick(time.time())  # rates and CPU percentages need a baseline
    time.sleep(1)
    real = collection.tick(time.time())
    collection.close()
    source.close()
    store = SQLiteStore(db, retention=settings.retention, interval_seconds=1)
    store.open()
    now = float(int(time.time()))
    for i in range(seconds, 0, -1):
        store.write(Snapshot(timestamp=now - i, results=real.results))
    for _ in range(10_000):  # maintain is bounded per call: repeat until caught up
        store.maintain(now)
        if not store.maintenance_backlog:
            break
    store.close()
    return now


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=int, default=60)
    parser.add_argument("--load", type=int, default=15)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="load runs per endpoint")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "service.json"))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sysmon-bench-"))
    db = tmp / "sysmon.db"
    t0 = time.monotonic()
    filled_until = prefill(db, 3600)
    sys.stderr.write(f"prefilled 1 h in {time.monotonic() - t0:.1f}s\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = spawn_service(db, port)
    try:
        wait_healthy(base)
        time.sleep(10)  # warm-up: first rollups, caches
        start = sample_tree(proc.pid)
        w0 = time.monotonic()
        rss_max = start.rss_bytes
        while time.monotonic() - w0 < args.idle:
            time.sleep(5)
            rss_max = max(rss_max, sample_tree(proc.pid).rss_bytes)
        end = sample_tree(proc.pid)
        wall = time.monotonic() - w0
        cpu_pct = (end.cpu_seconds - start.cpu_seconds) / wall * 100
        health = httpx.get(f"{base}/api/v1/health").json()
        results: dict[str, object] = {
            "idle_seconds": round(wall, 1),
            "cpu_percent_of_one_core": round(cpu_pct, 3),
            "rss_mib_end": round(end.rss_bytes / 2**20, 1),
            "rss_mib_max": round(rss_max / 2**20, 1),
            "processes_in_tree": end.pids,
            "health": health["status"],
        }
        rng = f"{base}/api/v1/metrics/cpu?start={filled_until - 3600:.0f}&end={filled_until:.0f}"
        check = httpx.get(rng).json()
        results["range_resolution"] = check["resolution"]
        results["range_points"] = len(check["timestamps"])
        runs = (
            ("current", f"{base}/api/v1/metrics/current", False),
            # The same URL again and again: answered from the range cache between ticks.
            ("range_1h", rng, False),
            # Every request a distinct URL: every one runs the query (worst case).
            ("range_1h_uncached", rng, True),
        )
        for name, url, distinct in runs:
            # Each load runs --repeat times; the table reports the median run (by p99) and
            # every run's p99, since one noisy second on a shared 2-core box moves a p99.
            tries = [
                load(url, args.connections, args.load, distinct_urls=distinct)
                for _ in range(args.repeat)
            ]
            tries.sort(key=lambda r: r.p99_ms)
            median = asdict(tries[len(tries) // 2])
            median["p99_ms_all_runs"] = [r.p99_ms for r in tries]
            median["rps_all_runs"] = [r.rps for r in tries]
            results[name] = median
        after = httpx.get(f"{base}/api/v1/health").json()
        results["health_after_load"] = after["status"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    sys.stdout.write(f"machine: {os.cpu_count()} cores\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
