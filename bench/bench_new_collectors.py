"""Per-call cost of the collectors added for issue 13, and what their defaults are based on.

``.venv/bin/python -m bench.bench_new_collectors [--calls 1000] [--connections 9900]``

1. Each new collector with its default options on this host: median and p99 of
   ``--calls`` consecutive ``collect`` calls, wall time (``perf_counter``) and CPU of this
   thread (``thread_time``). The monotonic argument advances 1 s per call, as under the
   scheduler at the default interval, so refresh periods (sensors 5 s, sockets' TCP
   states 60 s, container walk 10 s, GPU card list 60 s) come round as in production.
   Collectors whose thing this host lacks show their cost *when absent*.
2. The same collectors on the recorded/hand-written fixture trees (the cost when
   present; fixture files live on a normal filesystem, so kernel-generated files would
   cost a little more).
3. ``containers`` (``services: true``) on real cgroupfs: ``--cgroups`` (default 50)
   child cgroups made under the host's cgroup v2 tree, each with a sleeping process,
   when the host allows it.
4. TCP state counting with ``--connections`` loopback connection pairs open (each pair
   is two sockets; the default 9,900 pairs is ~20,000 sockets, the most a 20,000
   RLIMIT_NOFILE allows): ``/proc/net/tcp{,6}`` parsed vs an ``INET_DIAG`` dump.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sysmon.collectors.containers import ContainersCollector
from sysmon.collectors.files import FilesCollector
from sysmon.collectors.gpus import GpusCollector
from sysmon.collectors.inodes import InodesCollector
from sysmon.collectors.pressure import PressureCollector
from sysmon.collectors.sensors import SensorsCollector
from sysmon.collectors.sockets import SocketsCollector, netlink_tcp_states, proc_tcp_states
from sysmon.collectors.source import PsutilSource

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def measure(fn: Callable[[float], object], calls: int) -> tuple[float, float, float]:
    """(median wall ms, p99 wall ms, median CPU ms) over ``calls`` calls of ``fn(now)``."""
    wall: list[float] = []
    cpu: list[float] = []
    now = 1000.0
    for _ in range(calls):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn(now)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
        now += 1.0
    wall.sort()
    p99 = wall[min(len(wall) - 1, int(len(wall) * 0.99))]
    return statistics.median(wall) * 1e3, p99 * 1e3, statistics.median(cpu) * 1e3


def row(name: str, fn: Callable[[float], object], calls: int, note: str = "") -> None:
    med, p99, cpu = measure(fn, calls)
    print(f"  {name:<34} median {med:7.3f} ms  p99 {p99:7.3f} ms  cpu {cpu:7.3f} ms  {note}")


def live_defaults(calls: int) -> None:
    print(f"1. defaults on this host ({calls} calls each)")
    source = PsutilSource()
    classes: list[Any] = [PressureCollector, InodesCollector, SocketsCollector, FilesCollector,
                          SensorsCollector, ContainersCollector, GpusCollector]  # fmt: skip
    for cls in classes:
        collector: Any = cls(source, cls.Options())
        first = collector.collect(999.0)
        note = f"{len(first.samples)} samples" if first.samples else "nothing here (absent)"
        row(cls.name, collector.collect, calls, note)
        collector.close()


def fixtures(calls: int) -> None:
    print(f"2. on the fixture trees ({calls} calls each)")
    pressure = PressureCollector(
        None, PressureCollector.Options(proc_root=str(FIXTURES / "proc_pressure" / "tick1"))
    )
    row("pressure (recorded)", pressure.collect, calls)
    net = str(FIXTURES / "proc_net" / "recorded")
    sockets = SocketsCollector(None, SocketsCollector.Options(proc_root=net))
    row("sockets (recorded, states every 60 s)", sockets.collect, calls)
    cg = ContainersCollector(
        None,
        ContainersCollector.Options(
            cgroup_root=str(FIXTURES / "sys_fs_cgroup" / "host"), services=True
        ),
    )
    row("containers (10 cgroups, hand-written)", cg.collect, calls)
    gpus = GpusCollector(
        None,
        GpusCollector.Options(sys_root=str(FIXTURES / "sys_class_drm"), nvidia=False),
    )
    row("gpus (2 amdgpu cards, hand-written)", gpus.collect, calls)
    doc = json.loads((FIXTURES / "nvml" / "two_gpus.json").read_text())
    from tests.collectors.test_gpus import FakeNvml

    nv = GpusCollector(None, GpusCollector.Options(amd=False), nvml=FakeNvml(doc["devices"]))
    row("gpus (2 NVIDIA, fake NVML: Python only)", nv.collect, calls)


def cgroupfs(calls: int, count: int) -> None:
    print(f"3. containers on real cgroupfs with {count} extra cgroups")
    root = next(
        (r for r in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified")
         if os.path.exists(os.path.join(r, "cgroup.controllers"))),
        None,
    )  # fmt: skip
    if root is None:
        print("  skipped: no cgroup v2 hierarchy")
        return
    made: list[Path] = []
    sleepers: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(count):
            child = Path(root) / f"sysmon-bench-{os.getpid()}-{i}.service"
            child.mkdir()
            made.append(child)
            proc = subprocess.Popen(["sleep", "600"])
            sleepers.append(proc)
            (child / "cgroup.procs").write_text(str(proc.pid))
    except OSError as exc:
        print(f"  skipped: cannot create cgroups under {root}: {exc}")
        return
    try:
        opts = ContainersCollector.Options(
            cgroup_root=root, services=True, max_cgroups=max(100, count + 20)
        )
        collector = ContainersCollector(None, opts)
        reported = collector.collect(999.0)
        n = int(next(s.value for s in reported.samples if s.field == "count" and not s.labels))
        row(f"containers ({count} cgroups, {root})", collector.collect, calls, f"{n} reported")
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()
        for child in made:
            for _ in range(100):
                try:
                    child.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)


def tcp_states(pairs: int, calls: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * pairs + 100)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    pairs = min(pairs, (want - 100) // 2)
    print(f"4. TCP state counting with {pairs} loopback connection pairs open")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    srv.setblocking(False)
    clients: list[socket.socket] = []
    accepted: list[socket.socket] = []
    try:
        for _ in range(pairs):
            clients.append(socket.create_connection(srv.getsockname()))
            while True:
                try:
                    accepted.append(srv.accept()[0])
                except BlockingIOError:
                    break
        deadline = time.monotonic() + 10
        while len(accepted) < pairs and time.monotonic() < deadline:
            try:
                accepted.append(srv.accept()[0])
            except BlockingIOError:
                time.sleep(0.001)
        counts = netlink_tcp_states()
        print(f"  sockets by state: {dict(sorted(counts.items()))}")
        row("/proc/net/tcp{,6} parsed", lambda _: proc_tcp_states("/proc"), calls)
        row("INET_DIAG dump", lambda _: netlink_tcp_states(), calls)
    finally:
        for s in clients + accepted:
            s.close()
        srv.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=9900)
    parser.add_argument("--cgroups", type=int, default=50)
    args = parser.parse_args()
    live_defaults(args.calls)
    fixtures(args.calls)
    cgroupfs(args.calls, args.cgroups)
    tcp_states(args.connections, max(10, args.calls // 50))


if __name__ == "__main__":
    main()
