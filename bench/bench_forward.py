"""What forwarding to one healthy remote adds to the agent, per tick.

``.venv/bin/python -m bench.bench_forward [--ticks 300] [--backlog 3600]``

Starts a real ``victoria-metrics`` on a free loopback port (``tests.support.victoria``),
collects ``--snapshots`` real ticks with this host's collectors (default options), then
runs a ``Forwarder`` (real queue file, real ``VictoriaStore``) over ``--ticks`` ticks,
cycling through those snapshots with fresh one-second timestamps:

* tick thread: ``submit`` + ``status`` (what the agent's tick does per remote);
* forwarder thread: one ``step`` (encode, append to ``forward-bench.db``, send, delete);
  measured inline here with ``thread_time``, so it is this thread's CPU only (the
  server's CPU is its own process's).

Medians and p99 in milliseconds, plus the queue entry size. Then ``--backlog`` ticks are
queued with the server stopped and drained after it is back: ticks per second sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import statistics
import tempfile
import time
from pathlib import Path

from sysmon.agent.forward import Forwarder, ForwardQueue, encode_snapshot
from sysmon.clock import SystemClock
from sysmon.collectors.registry import discover
from sysmon.collectors.source import PsutilSource
from sysmon.models import Snapshot
from sysmon.storage.victoria import VictoriaStore
from tests.support.victoria import victoria_server


def collect(count: int) -> list[Snapshot]:
    """``count`` real ticks one second apart (the first primes the rates)."""
    source = PsutilSource()
    collectors = discover().build({}, source)
    out: list[Snapshot] = []
    try:
        for i in range(count + 1):
            mono = time.monotonic()
            results = {}
            for name, collector in collectors.items():
                try:
                    results[name] = collector.collect(mono)
                except Exception:
                    continue
            if i:
                out.append(Snapshot(time.time(), results))
            time.sleep(1.0)
    finally:
        for collector in collectors.values():
            collector.close()
        source.close()
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--snapshots", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=3600)
    args = parser.parse_args()

    snapshots = collect(args.snapshots)
    samples = statistics.median(len(s.samples()) for s in snapshots)
    entry = statistics.median(len(encode_snapshot(s)) for s in snapshots)
    clock = SystemClock()
    with tempfile.TemporaryDirectory() as tmp, victoria_server(Path(tmp) / "vm") as vm:
        store = VictoriaStore(vm.url, clock=clock, host=socket.gethostname())
        queue = ForwardQueue(Path(tmp) / "forward-bench.db")
        # No backoff: the drain below starts the moment the server is back.
        forwarder = Forwarder("bench", store, queue, clock, backoff_initial_seconds=0.0)
        forwarder.start(threaded=False)
        start = time.time() - args.ticks - args.backlog - 10
        submit_cpu: list[float] = []
        step_cpu: list[float] = []
        step_wall: list[float] = []
        for i in range(args.ticks):
            snap = dataclasses.replace(snapshots[i % len(snapshots)], timestamp=start + i)
            c0 = time.thread_time()
            forwarder.submit(snap)
            forwarder.status(snap.timestamp)
            c1 = time.thread_time()
            w1 = time.perf_counter()
            forwarder.step()
            step_cpu.append(time.thread_time() - c1)
            step_wall.append(time.perf_counter() - w1)
            submit_cpu.append(c1 - c0)
        assert forwarder.status(time.time())["queued_ticks"] == 0, "remote not healthy"

        vm.stop()
        base = start + args.ticks
        for i in range(args.backlog):
            forwarder.submit(dataclasses.replace(snapshots[i % len(snapshots)], timestamp=base + i))
        forwarder.step()  # queued (one transaction), the send fails
        queued = forwarder.status(time.time())
        vm.start()
        t0, c0 = time.perf_counter(), time.thread_time()
        forwarder.step()
        drain_wall, drain_cpu = time.perf_counter() - t0, time.thread_time() - c0
        assert forwarder.status(time.time())["queued_ticks"] == 0
        forwarder.stop()

    ms = 1000.0
    print(f"samples per tick (median): {samples:.0f}; queue entry: {entry:.0f} bytes")
    print(f"tick thread, submit+status: median {statistics.median(submit_cpu) * ms:.3f} ms CPU")
    print(
        f"forwarder thread, one step: median {statistics.median(step_cpu) * ms:.3f} ms CPU "
        f"(p99 {pct(step_cpu, 0.99) * ms:.3f}), wall median "
        f"{statistics.median(step_wall) * ms:.3f} ms (p99 {pct(step_wall, 0.99) * ms:.3f})"
    )
    print(
        f"backlog: {args.backlog} ticks = {queued['queued_bytes'] / 1e6:.1f} MB queued; "
        f"drained in {drain_wall:.2f} s ({args.backlog / drain_wall:.0f} ticks/s, "
        f"{drain_cpu / args.backlog * ms:.3f} ms CPU per tick)"
    )


if __name__ == "__main__":
    main()
