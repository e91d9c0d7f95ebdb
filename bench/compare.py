"""Issue 6: sysmon against Glances 4.x and Prometheus node_exporter on this machine.

The three run one after another (never at once, so they do not steal each other's CPU),
each bound to 127.0.0.1 only:

* sysmon: ``python -m app serve --port P`` (1 s interval, fresh database in a temp dir);
* Glances: ``glances -w --disable-webui -B 127.0.0.1 -p P -t 1`` from its own virtualenv
  (``--glances``, default /tmp/glances-venv/bin/glances; create it with
  ``python3 -m venv /tmp/glances-venv && /tmp/glances-venv/bin/pip install 'glances[web]>=4,<5'``);
* node_exporter: Debian's ``prometheus-node-exporter`` binary run directly with
  ``--web.listen-address=127.0.0.1:P``.

Fairness: Glances' REST server and node_exporter only collect when asked (Glances
refreshes on a request at most every ``-t`` seconds; node_exporter on every scrape),
while sysmon collects on its own schedule. So during the idle window every target gets
one GET of its "current state" endpoint per second from a small poller thread in *this*
process; only the target's process tree is measured, never the poller's.

Per target: start, wait until the endpoint answers 200, warm up ``--warmup`` s (poller
on), then measure ``--window`` s: CPU % of one core (utime+stime of the whole tree from
/proc over the window) and RSS of the tree (max and end). Then ``--load`` s of
``--connections`` concurrent connections on the same endpoint (wrk when installed):
requests/s, p50, p99, errors, and the tree's CPU during the load.

    .venv/bin/python -m bench.compare [--window 60] [--warmup 15] [--load 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.loadgen import load
from bench.proctree import sample_tree
from sysmon import __version__
from tests.support.process import free_port, service_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass
class Target:
    name: str
    version: str
    argv: list[str]
    path: str
    env: dict[str, str] | None = None
    cwd: Path | None = None


@dataclass
class Measured:
    name: str
    version: str
    endpoint: str
    body_bytes: int
    window_s: float
    cpu_percent: float
    rss_mib_max: float
    rss_mib_end: float
    processes: int
    poll_errors: int
    rps: float
    p50_ms: float
    p99_ms: float
    load_errors: int
    load_requests: int
    load_cpu_percent: float
    load_tool: str


class Poller:
    """One GET per second against ``url`` (a dashboard or a Prometheus server would)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.errors = 0
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                try:
                    if client.get(self.url).status_code != 200:
                        self.errors += 1
                except httpx.HTTPError:
                    self.errors += 1
                self.count += 1
                next_at += 1.0
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _version(argv: list[str], pick: Callable[[str], str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return pick(out.stdout + out.stderr)
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def wait_ok(url: str, timeout: float = 60.0) -> int:
    """Wait until ``url`` answers 200 (after a first collection); return the body size."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code == 200:
                return len(r.content)
            last = r.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready: {last}")


def measure(t: Target, args: argparse.Namespace, log_dir: Path) -> Measured:
    log = (log_dir / f"{t.name}.log").open("wb")
    proc = subprocess.Popen(
        t.argv, env=t.env, cwd=t.cwd, stdout=log, stderr=subprocess.STDOUT
    )  # each target in its own process; only its tree is measured
    url = t.path
    try:
        body = wait_ok(url)
        with Poller(url) as poller:
            time.sleep(args.warmup)
            start = sample_tree(proc.pid)
            rss_max = start.rss_bytes
            w0 = time.monotonic()
            while (left := args.window - (time.monotonic() - w0)) > 0:
                time.sleep(min(5.0, left))
                rss_max = max(rss_max, sample_tree(proc.pid).rss_bytes)
            end = sample_tree(proc.pid)
            wall = time.monotonic() - w0
        body = max(body, len(httpx.get(url, timeout=5).content))
        l0 = sample_tree(proc.pid)
        lt0 = time.monotonic()
        res = load(url, args.connections, args.load)
        l1 = sample_tree(proc.pid)
        lwall = time.monotonic() - lt0
        if proc.poll() is not None:
            raise RuntimeError(f"{t.name} exited with {proc.returncode} during the run")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    return Measured(
        name=t.name,
        version=t.version,
        endpoint=url.split(":", 2)[2].split("/", 1)[1],
        body_bytes=body,
        window_s=round(wall, 1),
        cpu_percent=round((end.cpu_seconds - start.cpu_seconds) / wall * 100, 2),
        rss_mib_max=round(rss_max / 2**20, 1),
        rss_mib_end=round(end.rss_bytes / 2**20, 1),
        processes=end.pids,
        poll_errors=poller.errors,
        rps=round(res.rps, 1),
        p50_ms=round(res.p50_ms, 2),
        p99_ms=round(res.p99_ms, 2),
        load_errors=res.errors,
        load_requests=res.requests,
        load_cpu_percent=round((l1.cpu_seconds - l0.cpu_seconds) / lwall * 100, 1),
        load_tool=res.tool,
    )


def targets(args: argparse.Namespace, tmp: Path) -> list[Target]:
    out: list[Target] = []
    wanted = set(args.only.split(",")) if args.only else {"sysmon", "glances", "node_exporter"}
    if "sysmon" in wanted:
        port = free_port()
        out.append(
            Target(
                "sysmon",
                __version__,
                [sys.executable, "-m", "sysmon", "serve", "--port", str(port)],
                f"http://127.0.0.1:{port}/api/v1/metrics/current",
                env=service_env(tmp / "sysmon.db"),
                cwd=ROOT,
            )
        )
    if "glances" in wanted:
        glances = args.glances
        if not Path(glances).exists():
            raise SystemExit(f"{glances} missing: see the module docstring to install Glances")
        port = free_port()
        version = _version([glances, "--version"], lambda s: s.split()[2])
        out.append(
            Target(
                "Glances",
                version,
                [
                    glances,
                    "-w",
                    "--disable-webui",
                    "--disable-autodiscover",
                    "--disable-check-update",
                    "-B",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-t",
                    "1",
                ],
                f"http://127.0.0.1:{port}/api/4/all",
                cwd=tmp,
            )
        )
    if "node_exporter" in wanted:
        binary = shutil.which(args.node_exporter) or args.node_exporter
        if not Path(binary).exists():
            raise SystemExit("apt-get install prometheus-node-exporter (benchmark only)")
        version = _version([binary, "--version"], lambda s: s.split()[2])
        # node_exporter answers 503 beyond --web.max-requests (default 40) concurrent
        # scrapes; measured as shipped and with the limit off, to see its throughput.
        for label, extra in (
            ("node_exporter", []),
            ("node_exporter max-requests=0", ["--web.max-requests=0"]),
        ):
            port = free_port()
            out.append(
                Target(
                    label,
                    version,
                    [binary, f"--web.listen-address=127.0.0.1:{port}", *extra],
                    f"http://127.0.0.1:{port}/metrics",
                    cwd=tmp,
                )
            )
    return out


def markdown(rows: list[Measured], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"Window {args.window} s per target after a {args.warmup} s warm-up, each polled once "
        f"a second; then {args.load} s at {args.connections} connections "
        f"({rows[0].load_tool if rows else '-'}). {os.cpu_count()} cores, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Command: `{command}`",
        "",
        "| target | version | endpoint | body KiB | CPU % of one core (idle, 1 Hz poll) "
        "| RSS MiB (max / end) | procs | req/s @100 | p50 ms | p99 ms | errors "
        "| CPU % under load |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.version} | /{r.endpoint} | {r.body_bytes / 1024:.1f} "
            f"| {r.cpu_percent:.2f} | {r.rss_mib_max:.1f} / {r.rss_mib_end:.1f} | {r.processes} "
            f"| {r.rps:.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.load_errors + r.poll_errors} | {r.load_cpu_percent:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=60, help="idle measurement seconds")
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--load", type=int, default=20, help="seconds under load")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--glances", default="/tmp/glances-venv/bin/glances")
    parser.add_argument("--node-exporter", default="prometheus-node-exporter")
    parser.add_argument("--only", default="", help="comma list: sysmon,glances,node_exporter")
    parser.add_argument("--out", default=str(RESULTS / "compare"))
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="sysmon-compare-"))
    rows: list[Measured] = []
    for t in targets(args, tmp):
        sys.stderr.write(f"measuring {t.name} {t.version} ...\n")
        rows.append(measure(t, args, tmp))
        sys.stderr.write(json.dumps(asdict(rows[-1])) + "\n")
    command = " ".join([".venv/bin/python -m bench.compare", *sys.argv[1:]])
    text = markdown(rows, args, command)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    out.with_suffix(".md").write_text(text)
    sys.stdout.write(text)
    sys.stdout.write(f"logs: {tmp}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
