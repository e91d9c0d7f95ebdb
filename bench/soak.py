"""Soak test: the real service for ``--minutes`` at a 1 s interval under a steady API load.

Why: leaks show up only over time. A per-tick leak of a few KiB, a file descriptor not
closed per request, or a thread started per query is invisible in a 60 s benchmark but
obvious after 30 minutes. So this runs the service as users do (``python -m app serve``)
with a bounded mixed load (``--rate`` requests/s over current, range and process
queries) and samples the process tree once a minute:

* RSS of the tree (``bench/proctree.py``), open file descriptors (``/proc/PID/fd``),
  threads (``/proc/PID/status``), database size (main file + WAL + SHM);
* health (``pending_writes``) and request errors per minute.

Verdict: RSS is compared between the first and second half of the run (after warm-up):
growth beyond ``--rss-tolerance-mib`` is suspicious. File descriptors and threads must
stay within a small band. The database grows by design (the raw tier keeps a day, so
nothing expires in a 30 minute run); it is judged by bytes per stored tick, which must
not rise over the run. Finally every elapsed second must have a stored tick.

Results go to ``bench/results/soak-<stamp>.{jsonl,md}`` (git-ignored); the markdown
table is what bench/compare_results.md quotes.

    nohup .venv/bin/python -m bench.soak --minutes 30 > bench/results/soak.log 2>&1 &
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench.proctree import sample_tree
from tests.support.process import free_port, spawn_service, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass
class Minute:
    minute: int
    elapsed_s: float
    rss_mib: float
    fds: int
    threads: int
    db_bytes: int
    pending_writes: int
    status: str
    requests: int
    errors: int
    p99_ms: float
    load1: float = 0.0
    db_fds: int = 0


@dataclass
class LoadStats:
    requests: int = 0
    errors: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def db_fd_count(pid: int, db: Path) -> int:
    """Descriptors on the database files only. The total also holds the collectors'
    cached ``/proc/<pid>/stat`` descriptors, which follow the host's process count."""
    names = {f"{db}{suffix}" for suffix in ("", "-wal", "-shm")}
    count = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                count += os.readlink(f"/proc/{pid}/fd/{fd}") in names
            except OSError:
                continue
    except OSError:
        return -1
    return count


def thread_count(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def db_bytes(db: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{db}{suffix}")
        if p.exists():
            total += p.stat().st_size
    return total


def request_mix(base: str, now: float) -> list[tuple[str, str]]:
    """The URLs one load cycle draws from (weights by repetition)."""
    end = f"{now:.0f}"
    return [
        ("current", f"{base}/api/v1/metrics/current"),
        ("current", f"{base}/api/v1/metrics/current"),
        ("current", f"{base}/api/v1/metrics/current"),
        ("range_cpu_1h", f"{base}/api/v1/metrics/cpu?start={now - 3600:.0f}&end={end}"),
        ("range_mem_5m_raw", f"{base}/api/v1/metrics/memory?start={now - 300:.0f}&resolution=raw"),
        ("range_net_1h_max", f"{base}/api/v1/metrics/network?start={now - 3600:.0f}&agg=max"),
        ("processes_cpu", f"{base}/api/v1/metrics/processes?limit=10&sort=cpu"),
        ("processes_mem", f"{base}/api/v1/metrics/processes?limit=25&sort=memory"),
        ("processes_at", f"{base}/api/v1/metrics/processes?at={now - 30:.0f}"),
        ("health", f"{base}/api/v1/health"),
    ]


async def generate_load(base: str, rate: float, stop: asyncio.Event, stats: LoadStats) -> None:
    """Open-loop load at ``rate`` requests/s: a request is started on schedule, not after
    the previous answer, so a slow server shows up as latency, not as a lower rate."""
    rng = random.Random(6)
    period = 1.0 / rate
    in_flight: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(timeout=10) as client:

        async def one(kind: str, url: str) -> None:
            t0 = time.perf_counter()
            try:
                r = await client.get(url)
                ok = r.status_code == 200 or (kind == "processes_at" and r.status_code == 404)
                if not ok:
                    stats.errors += 1
                    if len(stats.error_samples) < 20:
                        stats.error_samples.append(f"{kind} {r.status_code} {r.text[:200]}")
            except httpx.HTTPError as exc:
                stats.errors += 1
                if len(stats.error_samples) < 20:
                    stats.error_samples.append(f"{kind} {type(exc).__name__}: {exc}")
            stats.requests += 1
            stats.by_kind[kind] = stats.by_kind.get(kind, 0) + 1
            stats.latencies_ms.append((time.perf_counter() - t0) * 1000)

        next_at = time.monotonic()
        while not stop.is_set():
            kind, url = rng.choice(request_mix(base, time.time()))
            task = asyncio.create_task(one(kind, url))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            next_at += period
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if in_flight:
            await asyncio.gather(*in_flight)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def sample_loop(
    pid: int,
    db: Path,
    base: str,
    minutes: int,
    every: float,
    stats: LoadStats,
    out: Path,
) -> list[Minute]:
    rows: list[Minute] = []
    t0 = time.monotonic()
    seen_requests = seen_errors = 0
    async with httpx.AsyncClient(timeout=10) as client:
        for m in range(minutes + 1):
            target = t0 + m * every
            await asyncio.sleep(max(0.0, target - time.monotonic()))
            health = (await client.get(f"{base}/api/v1/health")).json()
            tree = sample_tree(pid)
            lat = stats.latencies_ms
            window = lat[seen_requests:]
            row = Minute(
                minute=m,
                elapsed_s=round(time.monotonic() - t0, 1),
                rss_mib=round(tree.rss_bytes / 2**20, 2),
                fds=fd_count(pid),
                threads=thread_count(pid),
                db_bytes=db_bytes(db),
                pending_writes=int(health["database"]["pending_writes"]),
                status=str(health["status"]),
                requests=stats.requests - seen_requests,
                errors=stats.errors - seen_errors,
                p99_ms=round(percentile(window, 0.99), 1),
                load1=os.getloadavg()[0],
                db_fds=db_fd_count(pid, db),
            )
            seen_requests, seen_errors = stats.requests, stats.errors
            rows.append(row)
            with out.open("a") as fh:
                fh.write(json.dumps(asdict(row)) + "\n")
            sys.stderr.write(f"soak {json.dumps(asdict(row))}\n")
    return rows


def stored_ticks(base: str, start: float, end: float) -> tuple[int, int]:
    """(ticks stored, slots in [start, end]) from the raw tier of ``cpu``."""
    r = httpx.get(
        f"{base}/api/v1/metrics/cpu",
        params={
            "start": f"{start:.0f}",
            "end": f"{end:.0f}",
            "resolution": "raw",
            "max_points": 10_000,
        },
        timeout=30,
    )
    r.raise_for_status()
    body = r.json()
    values = body["fields"].get("load_1") or body["fields"].get("percent") or []
    return sum(v is not None for v in values), len(body["timestamps"])


def verdict(rows: list[Minute], rss_tolerance_mib: float, ticks: tuple[int, int]) -> list[str]:
    """Human-readable findings; each line starts with OK or SUSPICIOUS."""
    out: list[str] = []
    steady = rows[1:] if len(rows) > 2 else rows  # minute 0 is warm-up
    half = len(steady) // 2
    first, second = steady[: max(1, half)], steady[max(1, half) :] or steady[-1:]
    rss_a = max(r.rss_mib for r in first)
    rss_b = max(r.rss_mib for r in second)
    growth = rss_b - rss_a
    tag = "OK" if growth <= rss_tolerance_mib else "SUSPICIOUS"
    out.append(
        f"{tag}: RSS max {rss_a:.1f} MiB in the first half, {rss_b:.1f} MiB in the second "
        f"(growth {growth:+.1f} MiB; tolerance {rss_tolerance_mib:g} MiB)"
    )
    # Worker threads come and go with the load (anyio's pool, up to 40), and each may
    # hold a descriptor or two, so a spread alone proves nothing. A leak is a trend: the
    # second half reaching clearly above everything the first half needed.
    for name, attr, band in (
        ("open fds", "fds", 8),
        ("database fds", "db_fds", 4),
        ("threads", "threads", 6),
    ):
        a = max(getattr(r, attr) for r in first)
        b = max(getattr(r, attr) for r in second)
        end = getattr(steady[-1], attr)
        tag = "OK" if b <= a + band else "SUSPICIOUS"
        out.append(
            f"{tag}: {name} max {a} in the first half, {b} in the second, {end} at the end "
            f"(band {band})"
        )
    if len(steady) >= 3:
        per_min = [b.db_bytes - a.db_bytes for a, b in itertools.pairwise(steady)]
        h = len(per_min) // 2
        early = sum(per_min[:h]) / max(1, h)
        late = sum(per_min[h:]) / max(1, len(per_min) - h)
        tag = "OK" if late <= max(early * 1.5, 64 * 1024) else "SUSPICIOUS"
        out.append(
            f"{tag}: database grows {early / 1024:.0f} KiB/min early, {late / 1024:.0f} KiB/min "
            f"late (raw tier keeps 1 d, so linear growth is expected; it must not accelerate)"
        )
    stored, slots = ticks
    missed = slots - stored
    tag = "OK" if missed <= 2 else "SUSPICIOUS"
    out.append(f"{tag}: {stored} ticks stored for {slots} one-second slots ({missed} missing)")
    errors = sum(r.errors for r in rows)
    out.append(f"{'OK' if errors == 0 else 'SUSPICIOUS'}: {errors} request errors")
    pending = max(r.pending_writes for r in rows)
    out.append(f"{'OK' if pending == 0 else 'SUSPICIOUS'}: max pending writes {pending}")
    return out


def markdown(rows: list[Minute], findings: list[str], header: dict[str, object]) -> str:
    lines = [
        f"Soak: {header['minutes']} min, interval 1 s, load {header['rate']} req/s "
        f"(mixed current/range/processes/health), {header['cores']} cores.",
        f"Command: `{header['command']}`",
        "",
        "| min | RSS MiB | fds (DB) | threads | DB KiB | pending | status | req | err "
        "| p99 ms | host load |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.minute} | {r.rss_mib:.1f} | {r.fds} ({r.db_fds}) | {r.threads} "
            f"| {r.db_bytes // 1024} "
            f"| {r.pending_writes} | {r.status} | {r.requests} | {r.errors} | {r.p99_ms} "
            f"| {r.load1:.1f} |"
        )
    lines += ["", "Verdict:", ""] + [f"- {f}" for f in findings]
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out_jsonl = Path(args.out or RESULTS / f"soak-{stamp}.jsonl")
    out_md = out_jsonl.with_suffix(".md")
    tmp = Path(tempfile.mkdtemp(prefix="sysmon-soak-"))
    db = tmp / "sysmon.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp / "service.log").open("wb")
    proc = spawn_service(db, port, log)
    stats = LoadStats()
    try:
        await asyncio.to_thread(wait_healthy, base)
        # A few ticks first: rates (network, disk) appear from the second tick on, and a
        # range query for a metric with nothing stored yet is a 422, not a server fault.
        await asyncio.sleep(args.warmup)
        started_wall = time.time()
        stop = asyncio.Event()
        load = asyncio.create_task(generate_load(base, args.rate, stop, stats))
        rows = await sample_loop(proc.pid, db, base, args.minutes, args.every, stats, out_jsonl)
        stop.set()
        await load
        ended_wall = time.time()
        # Leave 2 s at each end: the first tick may land after start, the last write
        # may still be in flight.
        ticks = await asyncio.to_thread(stored_ticks, base, started_wall + 2, ended_wall - 2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    findings = verdict(rows, args.rss_tolerance_mib, ticks)
    header: dict[str, object] = {
        "minutes": args.minutes,
        "rate": args.rate,
        "cores": os.cpu_count(),
        "command": " ".join([".venv/bin/python -m bench.soak", *sys.argv[1:]]),
    }
    text = markdown(rows, findings, header)
    if stats.error_samples:
        text += "\nError samples:\n\n" + "\n".join(f"- `{e}`" for e in stats.error_samples)
    service_log = (tmp / "service.log").read_text(errors="replace")
    skipped = service_log.count("maximum number of running instances")
    missed = service_log.count("was missed by")
    text += (
        f"\nScheduler: {skipped} ticks skipped because the previous one was still running, "
        f"{missed} runs missed (APScheduler warnings in the service log).\n"
    )
    text += f"\nRequests by kind: {json.dumps(stats.by_kind, sort_keys=True)}\n"
    text += f"Service log: {tmp / 'service.log'}\n"
    out_md.write_text(text)
    sys.stdout.write(text)
    return 0 if all(f.startswith("OK") for f in findings) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before load")
    parser.add_argument("--rss-tolerance-mib", type=float, default=8.0)
    parser.add_argument("--out", default=None, help="jsonl path (markdown next to it)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
