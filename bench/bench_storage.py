"""Storage benchmark: a full retention of a mid-size host in one SQLite file.

Host: 8 cores, 4 mounts, 4 disks, 4 interfaces -> 118 values per tick in 25 series
groups (docs/CONTRACTS.md field list). Values are shaped like psutil's: percentages with
one decimal, byte gauges as integers, rates as integer counter deltas divided by a
jittery monotonic elapsed time (full float64 mantissa: the incompressible worst case),
error/drop rates and idle devices mostly 0.

Phases (simulated clock, nothing sleeps):
1. import rollup buckets for the old part of each tier (1h: days 365..30, 5m: 30..7,
   1m: 7..1 before the end) through ``SQLiteStore.import_buckets`` - the rows the rollup
   itself writes - then let ``maintain`` compact them and roll the 5m/1h tiers up;
2. one day of 1 s ticks through ``write`` with ``maintain`` after every tick, exactly
   like the collection loop (this measures write and maintain cost per tick);
3. range queries of 5 min, 1 h, 24 h, 7 d, 30 d and 1 y with ``resolution=auto``.

Run: ``.venv/bin/python bench/bench_storage.py [--days-raw 1.0] [--out DIR]``
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sysmon.clock import FakeClock
from sysmon.models import Collected, Labels, Sample, Snapshot
from sysmon.storage.base import RangeQuery
from sysmon.storage.config import RetentionConfig
from sysmon.storage.rollup import Stat
from sysmon.storage.sqlite import SQLiteStore

DAY = 86_400.0
END = 1_767_225_600.0  # 2026-01-01T00:00:00Z

Gen = Callable[[random.Random, float], float]


def pct(level: float, spread: float) -> Gen:
    return lambda r, e: round(min(100.0, max(0.0, r.gauss(level, spread))), 1)


def const(v: float) -> Gen:
    return lambda r, e: v


def bytes_gauge(base: float, step: int) -> Gen:
    state = [base]

    def g(r: random.Random, e: float) -> float:
        state[0] += r.randint(-3, 3) * step
        return float(int(state[0]))

    return g


def rate(mean: float, idle_share: float = 0.0, unit: int = 1) -> Gen:
    # An integer counter delta over a monotonic elapsed time, as the collectors compute it.
    def g(r: random.Random, e: float) -> float:
        if r.random() < idle_share:
            return 0.0
        return int(r.expovariate(1.0 / mean)) * unit / e

    return g


def mostly_zero(r: random.Random, e: float) -> float:
    return 0.0 if r.random() < 0.995 else 1.0 / e


def load(r: random.Random, e: float) -> float:
    return round(abs(r.gauss(1.2, 0.3)), 2)


def host() -> dict[tuple[str, Labels], dict[str, Gen]]:
    g: dict[tuple[str, Labels], dict[str, Gen]] = {}
    g[("cpu", ())] = {
        "percent": pct(23, 6),
        "user_percent": pct(15, 4),
        "system_percent": pct(6, 2),
        "iowait_percent": pct(1, 0.5),
        "steal_percent": const(0.0),
        "idle_percent": pct(77, 6),
        "load_1": load,
        "load_5": load,
        "load_15": load,
        "ctx_switches_per_sec": rate(9000),
        "interrupts_per_sec": rate(4000),
        "freq_mhz": lambda r, e: float(r.choice((2400, 2800, 3200, 3600))),
    }
    for c in range(8):
        g[("cpu", (("core", str(c)),))] = {"percent": pct(23, 10)}
    gib = 1 << 30
    g[("memory", ())] = {
        "total_bytes": const(32.0 * gib),
        "available_bytes": bytes_gauge(20 * gib, 4096 * 25),
        "used_bytes": bytes_gauge(10 * gib, 4096 * 25),
        "percent": pct(37, 0.3),
        "buffers_bytes": bytes_gauge(1 * gib, 4096),
        "cached_bytes": bytes_gauge(8 * gib, 4096 * 10),
        "swap_total_bytes": const(8.0 * gib),
        "swap_used_bytes": bytes_gauge(0.1 * gib, 0),
        "swap_percent": const(1.2),
        "swap_in_bytes_per_sec": mostly_zero,
        "swap_out_bytes_per_sec": mostly_zero,
    }
    disk_rates: dict[str, Gen] = {
        "read_bytes_per_sec": rate(400_000, 0.3, 512),
        "write_bytes_per_sec": rate(900_000, 0.2, 512),
        "read_ops_per_sec": rate(40, 0.3),
        "write_ops_per_sec": rate(80, 0.2),
        "busy_percent": rate(30, 0.2),
    }
    g[("disk", ())] = {
        **disk_rates,
        "total_bytes": const(4e12),
        "used_bytes": bytes_gauge(1.5e12, 4096 * 100),
        "free_bytes": bytes_gauge(2.5e12, 4096 * 100),
        "percent": pct(37.5, 0.05),
    }
    for d in range(4):
        idle = 0.3 if d < 2 else 0.97  # two busy disks, two mostly idle
        g[("disk", (("device", f"sd{'abcd'[d]}"),))] = {
            "read_bytes_per_sec": rate(200_000, idle, 512),
            "write_bytes_per_sec": rate(450_000, idle, 512),
            "read_ops_per_sec": rate(20, idle),
            "write_ops_per_sec": rate(40, idle),
            "busy_percent": rate(15, idle),
        }
        g[("disk", (("mount", ["/", "/home", "/var", "/boot"][d]),))] = {
            "total_bytes": const(1e12),
            "used_bytes": bytes_gauge(4e11, 4096 * 25),
            "free_bytes": bytes_gauge(6e11, 4096 * 25),
            "percent": pct(40, 0.05),
        }
    net: dict[str, Gen] = {
        "bytes_sent_per_sec": rate(300_000),
        "bytes_recv_per_sec": rate(900_000),
        "packets_sent_per_sec": rate(400),
        "packets_recv_per_sec": rate(800),
        "errin_per_sec": mostly_zero,
        "errout_per_sec": mostly_zero,
        "dropin_per_sec": mostly_zero,
        "dropout_per_sec": mostly_zero,
    }
    g[("network", ())] = dict(net)
    for i in range(4):
        if i < 2:
            g[("network", (("interface", f"eth{i}"),))] = dict(net)
        else:  # idle interfaces: a packet now and then
            g[("network", (("interface", f"eth{i}"),))] = {
                **{k: rate(2000, 0.9) for k in net if "bytes" in k},
                **{k: rate(3, 0.9) for k in net if "packets" in k},
                **{k: mostly_zero for k in net if "err" in k or "drop" in k},
            }
    g[("processes", ())] = {
        "count": lambda r, e: float(r.randint(300, 320)),
        "threads": lambda r, e: float(r.randint(1400, 1500)),
    }
    return g


def tick(r: random.Random, gens: dict[tuple[str, Labels], dict[str, Gen]], ts: float) -> Snapshot:
    elapsed = 1.0 + r.gauss(0, 0.0005)
    by_metric: dict[str, list[Sample]] = {}
    for (metric, labels), fields in gens.items():
        out = by_metric.setdefault(metric, [])
        for name, gen in fields.items():
            out.append(Sample(metric, name, gen(r, elapsed), labels))
    return Snapshot(ts, {m: Collected(samples=tuple(s)) for m, s in by_metric.items()})


def bucket(r: random.Random, gen: Gen, n: int) -> Stat:
    """A plausible bucket of ``n`` ticks from 8 drawn values (drawing n is too slow)."""
    vals = [gen(r, 1.0 + r.gauss(0, 0.0005)) for _ in range(8)]
    return (math.fsum(vals) / len(vals), min(vals), max(vals), float(n))


def pctl(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def process_rows(
    r: random.Random, pids: list[tuple[int, str, str]]
) -> tuple[dict[str, object], ...]:
    rows: list[dict[str, object]] = []
    for pid, name, cmd in pids:
        rows.append(
            {
                "pid": pid,
                "name": name,
                "user": "root" if pid < 1000 else "app",
                "cpu_percent": round(r.expovariate(1 / 8.0), 1),
                "memory_percent": r.uniform(0.1, 6.0),
                "rss_bytes": r.randint(10_000, 2_000_000) * 4096,
                "status": r.choice(("running", "sleeping", "sleeping", "sleeping")),
                "threads": r.randint(1, 64),
                "create_time": 1_767_000_000.0 + pid,
                "cmdline": cmd,
            }
        )
    rows.sort(key=lambda row: -float(row["cpu_percent"]))  # type: ignore[arg-type]
    return tuple(rows)


def bench_processes(out_dir: Path, every: str, hours: float = 1.0) -> str:
    """Bytes per stored top-process table (15 rows: top 10 by CPU and by memory, merged)."""
    path = out_dir / f"bench-proc-{every}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    r = random.Random(7)
    pids = [
        (100 + 37 * i, f"proc{i}", f"/usr/bin/proc{i} --config /etc/proc{i}.conf --workers {i % 8}")
        for i in range(15)
    ]
    start = END - hours * 3600
    clock = FakeClock(start)
    store = SQLiteStore(path, RetentionConfig(processes_every=every), 1.0, clock)
    store.open()
    for i in range(int(hours * 3600)):
        ts = start + i
        clock.set_wall(ts)
        snap = Snapshot(ts, {"processes": Collected(rows=process_rows(r, pids))})
        store.write(snap)
        store.maintain(ts + 0.5)
    store.maintain(END + 3600)
    while store.maintenance_backlog:
        store.maintain(END + 3600)
    conn = store._writer_conn()
    tables = conn.execute("SELECT count(*) FROM proc_hot").fetchone()[0]
    chunk_bytes = conn.execute("SELECT coalesce(sum(length(data)), 0) FROM proc_chunk").fetchone()[
        0
    ]
    stored = int(
        hours * 3600 / max(1.0, RetentionConfig(processes_every=every).processes_every_seconds)
    )
    store.close()
    per_table = chunk_bytes / stored
    per_day = (
        per_table
        * 86_400
        / max(1.0, RetentionConfig(processes_every=every).processes_every_seconds)
    )
    return f"| {every} | {stored} | {per_table:,.0f} | {per_day / 1e6:.1f} |" + (
        "" if tables == 0 else f" ({tables} still hot)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days-raw", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=None, help="directory for the db file")
    ap.add_argument("--processes", action="store_true", help="only measure process-history size")
    args = ap.parse_args()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="sysmon-bench-"))
    if args.processes:
        print("| processes_every | tables stored (1 h) | bytes/table | MB per day |")
        print("|---|---:|---:|---:|")
        for every in ("10s", "0s"):
            print(bench_processes(out_dir, every), flush=True)
        return
    path = out_dir / "bench.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    r = random.Random(42)
    gens = host()
    per_tick = sum(len(f) for f in gens.values())
    raw_start = END - args.days_raw * DAY
    clock = FakeClock(raw_start)
    store = SQLiteStore(path, RetentionConfig(), 1.0, clock)
    store.open()
    print(f"db: {path}\nvalues per tick: {per_tick} in {len(gens)} series groups")

    # Phase 1: old rollup history, imported as the rollup would write it.
    t_import = time.perf_counter()
    plan = [
        ("1h", 3600.0, END - 365 * DAY, END - 30 * DAY, 3600),
        ("5m", 300.0, END - 30 * DAY, END - 7 * DAY, 300),
        ("1m", 60.0, END - 7 * DAY, raw_start, 60),
    ]
    for res, step, start, stop, n in plan:
        t = start
        while t < stop:
            batch = []
            for _ in range(288):
                if t >= stop:
                    break
                for (metric, labels), fields in gens.items():
                    stats = {name: bucket(r, gen, n) for name, gen in fields.items()}
                    batch.append((metric, labels, t, stats))
                t += step
            store.import_buckets(res, batch)
    import_s = time.perf_counter() - t_import
    t_catch = time.perf_counter()
    calls = 0
    store.maintain(raw_start)
    while store.maintenance_backlog:
        store.maintain(raw_start)
        calls += 1
    catch_s = time.perf_counter() - t_catch
    print(
        f"imported old tiers in {import_s:.1f}s; compaction+rollup catch-up {catch_s:.1f}s "
        f"over {calls} maintain calls"
    )

    # Phase 2: raw ticks with maintain after each, like the collection loop.
    write_ms: list[float] = []
    maint_ms: list[float] = []
    ticks = int(args.days_raw * DAY)
    t_raw = time.perf_counter()
    for i in range(ticks):
        ts = raw_start + i
        clock.set_wall(ts)
        snap = tick(r, gens, ts)
        a = time.thread_time()
        store.write(snap)
        b = time.thread_time()
        store.maintain(ts + 0.5)
        c = time.thread_time()
        write_ms.append((b - a) * 1e3)
        maint_ms.append((c - b) * 1e3)
        if i % 21600 == 0:
            print(f"  raw tick {i}/{ticks}", flush=True)
    clock.set_wall(END)
    store.maintain(END)
    while store.maintenance_backlog:
        store.maintain(END)
    raw_s = time.perf_counter() - t_raw
    print(f"raw day written in {raw_s:.0f}s")

    # Sizes.
    conn = store._writer_conn()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    st = store.stats()
    size = st.size_bytes or 0
    nvals = {
        "raw": per_tick * ticks,
        "1m": per_tick * 7 * 1440,
        "5m": per_tick * 30 * 288,
        "1h": per_tick * 365 * 24,
    }
    codes = {"raw": 0, "1m": 1, "5m": 2, "1h": 3}
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    tier_rows = []
    total_payload = 0
    for name, code in codes.items():
        payload = (
            conn.execute(
                "SELECT coalesce(sum(length(data)), 0) + 24 * count(*) FROM chunk WHERE tier = ?",
                (code,),
            ).fetchone()[0]
            + conn.execute(
                "SELECT coalesce(sum(length(data)), 0) + 20 * count(*) FROM hot WHERE tier = ?",
                (code,),
            ).fetchone()[0]
        )
        total_payload += payload
        tier_rows.append((name, nvals[name], payload))
    try:
        pages = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    except sqlite3.Error:
        pages = {}
    proc = pages.get("proc_hot", 0) + pages.get("proc_chunk", 0)

    # Phase 3: queries.
    targets = [
        ("cpu", ()),
        ("cpu", (("core", "3"),)),
        ("memory", ()),
        ("disk", (("device", "sda"),)),
        ("network", (("interface", "eth0"),)),
        ("disk", (("mount", "/"),)),
    ]
    ranges = [
        ("5 min", 300.0),
        ("1 h", 3600.0),
        ("24 h", DAY),
        ("7 d", 7 * DAY),
        ("30 d", 30 * DAY),
        ("1 y", 365 * DAY),
    ]
    qres = []
    for label, seconds in ranges:
        lat: list[float] = []
        used = ""
        points = 0
        for rep in range(60):
            metric, labels = targets[rep % len(targets)]
            end = END - r.uniform(0, 600)
            q = RangeQuery(metric, end - seconds, end, labels=labels)
            a = time.perf_counter()
            res = store.query(q)
            lat.append((time.perf_counter() - a) * 1e3)
            used = f"{res.resolution} step {res.step_seconds:g}s"
            points = len(res.timestamps)
        qres.append((label, used, points, statistics.median(lat), pctl(lat, 0.99)))
    store.close()

    lines = [
        f"values per tick: {per_tick} (25 series groups); page size {page} B",
        "",
        "| tier | values kept | payload bytes | bytes/value |",
        "|---|---:|---:|---:|",
    ]
    for name, nv, payload in tier_rows:
        lines.append(f"| {name} | {nv:,} | {payload:,} | {payload / nv:.2f} |")
    lines += [
        f"| all tiers | {sum(v for _, v, _ in tier_rows):,} | {total_payload:,} | "
        f"{total_payload / sum(v for _, v, _ in tier_rows):.2f} |",
        "",
        f"total file size: {size / 1e6:.1f} MB ({size:,} bytes; process tables: {proc / 1e6:.1f} MB"
        " - none in this run)",
        "",
        "| cost per tick (CPU ms) | median | p99 | max |",
        "|---|---:|---:|---:|",
        f"| write | {statistics.median(write_ms):.3f} | {pctl(write_ms, 0.99):.3f} "
        f"| {max(write_ms):.3f} |",
        "| maintain (rollups, compaction, retention, checkpoint) "
        f"| {statistics.median(maint_ms):.3f} | {pctl(maint_ms, 0.99):.3f} | {max(maint_ms):.3f} |",
        "",
        f"maintain total over the raw day: {sum(maint_ms) / 1e3:.1f} s CPU "
        f"({sum(maint_ms) / ticks:.3f} ms per tick on average)",
        "",
        "| range (auto) | answered from | points | p50 ms | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for label, used, points, p50, p99 in qres:
        lines.append(f"| {label} | {used} | {points} | {p50:.2f} | {p99:.2f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
