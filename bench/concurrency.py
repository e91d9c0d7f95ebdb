"""Concurrency: 200 clients for 60 s on current, range and process queries while the
service collects every second. Pass = zero errors and no missed ticks.

Why it matters: the API answers from worker threads that share the SQLite file with the
collection thread. Under heavy read load a tick must still run on time and its write
must still land (WAL: readers never block the writer), and no request may fail.

The load is wrk (C, so the client does not starve the server of CPU on a small box)
with a Lua script that picks, per request, one of: current (40 %), a 1 h range (auto
resolution), a 5 min raw range, a 1 h max range of network, the process table by CPU
or memory, or the process table stored 30 s ago. Without wrk an asyncio client is used.

Checks afterwards:

* wrk's non-2xx count and socket errors (connect/read/write/timeout) must all be 0;
* ticks: the raw tier of ``cpu`` over the load window (via the range API,
  ``resolution=raw``) must have one stored tick per elapsed second;
* a 1 Hz health poller records the largest ``last_collection_age_seconds`` (a stalled
  tick shows as an age above 2 s) and ``pending_writes``.

    .venv/bin/python -m bench.concurrency [--clients 200] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench import loadgen
from bench.loadgen import LoadResult
from bench.proctree import sample_tree
from tests.support.process import free_port, spawn_service, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

# Paths relative to the base URL; {now} is filled per request (Lua: os.time()).
MIX: list[tuple[str, str, int]] = [
    ("current", "/api/v1/metrics/current", 8),
    ("range_cpu_1h", "/api/v1/metrics/cpu", 3),
    ("range_mem_5m_raw", "/api/v1/metrics/memory?resolution=raw&start={now_300}", 2),
    ("range_net_1h_max", "/api/v1/metrics/network?agg=max", 2),
    ("processes_cpu", "/api/v1/metrics/processes?limit=20&sort=cpu", 2),
    ("processes_mem", "/api/v1/metrics/processes?limit=50&sort=memory", 2),
    ("processes_at", "/api/v1/metrics/processes?at={now_30}", 1),
]

LUA = """
math.randomseed(os.time())
local paths = {%s}
request = function()
  local now = os.time()
  local p = paths[math.random(#paths)]
  p = p:gsub("{now_300}", tostring(now - 300)):gsub("{now_30}", tostring(now - 30))
  return wrk.format("GET", p)
end
"""


@dataclass
class Result:
    tool: str
    clients: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    ticks_stored: int
    slots: int
    missing_slots: list[float] = field(default_factory=list)
    max_collection_age_s: float = 0.0
    max_pending_writes: int = 0
    health_degraded_samples: int = 0
    collector_errors: dict[str, str] = field(default_factory=dict)
    cpu_percent_service: float = 0.0
    rss_mib_end: float = 0.0


class HealthPoller:
    def __init__(self, base: str) -> None:
        self.base = base
        self.max_age = 0.0
        self.max_pending = 0
        self.degraded = 0
        self.collector_errors: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(1.0):
                try:
                    h = client.get(f"{self.base}/api/v1/health").json()
                except (httpx.HTTPError, ValueError):
                    self.degraded += 1
                    continue
                self.max_age = max(self.max_age, float(h["last_collection_age_seconds"] or 0))
                self.max_pending = max(self.max_pending, int(h["database"]["pending_writes"]))
                self.degraded += h["status"] != "ok"
                self.collector_errors.update(h.get("collector_errors") or {})

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def run_wrk(base: str, clients: int, seconds: int) -> LoadResult:
    paths = ", ".join(json.dumps(path) for _, path, weight in MIX for _ in range(weight))
    return loadgen.run_wrk(base, clients, seconds, lua=LUA % paths, timeout="10s")


def run_python(base: str, clients: int, seconds: int) -> LoadResult:
    rng = random.Random(6)
    choices = [path for _, path, weight in MIX for _ in range(weight)]

    def next_url() -> str:
        now = int(time.time())
        return base + rng.choice(choices).format(now_300=now - 300, now_30=now - 30)

    return asyncio.run(loadgen.python_load(next_url, clients, seconds, timeout=10))


def stored_ticks(base: str, start: float, end: float) -> tuple[int, int, list[float]]:
    r = httpx.get(
        f"{base}/api/v1/metrics/cpu",
        params={"start": f"{start:.0f}", "end": f"{end:.0f}", "resolution": "raw"},
        timeout=30,
    )
    r.raise_for_status()
    body = r.json()
    values = body["fields"]["load_1"]
    missing = [t for t, v in zip(body["timestamps"], values, strict=True) if v is None]
    return len(values) - len(missing), len(values), missing


def markdown(r: Result, command: str) -> str:
    ok = r.non_2xx == 0 and r.socket_errors == 0 and not r.missing_slots
    return "\n".join(
        [
            f"{r.clients} concurrent clients ({r.tool}) for {r.seconds:.0f} s, collection every "
            f"1 s, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
            f"Command: `{command}`",
            "",
            "| requests | req/s | p50 ms | p99 ms | non-2xx | socket errors | ticks stored / "
            "seconds | max collection age s | max pending writes | degraded samples "
            "| service CPU % | RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {r.requests} | {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.non_2xx} "
            f"| {r.socket_errors} | {r.ticks_stored} / {r.slots} | {r.max_collection_age_s:.2f} "
            f"| {r.max_pending_writes} | {r.health_degraded_samples} "
            f"| {r.cpu_percent_service:.0f} | {r.rss_mib_end:.1f} |",
            "",
            f"Verdict: {'PASS' if ok else 'FAIL'} (zero errors and no missed ticks required)"
            + (f"; missing slots: {r.missing_slots[:20]}" if r.missing_slots else "")
            + (f"; collector errors seen: {r.collector_errors}" if r.collector_errors else ""),
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup", type=float, default=35.0, help="seconds before load")
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--out", default=str(RESULTS / "concurrency"))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sysmon-conc-"))
    db = tmp / "sysmon.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "service.log").open("wb")
    proc = spawn_service(db, port, log)
    tool = args.tool
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    try:
        wait_healthy(base)
        # Warm-up: enough ticks that "processes?at=now-30" has a stored table to find.
        time.sleep(args.warmup)
        poller = HealthPoller(base)
        poller.start()
        c0 = sample_tree(proc.pid)
        w0 = time.time()
        m0 = time.monotonic()
        run = run_wrk if tool == "wrk" else run_python
        res = run(base, args.clients, args.seconds)
        elapsed = time.monotonic() - m0
        w1 = time.time()
        c1 = sample_tree(proc.pid)
        time.sleep(2)  # let the last tick of the window be written
        poller.stop()
        # Whole seconds strictly inside the window: both ends are partial.
        stored, slots, missing = stored_ticks(base, w0 + 1, w1 - 1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    result = Result(
        tool=tool,
        clients=args.clients,
        seconds=elapsed,
        requests=res.requests,
        rps=res.rps,
        p50_ms=res.p50_ms,
        p99_ms=res.p99_ms,
        non_2xx=res.non_2xx,
        socket_errors=res.socket_errors,
        ticks_stored=stored,
        slots=slots,
        missing_slots=missing,
        max_collection_age_s=poller.max_age,
        max_pending_writes=poller.max_pending,
        health_degraded_samples=poller.degraded,
        collector_errors=poller.collector_errors,
        cpu_percent_service=(c1.cpu_seconds - c0.cpu_seconds) / elapsed * 100,
        rss_mib_end=c1.rss_bytes / 2**20,
    )
    command = " ".join([".venv/bin/python -m bench.concurrency", *sys.argv[1:]])
    text = markdown(result, command)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(asdict(result), indent=2))
    out.with_suffix(".md").write_text(text)
    sys.stdout.write(text + f"service log: {tmp / 'service.log'}\n")
    ok = result.non_2xx == 0 and result.socket_errors == 0 and not result.missing_slots
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
