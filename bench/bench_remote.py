"""Issue 11 benchmark: sysmon against a real VictoriaMetrics (remote backends).

    .venv/bin/python -m bench.bench_remote [--phases forward,delay,replay,query,hosts] [--quick]

Every phase talks to Debian's ``victoria-metrics`` (1.79.5), started here on a free
loopback port with a temporary data directory (``tests.support.victoria``: retention
100y, ``-search.latencyOffset=0s``; the default 30 s offset hides the newest 30 s of
every range query and would be all of the "delay" figure). Ticks are real: a few
snapshots recorded from this host's collectors at start, replayed with shifted
timestamps (the host label is the store's, not the snapshot's).

1. ``forward``: samples/s one ``Forwarder`` (real queue file, real ``VictoriaStore``)
   pushes when it finds a backlog of ``--backlog`` ticks in its queue (the restart
   path: every entry is decoded), per ``batch_ticks``; repeats interleaved, medians.
2. ``delay``: the live path. One tick a second at whole seconds from the real
   collectors, handed to a threaded ``Forwarder`` (defaults) as the agent does; a second
   thread polls ``VictoriaStore.query`` (raw) every 10 ms. Tick timestamp -> handed off
   -> acknowledged by the server -> first poll that sees the point.
3. ``replay``: the outage path. The server is stopped, an hour of ticks (3,600) is
   handed to a threaded ``Forwarder`` (defaults: backoff from 1 s doubling to 60 s)
   while live ticks keep coming at 1 Hz; the server comes back after ``--outage``
   seconds. Wait until the first send, seconds to drain, ticks/s, and whether the
   server then holds every tick.
4. ``query``: two real ``sysmon server`` subprocesses (the API over HTTP), one on
   SQLite and one with ``database.backend: victoriametrics``, each holding the same
   prefilled hour. The dashboard's requests (``resolution=auto`` over 1 h, 5 min and
   24 h for the cpu, memory, disk and network totals), one client, interleaved, every
   URL distinct (the range cache never answers); answers of the two compared.
5. ``hosts``: 50 simulated agents (host=h01..h50, one tick per host per second, one
   ``VictoriaStore.write`` each, i.e. what a caught-up forwarder sends) from
   ``--ingest-procs`` processes x ``--ingest-threads`` threads, into one server, while
   a ``sysmon server`` on it answers the dashboard's requests for h01 (``&host=h01``,
   as a central server showing another agent's charts asks) in a loop:
   ingest rate, the server's CPU and RSS, query latency idle vs during ingest.

Results: ``bench/results/remote.json`` and ``remote.md`` (git-ignored); the markdown is
also printed. ``--quick`` is a ~1 minute smoke run of every phase (numbers not
meaningful).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import pickle
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.proctree import cpu_seconds, rss_bytes
from sysmon.agent.collection import Collection
from sysmon.agent.forward import Forwarder, ForwardQueue, encode_snapshot
from sysmon.clock import SystemClock
from sysmon.collectors.registry import discover
from sysmon.collectors.source import PsutilSource
from sysmon.config import load_settings
from sysmon.errors import QueryError, StorageError
from sysmon.models import Collected, Snapshot
from sysmon.storage.base import RangeQuery
from sysmon.storage.sqlite import SQLiteStore
from sysmon.storage.victoria import VictoriaStore
from tests.support.process import free_port
from tests.support.victoria import BINARY_NAME, VictoriaServer, victoria_server

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("forward", "delay", "replay", "query", "hosts")
DASHBOARD_METRICS = ("cpu", "memory", "disk", "network")
DASHBOARD_RANGES = (("1h", 3600), ("5min", 300), ("24h", 86_400))
HOUR = 3600
log = logging.getLogger("bench.remote")


# --------------------------------------------------------------------- small helpers


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median / p90 / p99 / max in milliseconds, and the count."""
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2) if ms else math.nan,
        "p90_ms": round(pct(ms, 0.90), 2),
        "p99_ms": round(pct(ms, 0.99), 2),
        "max_ms": round(max(ms), 2) if ms else math.nan,
    }


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg writes them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


def samples_only(snapshot: Snapshot) -> Snapshot:
    """The snapshot without process rows (VictoriaMetrics keeps none; smaller to ship)."""
    results = {n: Collected(samples=c.samples) for n, c in snapshot.results.items()}
    return Snapshot(snapshot.timestamp, results, snapshot.errors)


def at(snapshots: Sequence[Snapshot], i: int, ts: float) -> Snapshot:
    """Recorded snapshot ``i`` (cycled) restamped ``ts``."""
    return dataclasses.replace(snapshots[i % len(snapshots)], timestamp=ts)


class Sampler:
    """CPU % of one core and RSS of one process, sampled from /proc every ``every`` s
    in a thread (RSS max over the window; CPU from the first to the last reading)."""

    def __init__(self, pid: int, every: float = 1.0) -> None:
        self.pid = pid
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.rss: list[int] = []
        self.cpu0 = 0.0
        self.t0 = 0.0
        self.cpu1 = 0.0
        self.t1 = 0.0

    def __enter__(self) -> Sampler:
        self.cpu0, self.t0 = cpu_seconds(self.pid), time.monotonic()
        self.rss.append(rss_bytes(self.pid))
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.rss.append(rss_bytes(self.pid))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu1, self.t1 = cpu_seconds(self.pid), time.monotonic()
        self.rss.append(rss_bytes(self.pid))

    def result(self) -> dict[str, float]:
        wall = max(1e-9, self.t1 - self.t0)
        return {
            "cpu_percent_of_one_core": round((self.cpu1 - self.cpu0) / wall * 100, 1),
            "cpu_seconds": round(self.cpu1 - self.cpu0, 2),
            "rss_mib_max": round(max(self.rss) / 2**20, 1),
            "rss_mib_end": round(self.rss[-1] / 2**20, 1),
        }


class TimedStore(VictoriaStore):
    """``VictoriaStore`` that notes when each successful ``write_many`` started and
    ended, and the tick timestamps it carried (what the forwarder sent, and when)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends: list[tuple[float, float, list[float]]] = []
        self._sends_lock = threading.Lock()

    def write_many(self, snapshots: Sequence[Snapshot]) -> None:
        started = time.time()
        super().write_many(snapshots)
        ended = time.time()
        with self._sends_lock:
            self.sends.append((started, ended, [s.timestamp for s in snapshots]))

    def acked(self) -> dict[float, float]:
        """Tick timestamp -> when the server acknowledged it (first time)."""
        out: dict[float, float] = {}
        with self._sends_lock:
            for _started, ended, stamps in self.sends:
                for ts in stamps:
                    out.setdefault(ts, ended)
        return out


def record(count: int) -> list[Snapshot]:
    """``count`` real ticks one second apart from this host's collectors (default
    options; a first tick primes the rates and is dropped). Process rows removed."""
    settings = load_settings(None)
    source = PsutilSource()
    collection = Collection(
        discover().build(settings.collectors, source), SystemClock(), deadline_seconds=5.0
    )
    out: list[Snapshot] = []
    try:
        collection.tick(time.time())
        for _ in range(count):
            time.sleep(1.0)
            out.append(samples_only(collection.tick(time.time())))
    finally:
        collection.close()
        source.close()
    return out


@contextmanager
def vm_running(tmp: Path, name: str) -> Iterator[VictoriaServer]:
    with victoria_server(tmp / name) as vm:
        yield vm


def vm_rows_inserted(vm: VictoriaServer) -> float:
    """Rows the server took in through any ingestion path (``vm_rows_inserted_total``)."""
    text = httpx.get(f"{vm.url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("vm_rows_inserted_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def open_store(url: str, host: str, cls: type[VictoriaStore] = VictoriaStore) -> VictoriaStore:
    store = cls(url, clock=SystemClock(), host=host, timeout_seconds=30.0)
    store.open()
    return store


def prefill_vm(url: str, host: str, snapshots: Sequence[Snapshot], end: float) -> None:
    """One hour of ticks ``[end - 3600, end)`` for ``host`` in batches of 100."""
    store = open_store(url, host)
    try:
        start = end - HOUR
        for i in range(0, HOUR, 100):
            store.write_many([at(snapshots, j, start + j) for j in range(i, min(HOUR, i + 100))])
    finally:
        store.close()


# --------------------------------------------------------------------- phase 1: forward


def phase_forward(
    vm: VictoriaServer, tmp: Path, snapshots: Sequence[Snapshot], args: argparse.Namespace
) -> dict[str, Any]:
    """Drain a queue file of ``backlog`` ticks (built beforehand, as an agent restarted
    after an outage finds it) with one inline ``step``, per batch size."""
    clock = SystemClock()
    host = "bench-forward"
    batches = [int(b) for b in args.batches.split(",")]
    backlog = args.backlog
    samples_per_tick = statistics.median(len(s.samples()) for s in snapshots)
    warm = open_store(vm.url, host)  # the series exist before the first timed run
    warm.write_many([at(snapshots, i, time.time() - 2 * 86_400 + i) for i in range(10)])
    warm.close()
    runs: dict[int, list[dict[str, float]]] = {b: [] for b in batches}
    base = time.time() - 20 * HOUR  # within the default 24 h buffer bound
    slot = 0
    for rep in range(args.repeats):
        order = batches[rep % len(batches) :] + batches[: rep % len(batches)]
        for batch in order:
            start = base + slot * backlog
            slot += 1
            path = tmp / f"forward-{rep}-{batch}.db"
            queue = ForwardQueue(path)
            queue.open()
            queue.append(
                [(start + i, encode_snapshot(at(snapshots, i, start + i))) for i in range(backlog)]
            )
            queue.close()
            store = VictoriaStore(vm.url, clock=clock, host=host)
            forwarder = Forwarder("bench", store, ForwardQueue(path), clock, batch_ticks=batch)
            forwarder.start(threaded=False)
            assert forwarder.queue.count == backlog
            assert vm.process is not None
            vm_cpu0 = cpu_seconds(vm.process.pid)
            c0, w0 = time.thread_time(), time.perf_counter()
            forwarder.step()
            wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
            vm_cpu = cpu_seconds(vm.process.pid) - vm_cpu0
            sent = forwarder.sent_ticks
            samples = store.stats().rows["samples_written"]
            left = forwarder.queue.count
            forwarder.stop()
            path.unlink(missing_ok=True)
            assert sent == backlog and left == 0, f"drained {sent} of {backlog}, {left} left"
            runs[batch].append(
                {
                    "seconds": wall,
                    "ticks_per_s": backlog / wall,
                    "samples_per_s": samples / wall,
                    "forwarder_cpu_ms_per_tick": cpu / backlog * 1000,
                    "vm_cpu_ms_per_tick": vm_cpu / backlog * 1000,
                    "load1": load1(),
                }
            )
            log.info("forward batch=%d rep=%d: %.0f samples/s", batch, rep, samples / wall)
    out: dict[str, Any] = {
        "backlog_ticks": backlog,
        "samples_per_tick": samples_per_tick,
        "repeats": args.repeats,
        "by_batch": {},
    }
    for batch, items in runs.items():
        out["by_batch"][str(batch)] = {
            key: round(statistics.median(r[key] for r in items), 3)
            for key in items[0]
            if key != "load1"
        } | {
            "samples_per_s_all": [round(r["samples_per_s"]) for r in items],
            "load1_all": [r["load1"] for r in items],
        }
    return out


# --------------------------------------------------------------------- phase 2: delay


def phase_delay(vm: VictoriaServer, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Live ticks at whole seconds through a threaded forwarder; poll until queryable."""
    clock = SystemClock()
    host = "bench-delay"
    store = TimedStore(vm.url, clock=clock, host=host)
    forwarder = Forwarder("delay", store, ForwardQueue(tmp / "forward-delay.db"), clock)
    reader = open_store(vm.url, host)
    settings = load_settings(None)
    source = PsutilSource()
    collection = Collection(
        discover().build(settings.collectors, source), clock, deadline_seconds=5.0
    )
    lock = threading.Lock()
    pending: set[float] = set()
    visible: dict[float, float] = {}
    poll_seconds: list[float] = []
    finished = threading.Event()

    def poll() -> None:
        while True:
            with lock:
                wanted = sorted(pending)
            if not wanted:
                if finished.is_set():
                    return
                time.sleep(args.poll)
                continue
            sent = time.time()
            try:
                answer = reader.query(
                    RangeQuery("cpu", wanted[0], wanted[-1], resolution="raw", max_points=10_000)
                )
            except QueryError:  # no series yet
                answer = None
            poll_seconds.append(time.time() - sent)
            if answer is not None:
                t0 = answer.timestamps[0]
                for ts in wanted:
                    k = round(ts - t0)
                    if any(col[k] is not None for col in answer.fields.values()):
                        with lock:
                            pending.discard(ts)
                            visible[ts] = sent
            time.sleep(args.poll)

    collected: dict[float, float] = {}
    handed: dict[float, float] = {}
    forwarder.start(threaded=True)
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    load_start = loadavg()
    try:
        collection.tick(time.time())  # primes the rates
        warmup = 2
        for k in range(args.delay_ticks + warmup):
            target = float(math.floor(time.time()) + 1)
            sleep_until(target)
            snapshot = collection.tick(target)
            got = time.time()
            forwarder.submit(snapshot)
            if k >= warmup:
                collected[target] = got
                handed[target] = time.time()
                with lock:
                    pending.add(target)
        deadline = time.time() + 30
        while time.time() < deadline:
            with lock:
                if not pending:
                    break
            time.sleep(0.05)
    finally:
        finished.set()
        with lock:
            missing = sorted(pending)
            pending.clear()
        poller.join(5)
        forwarder.stop()
        reader.close()
        collection.close()
        source.close()
    acked = store.acked()
    ticks = sorted(visible)
    total = [visible[t] - t for t in ticks]
    to_collected = [collected[t] - t for t in ticks]
    to_acked = [acked[t] - t for t in ticks if t in acked]
    ack_to_visible = [visible[t] - acked[t] for t in ticks if t in acked]
    batch_sizes = [len(stamps) for _s, _e, stamps in store.sends]
    return {
        "ticks": len(ticks),
        "never_visible": len(missing),
        "poll_interval_ms": args.poll * 1000,
        "poll_query": summary_ms(poll_seconds),
        "tick_to_queryable": summary_ms(total),
        "tick_to_collected": summary_ms(to_collected),
        "tick_to_acknowledged": summary_ms(to_acked),
        "acknowledged_to_queryable": summary_ms(ack_to_visible),
        "sends": len(batch_sizes),
        "ticks_per_send_max": max(batch_sizes, default=0),
        "load_start": load_start,
        "load_end": loadavg(),
    }


# --------------------------------------------------------------------- phase 3: replay


def feed_live(
    forwarder: Forwarder,
    snapshots: Sequence[Snapshot],
    start: float,
    stop: threading.Event,
    out: list[float],
) -> None:
    """Live ticks stamped ``start``, ``start + 1``, ... handed off at those wall times
    (the agent's tick thread) until ``stop``; their timestamps go to ``out``."""
    k = 0
    while not stop.is_set():
        ts = start + k
        sleep_until(ts)
        if stop.is_set():
            return
        forwarder.submit(at(snapshots, k, ts))
        out.append(ts)
        k += 1


def phase_replay(
    vm: VictoriaServer, tmp: Path, snapshots: Sequence[Snapshot], args: argparse.Namespace
) -> dict[str, Any]:
    """An hour queued during an outage, live ticks continuing, the server back."""
    clock = SystemClock()
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeats):
        host = f"bench-replay-{rep}"
        store = TimedStore(vm.url, clock=clock, host=host)
        forwarder = Forwarder("replay", store, ForwardQueue(tmp / f"forward-r{rep}.db"), clock)
        vm.stop()
        forwarder.start(threaded=True)
        now = float(math.floor(time.time()))
        first = now - args.outage_ticks
        for i in range(args.outage_ticks):
            forwarder.submit(at(snapshots, i, first + i))
        stop_live = threading.Event()
        live: list[float] = []

        feeder = threading.Thread(
            target=feed_live, args=(forwarder, snapshots, now, stop_live, live), daemon=True
        )
        feeder.start()
        deadline = time.monotonic() + 30
        while forwarder.queue.count < args.outage_ticks or forwarder.last_error is None:
            assert time.monotonic() < deadline, "backlog never queued"
            time.sleep(0.01)
        queued = forwarder.status(time.time())
        time.sleep(max(0.0, args.outage - (time.time() - now)))
        vm.start()
        back = time.time()
        assert vm.process is not None
        vm_cpu0 = cpu_seconds(vm.process.pid)
        last_backlog = first + args.outage_ticks - 1
        deadline = time.monotonic() + 300
        while last_backlog not in store.acked():
            assert time.monotonic() < deadline, "backlog never drained"
            time.sleep(0.01)
        vm_cpu = cpu_seconds(vm.process.pid) - vm_cpu0
        stop_live.set()
        feeder.join(5)
        deadline = time.monotonic() + 30
        while forwarder.status(time.time())["queued_ticks"]:
            assert time.monotonic() < deadline, "live ticks never sent"
            time.sleep(0.01)
        forwarder.stop()
        acked = store.acked()
        first_send = min(started for started, _e, _s in store.sends)
        drained = acked[last_backlog]
        live_delay = [acked[ts] - ts for ts in live if ts in acked]
        vm.flush()
        reader = open_store(vm.url, host)
        answer = reader.query(
            RangeQuery("cpu", first, live[-1], resolution="raw", max_points=10_000)
        )
        reader.close()
        stored = sum(
            1
            for k in range(len(answer.timestamps))
            if any(col[k] is not None for col in answer.fields.values())
        )
        seconds = drained - first_send
        runs.append(
            {
                "queued_ticks": queued["queued_ticks"],
                "queued_mb": round(queued["queued_bytes"] / 1e6, 2),
                "outage_seconds": round(back - now, 1),
                "wait_after_server_back_s": round(first_send - back, 2),
                "drain_seconds": round(seconds, 2),
                "backlog_ticks_per_s": round(args.outage_ticks / seconds),
                "live_ticks": len(live),
                "live_tick_max_delay_s": round(max(live_delay), 1),
                "requests": len(store.sends),
                "vm_cpu_seconds_during_drain": round(vm_cpu, 2),
                "ticks_expected": args.outage_ticks + len(live),
                "ticks_in_vm": stored,
                "load1": load1(),
            }
        )
        log.info("replay rep=%d: %s", rep, runs[-1])
    drains = [r["drain_seconds"] for r in runs]
    return {
        "outage_ticks": args.outage_ticks,
        "samples_per_tick": statistics.median(len(s.samples()) for s in snapshots),
        "runs": runs,
        "drain_seconds_median": statistics.median(drains),
        "ticks_per_s_median": round(args.outage_ticks / statistics.median(drains)),
    }


# --------------------------------------------------------------------- servers, queries


@contextmanager
def api_server(
    tmp: Path, name: str, env_extra: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ``sysmon server`` subprocess on a free port (no agent, rate limits off)."""
    data = tmp / name
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}
    env.update(
        {
            "SYSMON_DATABASE__PATH": str(data / "sysmon.db"),
            "SYSMON_COLLECTION__INTERVAL_SECONDS": "1",
            "SYSMON_SERVER__SECURITY__RATE_LIMITS__ENABLED": "false",
            "SYSMON_LOGGING__LEVEL": "WARNING",
            **env_extra,
        }
    )
    argv = [sys.executable, "-m", "sysmon", "server", "--port", str(port)]
    log_path = data / "server.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} server exited: {log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/v1/metrics", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} server not up: {log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dashboard_url(metric: str, seconds: int, end: float, host: str | None = None) -> str:
    """The dashboard's history request for a metric's totals (``&host=`` for another
    host than the server's own, as a central server showing several agents asks)."""
    url = f"/api/v1/metrics/{metric}?start={end - seconds:.3f}&end={end:.3f}&resolution=auto"
    return f"{url}&host={host}" if host else url


QUERIES = [(m, r, s) for r, s in DASHBOARD_RANGES for m in DASHBOARD_METRICS]


def timed_get(client: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    response = client.get(url)
    return time.perf_counter() - t0, response


def compare_answers(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """How far two range answers differ: grid, resolution, gaps, values."""
    same_grid = a["timestamps"] == b["timestamps"]
    worst = 0.0
    gaps = 0
    where: list[str] = []
    open_only = True
    for field in sorted(set(a["fields"]) | set(b["fields"])):
        left = a["fields"].get(field) or [None] * len(a["timestamps"])
        right = b["fields"].get(field) or [None] * len(b["timestamps"])
        for k, (x, y) in enumerate(zip(left, right, strict=False)):
            if (x is None) != (y is None):
                gaps += 1
                open_only = open_only and k == len(left) - 1 and x is None
                side = "only first" if y is None else "only second"
                where.append(f"{field}[{k}] {side}")
            elif x is not None and y is not None and x != y:
                worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-300))
    return {
        "same_grid": same_grid,
        "resolution": [a["resolution"], b["resolution"]],
        "points": [len(a["timestamps"]), len(b["timestamps"])],
        "fields": [len(a["fields"]), len(b["fields"])],
        "gap_mismatches": gaps,
        "gap_where": where[:4],
        "gaps_only_in_open_bucket": gaps > 0 and open_only,
        "max_relative_difference": worst,
    }


def phase_query(
    tmp: Path, snapshots: Sequence[Snapshot], args: argparse.Namespace
) -> dict[str, Any]:
    """The same hour in SQLite and in VictoriaMetrics; each behind a real server."""
    end = float(math.floor(time.time()))
    t0 = time.monotonic()
    settings = load_settings(None)
    sqlite_dir = tmp / "q-sqlite"
    sqlite_dir.mkdir()
    db = sqlite_dir / "sysmon.db"
    sqlite = SQLiteStore(db, retention=settings.retention, interval_seconds=1)
    sqlite.open()
    for i in range(HOUR):
        sqlite.write(at(snapshots, i, end - HOUR + i))
    for _ in range(10_000):  # maintain is bounded per call: repeat until caught up
        sqlite.maintain(end + 1)
        if not sqlite.maintenance_backlog:
            break
    sqlite.close()
    prefill_sqlite = time.monotonic() - t0
    with vm_running(tmp, "vm-query") as vm:
        t0 = time.monotonic()
        prefill_vm(vm.url, settings.agent.host_name, snapshots, end)
        vm.flush()
        prefill_vm_s = time.monotonic() - t0
        vm_env = {
            "SYSMON_DATABASE__BACKEND": "victoriametrics",
            "SYSMON_DATABASE__URL": vm.url,
        }
        with (
            api_server(tmp, "q-sqlite", {}) as (sqlite_base, sqlite_proc),
            api_server(tmp, "q-vm", vm_env) as (vm_base, vm_proc),
        ):
            bases = {"sqlite": sqlite_base, "victoriametrics": vm_base}
            procs = {"sqlite": sqlite_proc.pid, "victoriametrics": vm_proc.pid}
            clients = {k: httpx.Client(base_url=v, timeout=30) for k, v in bases.items()}
            try:
                agreement: dict[str, Any] = {}
                for metric, rname, seconds in QUERIES:
                    url = dashboard_url(metric, seconds, end)
                    answers = {}
                    for backend, client in clients.items():
                        response = client.get(url)
                        response.raise_for_status()
                        answers[backend] = response.json()
                    agreement[f"{metric} {rname}"] = compare_answers(
                        answers["sqlite"], answers["victoriametrics"]
                    )
                for client in clients.values():  # warm both (first requests import, JIT)
                    for metric, _r, seconds in QUERIES:
                        client.get(dashboard_url(metric, seconds, end - 0.5))
                latencies: dict[tuple[str, str, str], list[float]] = {}
                errors = 0
                plan = [(b, q) for b in clients for q in QUERIES]
                cpu0 = {b: cpu_seconds(p) for b, p in procs.items()}
                assert vm.process is not None
                vm_cpu0 = cpu_seconds(vm.process.pid)
                load_start = loadavg()
                w0 = time.monotonic()
                rng = random.Random(11)
                for j in range(args.query_rounds):
                    rng.shuffle(plan)
                    for backend, (metric, rname, seconds) in plan:
                        # Distinct URL each time (the range cache never answers),
                        # the same hour: the end moves by a millisecond per round.
                        url = dashboard_url(metric, seconds, end + 0.001 * (j + 1))
                        took, response = timed_get(clients[backend], url)
                        if response.status_code != 200:
                            errors += 1
                        latencies.setdefault((backend, metric, rname), []).append(took)
                wall = time.monotonic() - w0
                cpu = {b: cpu_seconds(p) - cpu0[b] for b, p in procs.items()}
                vm_cpu = cpu_seconds(vm.process.pid) - vm_cpu0
            finally:
                for client in clients.values():
                    client.close()
    per_backend_requests = args.query_rounds * len(QUERIES)
    table: dict[str, dict[str, Any]] = {}
    for metric, rname, _s in QUERIES:
        row = table[f"{metric} {rname}"] = {}
        for backend in clients:
            row[backend] = summary_ms(latencies[(backend, metric, rname)])
    for row in table.values():
        row["ratio_p50_vm_over_sqlite"] = round(
            row["victoriametrics"]["p50_ms"] / row["sqlite"]["p50_ms"], 2
        )
    return {
        "prefill_seconds": {
            "sqlite": round(prefill_sqlite, 1),
            "victoriametrics": round(prefill_vm_s, 1),
        },
        "rounds": args.query_rounds,
        "requests_per_query_per_backend": args.query_rounds,
        "errors": errors,
        "wall_seconds": round(wall, 1),
        "latency": table,
        "all_queries": {
            b: summary_ms([v for (bb, _m, _r), vals in latencies.items() if bb == b for v in vals])
            for b in clients
        },
        "server_cpu_ms_per_request": {
            b: round(cpu[b] / per_backend_requests * 1000, 2) for b in clients
        },
        "vm_cpu_ms_per_request": round(vm_cpu / per_backend_requests * 1000, 2),
        "answers_compared": agreement,
        "load_start": load_start,
        "load_end": loadavg(),
    }


# --------------------------------------------------------------------- phase 5: hosts


def ingest_worker(spec_path: Path) -> None:
    """One load-generator process: its hosts, one ``write`` per host per second."""
    spec = json.loads(spec_path.read_text())
    snapshots: list[Snapshot] = pickle.loads(Path(spec["snapshots"]).read_bytes())
    hosts: list[str] = spec["hosts"]
    start: float = spec["start"]
    seconds: int = spec["seconds"]
    threads: int = spec["threads"]
    lock = threading.Lock()
    totals = {"writes": 0, "failed": 0, "samples": 0}
    lags: list[tuple[int, float]] = []
    write_seconds: list[float] = []
    errors: list[str] = []

    def run(mine: list[tuple[int, str]]) -> None:
        stores = [(i, open_store(spec["url"], h)) for i, h in mine]
        my_lags: list[tuple[int, float]] = []
        my_writes: list[float] = []
        ok = failed = 0
        try:
            for k in range(seconds):
                ts = start + k
                sleep_until(ts)
                for i, store in stores:
                    w0 = time.perf_counter()
                    try:
                        store.write(at(snapshots, k + i, ts))
                        ok += 1
                        my_writes.append(time.perf_counter() - w0)
                    except StorageError as exc:
                        failed += 1
                        if len(errors) < 5:
                            errors.append(str(exc)[:200])
                my_lags.append((k, time.time() - ts))
        finally:
            samples = 0
            for _i, store in stores:
                samples += store.stats().rows["samples_written"]
                store.close()
            with lock:
                totals["writes"] += ok
                totals["failed"] += failed
                totals["samples"] += samples
                lags.extend(my_lags)
                write_seconds.extend(my_writes)

    indexed = [(int(h[1:]), h) for h in hosts]
    groups = [indexed[t::threads] for t in range(threads)]
    workers = [threading.Thread(target=run, args=(g,)) for g in groups if g]
    c0 = time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    result = {
        **totals,
        "cpu_seconds": time.process_time() - c0,
        "lag_after_tick": summary_ms([lag for _k, lag in lags]),
        "lag_after_tick_from_10s": summary_ms([lag for k, lag in lags if k >= 10]),
        "lag_over_1s_last_at": max((k for k, lag in lags if lag > 1.0), default=None),
        "write": summary_ms(write_seconds),
        "errors": errors,
    }
    Path(spec["out"]).write_text(json.dumps(result))


def query_loop(
    client: httpx.Client, until: float, minimum: int, host: str
) -> tuple[list[float], int]:
    """The 12 dashboard requests for ``host`` over the windows ending now, round-robin
    until ``until`` (wall) and at least ``minimum`` requests; latencies, non-200 count."""
    out: list[float] = []
    errors = 0
    while time.time() < until or len(out) < minimum:
        for metric, _r, seconds in QUERIES:
            url = dashboard_url(metric, seconds, time.time(), host)
            took, response = timed_get(client, url)
            out.append(took)
            errors += response.status_code != 200
    return out, errors


def phase_hosts(
    tmp: Path, snapshots: Sequence[Snapshot], args: argparse.Namespace
) -> dict[str, Any]:
    hosts = [f"h{i:02d}" for i in range(1, args.hosts + 1)]
    snap_path = tmp / "snapshots.pickle"
    snap_path.write_bytes(pickle.dumps(list(snapshots)))
    with vm_running(tmp, "vm-hosts") as vm:
        assert vm.process is not None
        vm_pid = vm.process.pid
        prefill_end = float(math.floor(time.time()))
        prefill_vm(vm.url, hosts[0], snapshots, prefill_end)
        vm.flush()
        vm_env = {
            "SYSMON_DATABASE__BACKEND": "victoriametrics",
            "SYSMON_DATABASE__URL": vm.url,
        }
        with (
            api_server(tmp, "h-vm", vm_env) as (base, server),
            httpx.Client(base_url=base, timeout=30) as client,
        ):
            for metric, _r, seconds in QUERIES:  # warm-up, and the answer is h01's hour
                response = client.get(dashboard_url(metric, seconds, time.time(), hosts[0]))
                response.raise_for_status()
                assert response.json()["fields"], f"no data for {metric}"
            # Idle: only the queries.
            load_idle = loadavg()
            with Sampler(vm_pid) as vm_idle, Sampler(server.pid) as srv_idle:
                idle, idle_errors = query_loop(
                    client, time.time() + args.idle_seconds, args.min_requests, hosts[0]
                )
            # Ingest: the load generators, with the same query loop meanwhile.
            start = float(math.floor(time.time()) + 3)
            outs: list[Path] = []
            procs: list[subprocess.Popen[bytes]] = []
            rows0 = vm_rows_inserted(vm)
            for p in range(args.ingest_procs):
                out = tmp / f"ingest-{p}.json"
                spec = tmp / f"ingest-{p}.spec.json"
                spec.write_text(
                    json.dumps(
                        {
                            "url": vm.url,
                            "hosts": hosts[p :: args.ingest_procs],
                            "start": start,
                            "seconds": args.ingest_seconds,
                            "threads": args.ingest_threads,
                            "snapshots": str(snap_path),
                            "out": str(out),
                        }
                    )
                )
                outs.append(out)
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "bench.bench_remote", "--ingest-worker", str(spec)],
                        cwd=ROOT,
                    )
                )
            sleep_until(start)
            load_ingest_start = loadavg()
            with Sampler(vm_pid) as vm_busy, Sampler(server.pid) as srv_busy:
                busy, busy_errors = query_loop(
                    client, start + args.ingest_seconds, args.min_requests, hosts[0]
                )
                for proc in procs:
                    proc.wait(120)
            wall = time.time() - start
            load_ingest_end = loadavg()
            gen_cpu = 0.0
            gens: list[dict[str, Any]] = []
            for proc, out in zip(procs, outs, strict=True):
                assert proc.returncode == 0, f"ingest worker exited {proc.returncode}"
                gens.append(json.loads(out.read_text()))
                gen_cpu += gens[-1]["cpu_seconds"]
            rows = vm_rows_inserted(vm) - rows0
            new_series = vm.counter("vm_new_timeseries_created_total")
    writes = sum(g["writes"] for g in gens)
    vm_idle_r, vm_busy_r = vm_idle.result(), vm_busy.result()
    srv_idle_r, srv_busy_r = srv_idle.result(), srv_busy.result()
    vm_per_query = vm_idle_r["cpu_seconds"] / len(idle)
    vm_ingest_cpu = vm_busy_r["cpu_seconds"] - vm_per_query * len(busy)
    samples = sum(g["samples"] for g in gens)
    lags = [g["lag_after_tick"] for g in gens]
    late = [g["lag_over_1s_last_at"] for g in gens if g["lag_over_1s_last_at"] is not None]
    return {
        "hosts": args.hosts,
        "generator": f"{args.ingest_procs} processes x {args.ingest_threads} threads, "
        "one VictoriaStore per host, one write (one HTTP request) per host per second",
        "ingest_seconds": args.ingest_seconds,
        "wall_seconds": round(wall, 1),
        "writes_ok": writes,
        "writes_expected": args.hosts * args.ingest_seconds,
        "writes_failed": sum(g["failed"] for g in gens),
        "write_errors": [e for g in gens for e in g["errors"]][:5],
        "samples_sent": samples,
        "samples_per_s": round(samples / args.ingest_seconds),
        "vm_rows_inserted": int(rows),
        "generator_cpu_percent_of_one_core": round(gen_cpu / wall * 100, 1),
        "generator_lag_after_tick": lags,
        "generator_lag_from_10s": [g["lag_after_tick_from_10s"] for g in gens],
        "lag_over_1s_last_at": max(late, default=None),
        "write": {
            "p50_ms": statistics.median(g["write"]["p50_ms"] for g in gens),
            "p99_ms": max(g["write"]["p99_ms"] for g in gens),
        },
        "vm_idle": vm_idle_r,
        "vm_ingest": vm_busy_r,
        "server_idle": srv_idle_r,
        "server_ingest": srv_busy_r,
        "vm_cpu_ms_per_query_idle": round(vm_per_query * 1000, 2),
        "vm_cpu_ms_per_query_ingest_if_ingest_free": round(
            vm_busy_r["cpu_seconds"] / len(busy) * 1000, 2
        ),
        "vm_ingest_cpu_percent_estimate": round(vm_ingest_cpu / wall * 100, 1),
        "server_cpu_ms_per_query": {
            "idle": round(srv_idle_r["cpu_seconds"] / len(idle) * 1000, 2),
            "ingest": round(srv_busy_r["cpu_seconds"] / len(busy) * 1000, 2),
        },
        "vm_new_series": int(new_series),
        "query_idle": summary_ms(idle) | {"errors": idle_errors},
        "query_ingest": summary_ms(busy) | {"errors": busy_errors},
        "ratio_p50_ingest_over_idle": round(statistics.median(busy) / statistics.median(idle), 2),
        "ratio_p99_ingest_over_idle": round(pct(busy, 0.99) / pct(idle, 0.99), 2),
        "load_idle": load_idle,
        "load_ingest_start": load_ingest_start,
        "load_ingest_end": load_ingest_end,
    }


# --------------------------------------------------------------------- report


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Issue 11: remote backends (bench/bench_remote.py)",
        "",
        f"Command: `{results['command']}`",
        f"Run {results['started']} UTC, HEAD {results['head']}, {results['machine']}, "
        f"{results['victoria_metrics']} with -search.latencyOffset=0s (the default 30 s "
        "would hide the newest 30 s of every range query: the delay would be >= 30 s).",
        f"Load average at start {results['load_start']}, at end {results['load_end']}. "
        f"Recorded snapshots: {results['snapshots']}, {results['samples_per_tick']} samples "
        "per tick.",
        "",
    ]
    fwd = results.get("forward")
    if fwd:
        lines += [
            f"## 1. Forward throughput (backlog of {fwd['backlog_ticks']} ticks in the queue "
            f"file, one inline step; median of {fwd['repeats']})",
            "",
            "| batch_ticks | ticks/s | samples/s (runs) | forwarder CPU ms/tick | "
            "VM CPU ms/tick | samples/s if the forwarder had a core |",
            "|---:|---:|---|---:|---:|---:|",
        ]
        for batch, row in fwd["by_batch"].items():
            lines.append(
                f"| {batch} | {row['ticks_per_s']:,.0f} | {row['samples_per_s']:,.0f} "
                f"({', '.join(f'{v:,}' for v in row['samples_per_s_all'])}) | "
                f"{row['forwarder_cpu_ms_per_tick']:.3f} | {row['vm_cpu_ms_per_tick']:.3f} | "
                f"{fwd['samples_per_tick'] * 1000 / row['forwarder_cpu_ms_per_tick']:,.0f} |"
            )
        lines.append("")
    delay = results.get("delay")
    if delay:
        lines += [
            f"## 2. Delay, tick timestamp -> queryable ({delay['ticks']} ticks at 1 Hz, "
            f"poll every {delay['poll_interval_ms']:.0f} ms; never visible: "
            f"{delay['never_visible']})",
            "",
            "| from tick timestamp to | p50 ms | p90 ms | p99 ms | max ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for key in ("tick_to_collected", "tick_to_acknowledged", "tick_to_queryable"):
            s = delay[key]
            lines.append(
                f"| {key.removeprefix('tick_to_')} | {s['p50_ms']} | {s['p90_ms']} | "
                f"{s['p99_ms']} | {s['max_ms']} |"
            )
        s = delay["acknowledged_to_queryable"]
        lines.append(
            f"| (acknowledged -> queryable) | {s['p50_ms']} | {s['p90_ms']} | "
            f"{s['p99_ms']} | {s['max_ms']} |"
        )
        s = delay["poll_query"]
        lines += [
            "",
            f"One poll (`VictoriaStore.query`, raw): p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms. "
            f"Load {delay['load_start']} -> {delay['load_end']}.",
            "",
        ]
    replay = results.get("replay")
    if replay:
        lines += [
            f"## 3. Replay of {replay['outage_ticks']} queued ticks after an outage "
            "(threaded forwarder, defaults, live ticks at 1 Hz meanwhile)",
            "",
            "| run | queued MB | outage s | wait after server back s | drain s | ticks/s | "
            "requests | VM CPU s | newest live tick waited s | ticks in VM / expected |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for i, r in enumerate(replay["runs"]):
            lines.append(
                f"| {i + 1} | {r['queued_mb']} | {r['outage_seconds']} | "
                f"{r['wait_after_server_back_s']} | {r['drain_seconds']} | "
                f"{r['backlog_ticks_per_s']:,} | {r['requests']} | "
                f"{r['vm_cpu_seconds_during_drain']} | {r['live_tick_max_delay_s']} | "
                f"{r['ticks_in_vm']} / "
                f"{r['ticks_expected']} |"
            )
        lines.append("")
    query = results.get("query")
    if query:
        lines += [
            f"## 4. Range queries through the API ({query['requests_per_query_per_backend']} "
            "requests per query and backend, one client, interleaved, distinct URLs)",
            "",
            "| query (auto) | resolution / points | SQLite p50 / p99 ms | "
            "VictoriaMetrics p50 / p99 ms | VM / SQLite p50 | answers equal |",
            "|---|---|---:|---:|---:|---|",
        ]
        for name, row in query["latency"].items():
            cmp = query["answers_compared"][name]
            same = (
                cmp["same_grid"]
                and cmp["max_relative_difference"] < 1e-9
                and cmp["fields"][0] == cmp["fields"][1]
            )
            if same and cmp["gap_mismatches"] == 0:
                equal = "yes"
            elif same and cmp["gaps_only_in_open_bucket"]:
                equal = "yes, but the newest (open) bucket: VM only"
            else:
                equal = f"no: {cmp}"
            lines.append(
                f"| {name} | {cmp['resolution'][0]} / {cmp['points'][0]} | "
                f"{row['sqlite']['p50_ms']} / {row['sqlite']['p99_ms']} | "
                f"{row['victoriametrics']['p50_ms']} / {row['victoriametrics']['p99_ms']} | "
                f"{row['ratio_p50_vm_over_sqlite']} | {equal} |"
            )
        a = query["all_queries"]
        cpu = query["server_cpu_ms_per_request"]
        lines += [
            f"| all | | {a['sqlite']['p50_ms']} / {a['sqlite']['p99_ms']} | "
            f"{a['victoriametrics']['p50_ms']} / {a['victoriametrics']['p99_ms']} | "
            f"{round(a['victoriametrics']['p50_ms'] / a['sqlite']['p50_ms'], 2)} | |",
            "",
            f"CPU per request: server {cpu['sqlite']} ms (SQLite) vs {cpu['victoriametrics']} "
            f"ms (VM backend) + {query['vm_cpu_ms_per_request']} ms in victoria-metrics. "
            f"Errors: {query['errors']}. Load {query['load_start']} -> {query['load_end']}.",
            "",
        ]
    hosts = results.get("hosts")
    if hosts:
        qi, qb = hosts["query_idle"], hosts["query_ingest"]
        vi, vb = hosts["vm_idle"], hosts["vm_ingest"]
        si, sb = hosts["server_idle"], hosts["server_ingest"]
        lines += [
            f"## 5. {hosts['hosts']} simulated hosts into one VictoriaMetrics "
            f"({hosts['ingest_seconds']} s; {hosts['generator']})",
            "",
            f"Ingest: {hosts['writes_ok']:,} of {hosts['writes_expected']:,} writes "
            f"({hosts['writes_failed']} failed), {hosts['samples_per_s']:,} samples/s "
            f"(VM counted {hosts['vm_rows_inserted']:,} rows); generator CPU "
            f"{hosts['generator_cpu_percent_of_one_core']} % of a core. Per generator "
            "process, how late a thread finished its hosts' writes for a second, p50/p99: "
            + "; ".join(
                f"{g['p50_ms']}/{g['p99_ms']} ms" for g in hosts["generator_lag_after_tick"]
            )
            + "; from the 10th second on: "
            + "; ".join(f"{g['p50_ms']}/{g['p99_ms']} ms" for g in hosts["generator_lag_from_10s"])
            + f"; one write p50/p99: {hosts['write']['p50_ms']}/{hosts['write']['p99_ms']} ms; "
            f"last second a thread was > 1 s late: {hosts['lag_over_1s_last_at']}.",
            "",
            "| | idle | during ingest | ratio |",
            "|---|---:|---:|---:|",
            f"| dashboard query p50 ms (n) | {qi['p50_ms']} ({qi['n']}) | {qb['p50_ms']} "
            f"({qb['n']}) | {hosts['ratio_p50_ingest_over_idle']} |",
            f"| dashboard query p99 ms | {qi['p99_ms']} | {qb['p99_ms']} | "
            f"{hosts['ratio_p99_ingest_over_idle']} |",
            f"| victoria-metrics CPU % of a core | {vi['cpu_percent_of_one_core']} | "
            f"{vb['cpu_percent_of_one_core']} | |",
            f"| victoria-metrics RSS MiB (max) | {vi['rss_mib_max']} | {vb['rss_mib_max']} | |",
            f"| sysmon server CPU % of a core | {si['cpu_percent_of_one_core']} | "
            f"{sb['cpu_percent_of_one_core']} | |",
            f"| sysmon server CPU ms per request | {hosts['server_cpu_ms_per_query']['idle']} | "
            f"{hosts['server_cpu_ms_per_query']['ingest']} | |",
            f"| query errors | {qi['errors']} | {qb['errors']} | |",
            "",
            f"victoria-metrics CPU per query when idle {hosts['vm_cpu_ms_per_query_idle']} ms; "
            "its ingest share during ingest (CPU minus queries x that) ~"
            f"{hosts['vm_ingest_cpu_percent_estimate']} % of a core; series created "
            f"{hosts['vm_new_series']:,}.",
            "",
            f"Load: idle {hosts['load_idle']}, ingest start {hosts['load_ingest_start']}, "
            f"end {hosts['load_ingest_end']}.",
            "",
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------- main


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--phases", default=",".join(PHASES), help=f"any of {','.join(PHASES)}")
    parser.add_argument("--quick", action="store_true", help="~1 minute smoke run")
    parser.add_argument("--snapshots", type=int, default=10, help="real ticks recorded")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backlog", type=int, default=2000, help="forward: ticks queued")
    parser.add_argument("--batches", default="100,10,500,1000", help="forward: batch_ticks")
    parser.add_argument("--delay-ticks", type=int, default=90)
    parser.add_argument("--poll", type=float, default=0.01, help="delay: poll interval (s)")
    parser.add_argument("--outage-ticks", type=int, default=HOUR)
    parser.add_argument("--outage", type=float, default=8.0, help="replay: outage seconds")
    parser.add_argument("--query-rounds", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--ingest-seconds", type=int, default=75)
    parser.add_argument("--ingest-procs", type=int, default=2)
    parser.add_argument("--ingest-threads", type=int, default=5)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--min-requests", type=int, default=204)
    parser.add_argument("--out-dir", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--ingest-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.snapshots = 3
        args.repeats = 1
        args.backlog = 300
        args.delay_ticks = 8
        args.outage_ticks = 600
        args.outage = 3.0
        args.query_rounds = 10
        args.hosts = 10
        args.ingest_seconds = 8
        args.idle_seconds = 3.0
        args.min_requests = 24
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.ingest_worker:
        ingest_worker(Path(args.ingest_worker))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        sys.stderr.write(f"unknown phases {sorted(unknown)}; known: {PHASES}\n")
        return 2
    binary = shutil.which(BINARY_NAME)
    if binary is None:
        sys.stderr.write("victoria-metrics is not installed (apt-get install victoria-metrics)\n")
        return 2
    found = subprocess.run(  # the binary's -version prints nothing in Debian's build
        ["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"],
        capture_output=True,
        text=True,
        check=False,
    )
    version = f"victoria-metrics {found.stdout.strip() or '(version unknown)'} ({binary})"
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    results: dict[str, Any] = {
        "command": " ".join([".venv/bin/python -m bench.bench_remote", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "head": head,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
        "victoria_metrics": version,
        "load_start": loadavg(),
    }
    w0 = time.monotonic()
    log.info("recording %d real ticks", args.snapshots)
    snapshots = record(args.snapshots)
    results["snapshots"] = len(snapshots)
    results["samples_per_tick"] = statistics.median(len(s.samples()) for s in snapshots)
    with tempfile.TemporaryDirectory(prefix="sysmon-bench-remote-") as name:
        tmp = Path(name)
        if {"forward", "delay", "replay"} & set(phases):
            with vm_running(tmp, "vm-forward") as vm:
                if "forward" in phases:
                    log.info("phase forward")
                    results["forward"] = phase_forward(vm, tmp, snapshots, args)
                if "delay" in phases:
                    log.info("phase delay")
                    results["delay"] = phase_delay(vm, tmp, args)
                if "replay" in phases:
                    log.info("phase replay")
                    results["replay"] = phase_replay(vm, tmp, snapshots, args)
        if "query" in phases:
            log.info("phase query")
            results["query"] = phase_query(tmp, snapshots, args)
        if "hosts" in phases:
            log.info("phase hosts")
            results["hosts"] = phase_hosts(tmp, snapshots, args)
    results["load_end"] = loadavg()
    results["wall_seconds"] = round(time.monotonic() - w0, 1)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "remote.json").write_text(json.dumps(results, indent=2, default=str))
    text = markdown(results)
    (out / "remote.md").write_text(text + "\n")
    print(text)
    print(f"wall {results['wall_seconds']} s; results in {out}/remote.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
