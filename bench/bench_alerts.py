"""Alert evaluation cost per collection tick.

Host: the full CONTRACTS field set for cpu (totals + 8 cores), memory, disk (totals,
4 devices, 4 mounts), network (totals + 4 interfaces), processes: ~150 samples a tick.
Rules: 50, a realistic mix over those fields (totals, per mount, per interface, per
device, per core), with values that keep most series quiet and a few pending/firing,
so the steady state (no transitions, no database writes) is what is measured, plus one
run where every tick flips a series (the worst case: a DB write every tick).

    .venv/bin/python bench/bench_alerts.py [--ticks 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sysmon.alerts.config import AlertsConfig
from sysmon.alerts.service import AlertService
from sysmon.catalog import metric_catalog
from sysmon.clock import FakeClock
from sysmon.collectors.registry import discover
from sysmon.models import Collected, Sample, Snapshot

MOUNTS = ["/", "/var", "/home", "/data"]
DEVICES = ["sda", "sdb", "nvme0n1", "nvme1n1"]
IFACES = ["eth0", "eth1", "wlan0", "docker0"]
DEVICE_FIELDS = ["read_bytes_per_sec", "write_bytes_per_sec", "read_ops_per_sec",
                 "write_ops_per_sec", "busy_percent"]  # fmt: skip
MOUNT_FIELDS = ["total_bytes", "used_bytes", "free_bytes", "percent"]
CATALOG = metric_catalog(discover())
KNOWN_FIELDS = {
    name: sorted(info.field for info in entry.fields) for name, entry in CATALOG.metrics.items()
}


def host_snapshot(ts: float, cpu: float) -> Snapshot:
    cpu_s = [Sample("cpu", f, 10.0) for f in sorted(KNOWN_FIELDS["cpu"])]
    cpu_s[[s.field for s in cpu_s].index("percent")] = Sample("cpu", "percent", cpu)
    cpu_s += [Sample("cpu", "percent", 20.0, (("core", str(i)),)) for i in range(8)]
    mem = [Sample("memory", f, 40.0) for f in sorted(KNOWN_FIELDS["memory"])]
    disk = [Sample("disk", f, 50.0) for f in sorted(KNOWN_FIELDS["disk"])]
    disk += [Sample("disk", f, 5.0, (("device", d),)) for d in DEVICES for f in DEVICE_FIELDS]
    disk += [
        Sample("disk", f, 90.0 if m == "/data" else 50.0, (("mount", m),))
        for m in MOUNTS
        for f in MOUNT_FIELDS
    ]
    net = [Sample("network", f, 1000.0) for f in sorted(KNOWN_FIELDS["network"])]
    net += [
        Sample("network", f, 1000.0, (("interface", i),))
        for i in IFACES
        for f in sorted(KNOWN_FIELDS["network"])
    ]
    procs = [Sample("processes", "count", 300.0), Sample("processes", "threads", 1200.0)]
    return Snapshot(
        ts,
        {
            "cpu": Collected(tuple(cpu_s)),
            "memory": Collected(tuple(mem)),
            "disk": Collected(tuple(disk)),
            "network": Collected(tuple(net)),
            "processes": Collected(tuple(procs)),
        },
    )


def fifty_rules() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = []

    def add(metric: str, threshold: float, **extra: object) -> None:
        rules.append({"name": f"r{len(rules)}", "metric": metric, "threshold": threshold,
                      "for": "5m", **extra})  # fmt: skip

    for f in ("percent", "user_percent", "system_percent", "iowait_percent", "load_1"):
        add(f"cpu.{f}", 80)
    add("cpu.percent", 95, selector={"core": "any"})
    for f in ("percent", "swap_percent", "used_bytes", "available_bytes"):
        add(f"memory.{f}", 90, operator="<" if f == "available_bytes" else ">")
    for f in MOUNT_FIELDS:
        add(f"disk.{f}", 85, selector={"mount": "any"})
        add(f"disk.{f}", 95, selector={"mount": "/var"})
    for f in DEVICE_FIELDS:
        add(f"disk.{f}", 1e9, selector={"device": "any"})
        add(f"disk.{f}", 1e9)
    for f in sorted(KNOWN_FIELDS["network"]):
        add(f"network.{f}", 1e9, selector={"interface": "any"})
        add(f"network.{f}", 1e9, selector={"interface": "eth*"})
    add("processes.count", 5000)
    add("processes.threads", 50000)
    while len(rules) < 50:
        add("disk.percent", 70 + len(rules) % 20, selector={"mount": "any"})
    assert len(rules) == 50
    return rules


def run(ticks: int, flip: bool) -> tuple[list[float], list[float]]:
    """Wall time and CPU time of this thread per ``evaluate`` call (seconds).

    Both are reported: wall time is what the collection tick waits, CPU time is the
    work itself; on a loaded machine the wall-time tail is mostly scheduling.
    """
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        config = AlertsConfig.model_validate({"rules": fifty_rules()})
        service = AlertService.from_settings(config, f"{tmp}/a.db", clock, None, "bench", {})
        service.start()
        snaps = [host_snapshot(0.0, 50.0), host_snapshot(0.0, 85.0)]
        wall: list[float] = []
        cpu: list[float] = []
        for i in range(ticks):
            clock.advance(1.0)
            base = snaps[i % 2] if flip else snaps[0]
            snap = Snapshot(clock.time(), base.results)
            c = time.thread_time()
            t = time.perf_counter()
            service.evaluate(snap)
            wall.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
        service.stop()
    return wall[100:], cpu[100:]  # drop warm-up (first ticks create pending state)


def report(name: str, d: list[float]) -> str:
    d_sorted = sorted(d)
    p = lambda q: d_sorted[int(q * (len(d_sorted) - 1))] * 1e6  # noqa: E731
    return (
        f"| {name} | {len(d)} | {statistics.mean(d) * 1e6:.0f} | {p(0.5):.0f} | "
        f"{p(0.99):.0f} | {max(d) * 1e6:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=20_000)
    args = parser.parse_args()
    samples = len(host_snapshot(0, 0).samples())
    print(f"50 rules, {samples} samples per tick (4 mounts, 4 devices, 4 interfaces, 8 cores)")
    print("| scenario | ticks | mean µs | p50 µs | p99 µs | max µs |")
    print("|---|---|---|---|---|---|")
    for name, flip in (
        ("steady (firing /data series, no transitions)", False),
        ("worst: cpu.percent flips pending<->inactive every tick", True),
    ):
        wall, cpu = run(args.ticks, flip)
        print(report(f"{name}: wall", wall))
        print(report(f"{name}: thread CPU", cpu))


if __name__ == "__main__":
    main()
