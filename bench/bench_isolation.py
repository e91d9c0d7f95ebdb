"""Issue 9: the agent and the server apart, beside node_exporter, netdata, Glances and
VictoriaMetrics on this machine, one target at a time.

Every target is started by this script, measured alone, and stopped before the next one
starts (never two at once), all bound to 127.0.0.1. The phases run in this order:

1. ``idle``: each monitor with its default collectors (sysmon at a 1 s interval, one
   server worker), its "current state" endpoint polled once a second from this process
   (as ``bench.compare`` does: node_exporter and Glances only collect when asked). After
   ``--warmup`` s, ``--window`` s of CPU (utime+stime from /proc of the whole process tree,
   plus the CPU of reaped children; for sysmon also the agent process alone) and the
   tree's PSS (/proc/<pid>/smaps_rollup) at the end. For sysmon, ``/api/v1/health`` is
   read five times after the window: tick lateness (actual - scheduled start; p50, p99,
   max over the agent's ticks so far) and each collector's ``last_duration_ms``.
2. ``procs``: the same with ``--extra-procs`` idle ``sleep`` children of this script on
   the machine (killed at the end of the phase).
   The machine is shared: before each window of phases 1 and 2 the script waits (up to
   ``--quiet-wait`` s) until at most ``--quiet-procs`` processes run on it (plus
   ``--extra-procs`` in phase 2), and measures a window again (up to ``--retries``
   times) when the count left that bound or moved by more than ``--noise-procs``:
   someone else's burst of processes is exactly the load the processes collector scales
   with. Discarded windows are listed in the results.
3. ``jitter``: a fresh sysmon; wrk at ``--connections`` hammers
   ``/api/v1/metrics/current`` for ``--window`` s; health is read while wrk still runs, so
   nearly every tick in its lateness figures started under load. CPU of the agent and the
   server meanwhile.
4. ``throughput``: sysmon with ``server.workers`` 1 and 2 on a database prefilled with
   ``--prefill`` s of ticks (``bench.bench_service.prefill``: one real snapshot replayed at
   1 s steps); wrk, ``--load`` s x ``--repeat``, on ``/api/v1/metrics/current`` and on 60 s
   raw range queries of ``cpu`` where every request is a new URL (a wrk Lua script picks
   the end at random, in ms, between now-``RANGE_LAG`` s and 10 min ago, and adds a
   per-thread counter), so no answer can come from sysmon's response cache. Those windows
   lie in the server's live head (the newest 900 s, in memory, backfilled from the store
   at start): a third run asks windows 16-25 min old (``STORE_LAG``), which only the
   SQLite store holds, so both of sysmon's paths are measured. Then
   VictoriaMetrics (``victoria-metrics``, temp ``-storageDataPath``) with the same fields
   imported through ``/api/v1/import/prometheus`` for the last ``--prefill`` s, queried
   the same way with ``/api/v1/query_range`` (60 s, ``step=1s``, ``nocache=1``): one series,
   and also all 12 series of sysmon's ``cpu`` answer.

    .venv/bin/python -m bench.bench_isolation [--window 60] [--warmup 15] [--load 20]
        [--repeat 3] [--extra-procs 1000] [--phases idle,procs,jitter,throughput]
        [--only sysmon,node_exporter,netdata,glances,victoriametrics]

Needs (benchmark only, not project requirements): ``apt-get install -y wrk
prometheus-node-exporter victoria-metrics netdata`` and Glances in its own virtualenv
(``python3 -m venv /tmp/glances-venv && /tmp/glances-venv/bin/pip install
'glances[web]>=4,<5'``). A missing tool skips its target with the reason in the results.
Results: ``bench/results/isolation.{json,md}`` (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.bench_service import prefill
from bench.compare import Poller, wait_ok
from bench.loadgen import LoadResult, run_wrk
from bench.proctree import cpu_seconds, pss_bytes, rss_bytes, tree
from sysmon import __version__
from tests.support.process import free_port, service_env

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MIB = 2**20
ALL_TARGETS = ("sysmon", "node_exporter", "netdata", "glances", "victoriametrics")
ALL_PHASES = ("idle", "procs", "jitter", "throughput")

FAILURES = (
    OSError,
    RuntimeError,
    KeyError,
    ValueError,
    httpx.HTTPError,
    subprocess.SubprocessError,
)
"""What ends one target's measurement (reported as not measured) but not the run."""

RANGE_LAG = 40
"""Newest range end, seconds before now: VictoriaMetrics hides the last 30 s by default
(``-search.latencyOffset``), so both stay clear of it."""
RANGE_SPAN = 500
"""Range ends are spread over this many seconds: starts stay within the last 10 min."""

RANGE_LUA = """
-- Every request a new URL: a 60 s range ending at a random instant (ms precision)
-- between now - @LAG@ - @SPAN@ s and now - @LAG@ s, plus a per-thread counter.
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
  count = 0
end
function request()
  count = count + 1
  local t = os.time() - @LAG@ - math.random(0, @SPAN_MS@) / 1000
  return wrk.format("GET", string.format("@FMT@", t - 60, t, @TAIL@))
end
"""

SYSMON_RANGE = "/api/v1/metrics/cpu?resolution=raw"
VM_ONE = "/api/v1/query_range?query=sysmon_cpu_percent&step=1s&nocache=1"
VM_WIDE = "/api/v1/query_range?query=%7Bjob%3D%22sysmon%22%7D&step=1s&nocache=1"
"""``{job="sysmon"}``: the 12 fields of sysmon's cpu answer, one series each."""


STORE_LAG = 960
"""Newest range end of the store-path run, seconds before now: older than the server's
live head (``api.live_window_seconds``, 900 s), so every answer is a SQLite read."""


def range_lua(prefix: str, sysmon: bool = False, lag: int = RANGE_LAG) -> str:
    """sysmon refuses unknown query parameters (422), so its counter goes into
    ``max_points`` (100-9,999: far above the 61 points a 60 s range has, so it changes
    nothing but the URL); VictoriaMetrics ignores an extra ``n``."""
    if sysmon:
        fmt = prefix.replace("%", "%%") + "&start=%.3f&end=%.3f&max_points=%d"
        tail = "100 + (tid * 4950 + count) % 9900"
    else:
        fmt = prefix.replace("%", "%%") + "&start=%.3f&end=%.3f&n=%d-%d"
        tail = "tid, count"
    return (
        RANGE_LUA.replace("@TAIL@", tail)
        .replace("@LAG@", str(lag))
        .replace("@SPAN_MS@", str(RANGE_SPAN * 1000))
        .replace("@SPAN@", str(RANGE_SPAN))
        .replace("@FMT@", fmt)
    )


def range_url(base: str, prefix: str, end: float) -> str:
    return f"{base}{prefix}&start={end - 60:.3f}&end={end:.3f}"


# The machine ------------------------------------------------------------------------------


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores from /proc/stat (busy excludes idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    total = float(sum(values))
    return total - values[3] - values[4], total


def busy_percent(start: tuple[float, float], end: tuple[float, float]) -> float:
    """Share of all cores busy (any process) between two ``machine_cpu`` readings."""
    total = end[1] - start[1]
    return round((end[0] - start[0]) / total * 100, 1) if total > 0 else 0.0


def host_processes() -> int:
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def tree_cpu(root: int) -> float:
    """CPU seconds of the live tree under ``root``, with the CPU of reaped children."""
    return sum(cpu_seconds(p, reaped=True) for p in tree(root))


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def source_state() -> str:
    """The commit measured, and how many files under app/ differ from it (others edit
    the work tree while benchmarks run)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--short", "--", "sysmon"], cwd=ROOT, capture_output=True, text=True
        ).stdout.splitlines()
    except OSError:
        return "git not available"
    return f"HEAD {head}, {len(dirty)} uncommitted files under sysmon/"


def dpkg_version(package: str) -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.stdout.strip() or "?"


# Targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    version: str
    argv: list[str]
    base: str
    path: str
    env: dict[str, str] | None = None
    cwd: Path | None = None
    sysmon: bool = False

    @property
    def url(self) -> str:
        return self.base + self.path


def rate_limits_off() -> dict[str, str]:
    """The environment that turns sysmon's per-client rate limits off, where it has them.

    A load test sends everything from one address: with the default limit (1,200 a minute
    per client and route) wrk would measure 429 answers, not the server. The idle phases
    keep the default (1 request a second is far below it)."""
    try:
        from sysmon.security.config import RateLimitConfig
    except ImportError:
        return {}
    if "enabled" not in RateLimitConfig.model_fields:
        return {}
    return {"SYSMON_SERVER__SECURITY__RATE_LIMITS__ENABLED": "false"}


def sysmon_target(tmp: Path, label: str, workers: int = 1, loaded: bool = False) -> Target:
    port = free_port()
    folder = tmp / f"sysmon-{label}"
    folder.mkdir(mode=0o700)  # the agent refuses a data directory others can read
    extra = rate_limits_off() if loaded else {}
    env = service_env(folder / "sysmon.db", SYSMON_SERVER__WORKERS=str(workers), **extra)
    return Target(
        "sysmon" if workers == 1 else f"sysmon workers={workers}",
        __version__,
        [sys.executable, "-m", "sysmon", "serve", "--port", str(port)],
        f"http://127.0.0.1:{port}",
        "/api/v1/metrics/current",
        env=env,
        cwd=ROOT,
        sysmon=True,
    )


def node_exporter_target(tmp: Path) -> Target | str:
    binary = shutil.which("prometheus-node-exporter")
    if binary is None:
        return "prometheus-node-exporter not installed"
    port = free_port()
    return Target(
        "node_exporter",
        dpkg_version("prometheus-node-exporter"),
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        f"http://127.0.0.1:{port}",
        "/metrics",
        cwd=tmp,
    )


NETDATA_CONF = """[global]
\trun as user = netdata
\tweb files owner = root
\tweb files group = root
[web]
\tbind to = 127.0.0.1:{port}
[directories]
\tconfig = /etc/netdata
\tcache = {home}/cache
\tlib = {home}/lib
\tlog = {home}/log
[logs]
\tdebug log = {home}/log/debug.log
\terror log = {home}/log/error.log
\taccess log = none
[registry]
\tenabled = no
"""


def netdata_target(tmp: Path) -> Target | str:
    binary = shutil.which("netdata")
    if binary is None:
        return "netdata not installed"
    try:
        user = pwd.getpwnam("netdata")
    except KeyError:
        return "no netdata user (the Debian package creates it)"
    port = free_port()
    home = tmp / f"netdata-{port}"
    for sub in ("cache", "lib", "log"):
        (home / sub).mkdir(parents=True, exist_ok=True)
        os.chown(home / sub, user.pw_uid, user.pw_gid)
    conf = home / "netdata.conf"
    conf.write_text(NETDATA_CONF.format(port=port, home=home))
    # Default collectors, its own database (dbengine) in a temp dir, no registry, no
    # anonymous statistics (DO_NOT_TRACK, and Debian's opt-out file).
    return Target(
        "netdata",
        dpkg_version("netdata"),
        [binary, "-D", "-c", str(conf)],
        f"http://127.0.0.1:{port}",
        "/api/v1/allmetrics?format=json",
        env={**os.environ, "DO_NOT_TRACK": "1"},
        cwd=home,
    )


def glances_target(tmp: Path, glances: str) -> Target | str:
    if not Path(glances).exists():
        return f"{glances} missing (see the module docstring)"
    port = free_port()
    out = subprocess.run([glances, "--version"], capture_output=True, text=True, timeout=60)
    words = out.stdout.split()
    return Target(
        "Glances",
        words[2] if len(words) > 2 else "?",
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
        f"http://127.0.0.1:{port}",
        "/api/4/all",
        cwd=tmp,
    )


def monitor_targets(args: argparse.Namespace, tmp: Path, phase: str) -> list[Target | str]:
    """The monitors of the idle phases, in order; a string is a skipped target's reason."""
    wanted = set(args.only)
    out: list[Target | str] = []
    if "sysmon" in wanted:
        out.append(sysmon_target(tmp, phase))
    if "node_exporter" in wanted:
        out.append(node_exporter_target(tmp))
    if "netdata" in wanted:
        out.append(netdata_target(tmp))
    if "glances" in wanted:
        out.append(glances_target(tmp, args.glances))
    return out


# Running one target -----------------------------------------------------------------------


def start(t: Target, log_dir: Path, label: str) -> subprocess.Popen[bytes]:
    with (log_dir / f"{label}-{t.name.replace(' ', '_')}.log").open("wb") as log:
        return subprocess.Popen(t.argv, env=t.env, cwd=t.cwd, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the target, wait, SIGKILL it if needed; then SIGKILL whatever of its tree
    (as seen just before) is still alive with the same command line."""
    left = {p: cmdline(p) for p in tree(proc.pid) if p != proc.pid}
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while left and time.monotonic() < deadline:
        left = {p: c for p, c in left.items() if c and cmdline(p) == c}
        if left:
            time.sleep(0.5)
    for pid in left:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def running(t: Target, log_dir: Path, label: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = start(t, log_dir, label)
    try:
        yield proc
        if proc.poll() is not None:
            raise RuntimeError(f"{t.name} exited with {proc.returncode} during the run")
    finally:
        stop(proc)


def health(base: str, timeout: float = 20) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{base}/api/v1/health", timeout=timeout).json()
    return body


def pss_by_process(root: int, agent: int | None) -> dict[str, float]:
    """PSS MiB per process of the tree, named by role for sysmon, else by command."""
    out: dict[str, float] = {}
    for pid in tree(root):
        cmd = cmdline(pid)
        if agent is not None:
            role = "supervisor" if pid == root else "agent" if pid == agent else "server"
            if "resource_tracker" in cmd:
                role = "resource tracker"
            elif "multiprocessing" in cmd:
                role = "server worker"
        else:
            role = Path(cmd.split(" ", 1)[0]).name if cmd else "?"
        name, n = role, 2
        while name in out:
            name, n = f"{role} {n}", n + 1
        out[name] = round(pss_bytes(pid) / MIB, 1)
    return out


# Phases 1 and 2: footprint at rest ---------------------------------------------------------


@dataclass
class Footprint:
    phase: str
    name: str
    version: str
    endpoint: str
    body_kib: float
    window_s: float
    cpu_percent: float
    """The whole tree: % of one core over the window."""
    cpu_10s: list[float]
    """The same per 10 s slice of the window (how steady it was)."""
    agent_cpu_percent: float | None
    agent_cpu_10s: list[float] | None
    pss_mib: float
    pss_by_process: dict[str, float]
    rss_mib_max: float
    processes: int
    poll_errors: int
    machine_busy_percent: float
    """All cores, every process on the machine (the target, other people's work, us)."""
    host_processes: str
    """Processes on the machine during the window, min-max of the 10 s samples."""
    loadavg: str
    tick_lateness_ms: dict[str, float | None] | None = None
    overruns: int | None = None
    agent_age_s: float | None = None
    collector_ms: dict[str, list[float | None]] | None = None
    """Each collector's last_duration_ms in five health reads after the window."""
    missed: dict[str, int] | None = None
    clean: bool = True
    """The machine's process count stayed within the limit during the kept window."""
    waited_for_quiet: bool = False
    """True when the machine did not get quiet within ``--quiet-wait`` before it."""
    discarded_windows: list[str] = field(default_factory=list)
    """Earlier windows of this target thrown away: the machine's process count moved by
    more than ``--noise-procs`` during them (other people's tests on the shared box)."""


def wait_quiet(limit: int, timeout: float) -> bool:
    """Wait until at most ``limit`` processes run on the machine; False on timeout."""
    deadline = time.monotonic() + timeout
    while host_processes() > limit:
        if time.monotonic() > deadline:
            return False
        time.sleep(5)
    return True


def footprint(
    t: Target, phase: str, args: argparse.Namespace, log_dir: Path, limit: int
) -> Footprint:
    """``limit``: most processes on the machine for a window to count as clean."""
    launched = time.monotonic()
    with running(t, log_dir, phase) as proc:
        body = wait_ok(t.url, timeout=120)
        agent: int | None = None
        with Poller(t.url) as poller:
            time.sleep(args.warmup)
            if t.sysmon:
                agent = int(health(t.base)["agent"]["pid"])
                if agent not in tree(proc.pid):
                    raise RuntimeError(f"agent pid {agent} is not in the tree of {proc.pid}")
            discarded: list[str] = []
            while True:
                # Other people's tests start hundreds of processes on this shared box (the
                # very load the processes collector scales with): wait for them to go,
                # and measure again a window during which they came.
                quiet = wait_quiet(limit, args.quiet_wait)
                m0, marks, hosts, rss_max, m1 = _window(proc.pid, agent, args.window)
                clean = max(hosts) <= limit and max(hosts) - min(hosts) <= args.noise_procs
                if clean or len(discarded) >= args.retries:
                    break
                discarded.append(f"{_pct(marks, 1):.2f} % ({min(hosts)}-{max(hosts)} procs)")
                sys.stderr.write(f"  {t.name}: window discarded ({min(hosts)}-{max(hosts)})\n")
            pids = tree(proc.pid)
            pss = sum(pss_bytes(p) for p in pids)
            by_process = pss_by_process(proc.pid, agent)
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        body = max(body, len(httpx.get(t.url, timeout=10).content))
        result = Footprint(
            phase=phase,
            name=t.name,
            version=t.version,
            endpoint=t.path,
            body_kib=round(body / 1024, 1),
            window_s=round(marks[-1][0] - marks[0][0], 1),
            cpu_percent=_pct(marks, 1),
            cpu_10s=[_pct(marks[i : i + 2], 1) for i in range(len(marks) - 1)],
            agent_cpu_percent=_pct(marks, 2) if agent else None,
            agent_cpu_10s=[_pct(marks[i : i + 2], 2) for i in range(len(marks) - 1)]
            if agent
            else None,
            pss_mib=round(pss / MIB, 1),
            pss_by_process=by_process,
            rss_mib_max=round(rss_max / MIB, 1),
            processes=len(pids),
            poll_errors=poller.errors,
            machine_busy_percent=busy_percent(m0, m1),
            host_processes=f"{min(hosts)}-{max(hosts)}",
            loadavg=load,
            discarded_windows=discarded,
            clean=clean,
            waited_for_quiet=not quiet,
        )
        if t.sysmon:
            durations: dict[str, list[float | None]] = {}
            last: dict[str, Any] = {}
            for _ in range(5):  # after the window: these requests are not in its CPU
                last = health(t.base)
                for name, report in last["collectors"].items():
                    durations.setdefault(name, []).append(report.get("last_duration_ms"))
                time.sleep(1)
            result.tick_lateness_ms = last["agent"]["tick_lateness_ms"]
            result.overruns = last["agent"]["overruns"]
            result.agent_age_s = round(time.monotonic() - launched, 1)
            result.collector_ms = durations
            result.missed = {n: r["missed_total"] for n, r in last["collectors"].items()}
    return result


Marks = list[tuple[float, float, float]]


def _window(
    root: int, agent: int | None, seconds: float
) -> tuple[tuple[float, float], Marks, list[int], int, tuple[float, float]]:
    """One measurement window: (machine CPU at start, marks every 10 s of (time, tree CPU,
    agent CPU), host process counts, max tree RSS, machine CPU at end)."""
    m0 = machine_cpu()
    w0 = time.monotonic()
    marks = [(w0, tree_cpu(root), _own_cpu(agent))]
    rss_max = 0
    hosts = [host_processes()]
    while (left := seconds - (time.monotonic() - w0)) > 0:
        time.sleep(min(10.0, left))
        marks.append((time.monotonic(), tree_cpu(root), _own_cpu(agent)))
        rss_max = max(rss_max, sum(rss_bytes(p) for p in tree(root)))
        hosts.append(host_processes())
    return m0, marks, hosts, rss_max, machine_cpu()


def _own_cpu(pid: int | None) -> float:
    return 0.0 if pid is None else cpu_seconds(pid)


def _pct(marks: Sequence[tuple[float, float, float]], col: int) -> float:
    wall = marks[-1][0] - marks[0][0]
    return round((marks[-1][col] - marks[0][col]) / wall * 100, 3) if wall > 0 else 0.0


@contextmanager
def idle_processes(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` ``sleep 3600`` children of this process; killed (by pid) at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(count):
            procs.append(
                subprocess.Popen(
                    ["sleep", "3600"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


# Phase 3: tick jitter under load ----------------------------------------------------------


@dataclass
class Jitter:
    name: str
    load_s: float
    agent_age_s: float
    tick_lateness_ms: dict[str, float | None]
    overruns: int
    agent_cpu_percent: float
    server_cpu_percent: float
    machine_busy_percent: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    missed: dict[str, int]


def jitter_under_load(args: argparse.Namespace, tmp: Path, log_dir: Path) -> Jitter:
    t = sysmon_target(tmp, "jitter", loaded=True)
    launched = time.monotonic()
    with running(t, log_dir, "jitter") as proc:
        wait_ok(t.url, timeout=120)
        before = health(t.base)
        agent, server = int(before["agent"]["pid"]), int(before["server"]["pid"])
        time.sleep(3)
        done: list[LoadResult] = []
        wrk = threading.Thread(
            target=lambda: done.append(
                run_wrk(t.url, args.connections, args.window + 15, timeout="10s")
            )
        )
        wrk.start()
        time.sleep(2)  # wrk connected and busy
        m0, a0, s0, w0 = machine_cpu(), cpu_seconds(agent), tree_cpu(server), time.monotonic()
        time.sleep(args.window)
        m1, a1, s1, w1 = machine_cpu(), cpu_seconds(agent), tree_cpu(server), time.monotonic()
        after = health(t.base)  # while wrk still runs: the ticks so far, nearly all loaded
        age = time.monotonic() - launched
        wrk.join()
        if proc.poll() is not None:
            raise RuntimeError("sysmon exited under load")
    res = done[0]
    return Jitter(
        name=t.name,
        load_s=round(w1 - w0 + 2, 1),
        agent_age_s=round(age, 1),
        tick_lateness_ms=after["agent"]["tick_lateness_ms"],
        overruns=after["agent"]["overruns"],
        agent_cpu_percent=round((a1 - a0) / (w1 - w0) * 100, 2),
        server_cpu_percent=round((s1 - s0) / (w1 - w0) * 100, 1),
        machine_busy_percent=busy_percent(m0, m1),
        rps=res.rps,
        p50_ms=res.p50_ms,
        p99_ms=res.p99_ms,
        errors=res.errors,
        missed={n: r["missed_total"] for n, r in after["collectors"].items()},
    )


# Phase 4: throughput ------------------------------------------------------------------------


@dataclass
class Runs:
    target: str
    query: str
    body_bytes: int
    points: int
    runs: list[dict[str, Any]]
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: int = 0

    @classmethod
    def of(cls, target: str, query: str, body: bytes, points: int, runs: list[LoadResult]) -> Runs:
        return cls(
            target,
            query,
            len(body),
            points,
            [asdict(r) for r in runs],
            rps=statistics.median(r.rps for r in runs),
            p50_ms=statistics.median(r.p50_ms for r in runs),
            p99_ms=statistics.median(r.p99_ms for r in runs),
            errors=sum(r.errors for r in runs),
        )


@dataclass
class Throughput:
    runs: list[Runs] = field(default_factory=list)
    lateness: dict[str, dict[str, Any]] = field(default_factory=dict)
    """sysmon's tick lateness after its load runs, per target."""
    pss_mib: dict[str, dict[str, float]] = field(default_factory=dict)
    head: dict[str, dict[str, Any]] = field(default_factory=dict)
    """sysmon's live head after the load runs (``/api/v1/health``'s ``live_head``)."""
    skipped: dict[str, str] = field(default_factory=dict)


def wrk_runs(args: argparse.Namespace, url: str, lua: str | None = None) -> list[LoadResult]:
    return [
        run_wrk(url, args.connections, args.load, lua=lua, timeout="10s")
        for _ in range(args.repeat)
    ]


def sysmon_throughput(
    args: argparse.Namespace, tmp: Path, log_dir: Path, workers: int, out: Throughput
) -> dict[str, list[float]]:
    """Load runs against sysmon with ``workers`` server processes; returns the cpu
    fields of the last ``--prefill`` s (to import the same into VictoriaMetrics)."""
    t = sysmon_target(tmp, f"throughput-w{workers}", workers, loaded=True)
    assert t.env is not None
    db = Path(t.env["SYSMON_DATABASE__PATH"])
    t0 = time.monotonic()
    prefill(db, args.prefill)
    sys.stderr.write(f"  prefilled {args.prefill} s in {time.monotonic() - t0:.1f} s\n")
    with running(t, log_dir, f"throughput-w{workers}") as proc:
        wait_ok(t.url, timeout=120)
        time.sleep(5)
        now = time.time()
        sample = httpx.get(range_url(t.base, SYSMON_RANGE, now - RANGE_LAG - 250.5), timeout=10)
        sample.raise_for_status()
        points = len(sample.json()["timestamps"])
        current = httpx.get(t.url, timeout=10).content
        out.runs.append(
            Runs.of(t.name, "/current", current, 1, wrk_runs(args, t.url)),
        )
        out.runs.append(
            Runs.of(
                t.name,
                "60 s raw range, new URL",
                sample.content,
                points,
                wrk_runs(args, t.base + "/", range_lua(SYSMON_RANGE, sysmon=True)),
            )
        )
        if args.prefill >= STORE_LAG + RANGE_SPAN + 60:
            old = httpx.get(range_url(t.base, SYSMON_RANGE, now - STORE_LAG - 250.5), timeout=10)
            old.raise_for_status()
            out.runs.append(
                Runs.of(
                    t.name,
                    "60 s raw range, new URL, 16-25 min ago (store)",
                    old.content,
                    len(old.json()["timestamps"]),
                    wrk_runs(
                        args, t.base + "/", range_lua(SYSMON_RANGE, sysmon=True, lag=STORE_LAG)
                    ),
                )
            )
        out.head[t.name] = health(t.base).get("live_head") or {}
        after = health(t.base)
        out.lateness[t.name] = {
            **after["agent"]["tick_lateness_ms"],
            "overruns": after["agent"]["overruns"],
        }
        out.pss_mib[t.name] = pss_by_process(proc.pid, int(after["agent"]["pid"]))
        end = time.time() - 2
        got = httpx.get(
            f"{t.base}{SYSMON_RANGE}&start={end - args.prefill:.0f}&end={end:.0f}", timeout=30
        )
        if got.status_code != 200:
            raise RuntimeError(f"sysmon range query answered {got.status_code}: {got.text}")
        doc = got.json()
    fields: dict[str, list[float | None]] = doc["fields"]
    return {name: [v for v in col if v is not None] or [0.0] for name, col in fields.items()}


def vm_import_lines(fields: dict[str, list[float]], seconds: int) -> bytes:
    """Prometheus text lines: ``fields`` cycled over the last ``seconds`` s at 1 s."""
    now = int(time.time())
    lines = []
    for i in range(seconds):
        ts_ms = (now - seconds + i) * 1000
        for name, col in fields.items():
            lines.append(f'sysmon_cpu_{name}{{job="sysmon"}} {col[i % len(col)]!r} {ts_ms}\n')
    return "".join(lines).encode()


def vm_throughput(
    args: argparse.Namespace,
    tmp: Path,
    log_dir: Path,
    fields: dict[str, list[float]],
    out: Throughput,
) -> None:
    binary = shutil.which("victoria-metrics")
    if binary is None:
        out.skipped["VictoriaMetrics"] = "victoria-metrics not installed"
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    t = Target(
        "VictoriaMetrics",
        dpkg_version("victoria-metrics"),
        [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={tmp / 'vm-data'}",
            "-loggerLevel=WARN",
        ],
        base,
        "/health",
        cwd=tmp,
    )
    with running(t, log_dir, "throughput") as _proc:
        wait_ok(t.url, timeout=60)
        r = httpx.post(
            f"{base}/api/v1/import/prometheus",
            content=vm_import_lines(fields, args.prefill),
            timeout=60,
        )
        r.raise_for_status()
        httpx.get(f"{base}/internal/force_flush", timeout=30).raise_for_status()
        time.sleep(2)
        now = time.time()
        label = f"{t.name} {t.version}"
        for query, prefix in (("60 s, 1 series, new URL", VM_ONE), ("60 s, 12 series", VM_WIDE)):
            sample = httpx.get(range_url(base, prefix, now - RANGE_LAG - 250.5), timeout=10)
            sample.raise_for_status()
            result = sample.json()["data"]["result"]
            if not result:
                raise RuntimeError(f"VictoriaMetrics returned no series for {prefix}")
            out.runs.append(
                Runs.of(
                    label,
                    query,
                    sample.content,
                    len(result[0]["values"]),
                    wrk_runs(args, base + "/", range_lua(prefix)),
                )
            )


def throughput(args: argparse.Namespace, tmp: Path, log_dir: Path) -> Throughput:
    out = Throughput()
    # Without a sysmon run to copy from: 12 constant series (sysmon's cpu has 12 fields).
    fields = {("percent" if i == 0 else f"field_{i}"): [float(i)] for i in range(12)}
    if "sysmon" in args.only:
        for workers in args.workers:
            sys.stderr.write(f"throughput: sysmon workers={workers} ...\n")
            try:
                fields = sysmon_throughput(args, tmp, log_dir, workers, out)
            except FAILURES as exc:
                out.skipped[f"sysmon workers={workers}"] = f"failed: {type(exc).__name__}: {exc}"
    if "victoriametrics" in args.only:
        sys.stderr.write("throughput: VictoriaMetrics ...\n")
        try:
            vm_throughput(args, tmp, log_dir, fields, out)
        except FAILURES as exc:
            out.skipped["VictoriaMetrics"] = f"failed: {type(exc).__name__}: {exc}"
    return out


# Report -------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(
    rows: list[Footprint],
    skipped: dict[str, str],
    jitter: Jitter | None,
    tp: Throughput | None,
    args: argparse.Namespace,
    command: str,
    started: str,
    source: str,
) -> str:
    limits = rate_limits_off()
    lines = [
        f"Run started {started}, {os.cpu_count()} cores; every target alone in turn; "
        f"sysmon from the work tree at {source}.",
        f"Command: `{command}`",
        "",
    ]
    if limits:
        lines += [f"sysmon under load (jitter, throughput) runs with {limits}.", ""]
    if rows:
        lines += [
            f"Footprint: {args.window} s window after {args.warmup} s warm-up, current-state "
            "endpoint polled once a second. CPU = % of one core (utime+stime from /proc, whole "
            "tree incl. reaped children); 10 s slices min / median / max; PSS of the tree at "
            "the window's end; machine busy = all cores, every process.",
            "",
            "| phase | target | version | endpoint | CPU % (tree) | 10 s slices | agent CPU % "
            "| PSS MiB | RSS MiB max | procs | machine busy % | host procs | poll errors |",
            "|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            sl = r.cpu_10s
            slices = f"{min(sl):.2f} / {statistics.median(sl):.2f} / {max(sl):.2f}" if sl else "-"
            lines.append(
                f"| {r.phase} | {r.name} | {r.version} | {r.endpoint} | {r.cpu_percent:.2f} "
                f"| {slices} | {_f(r.agent_cpu_percent)} | {r.pss_mib:.1f} | {r.rss_mib_max:.1f} "
                f"| {r.processes} | {r.machine_busy_percent:.0f} | {r.host_processes} "
                f"| {r.poll_errors} |"
            )
        lines.append("")
        for r in rows:
            if r.tick_lateness_ms is None:
                continue
            durations = ", ".join(
                f"{n} {'/'.join(_f(v) for v in vs)}"
                for n, vs in sorted((r.collector_ms or {}).items())
            )
            lines.append(
                f"- sysmon, {r.phase}: PSS by process {r.pss_by_process}; agent CPU per 10 s "
                f"{r.agent_cpu_10s}; tick lateness ms {r.tick_lateness_ms} over ~"
                f"{r.agent_age_s:.0f} ticks, overruns {r.overruns}, missed samples {r.missed}; "
                f"collector last_duration_ms (5 reads): {durations}"
            )
        for r in rows:
            if r.discarded_windows or not r.clean:
                kept = "kept window clean" if r.clean else "**kept window NOT clean**"
                lines.append(
                    f"- {r.name}, {r.phase}: windows with other people's processes on the "
                    f"machine, discarded: {r.discarded_windows}; {kept}"
                )
        for name, reason in skipped.items():
            lines.append(f"- not measured: {name}: {reason}")
        lines.append("")
    if jitter is not None:
        j = jitter
        lines += [
            f"Tick lateness under load: wrk -t2 -c{args.connections} on /api/v1/metrics/current "
            f"for {j.load_s:.0f} s, health read while wrk ran (agent age {j.agent_age_s:.0f} s "
            f"≈ ticks counted).",
            "",
            "| lateness p50 ms | p99 ms | max ms | overruns | agent CPU % | server CPU % "
            "| machine busy % | req/s | p50 ms | p99 ms | errors | missed samples |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            f"| {_f(j.tick_lateness_ms.get('p50'))} | {_f(j.tick_lateness_ms.get('p99'))} "
            f"| {_f(j.tick_lateness_ms.get('max'))} | {j.overruns} | {j.agent_cpu_percent:.2f} "
            f"| {j.server_cpu_percent:.0f} | {j.machine_busy_percent:.0f} | {j.rps:.0f} "
            f"| {j.p50_ms:.1f} | {j.p99_ms:.1f} | {j.errors} | {j.missed} |",
            "",
        ]
    if tp is not None:
        vm_one = next((r for r in tp.runs if r.query.startswith("60 s, 1 series")), None)
        vm_wide = next((r for r in tp.runs if r.query.startswith("60 s, 12 series")), None)
        lines += [
            f"Throughput: wrk -t2 -c{args.connections} -d{args.load}s --latency, "
            f"{args.repeat} runs each, medians (every run in the JSON). Ratio = sysmon's range "
            "query / VictoriaMetrics' 1-series query (and its req/s / the 12-series one).",
            "",
            "| target | query | body bytes | points | req/s (runs) | median req/s | p50 ms "
            "| p99 ms (runs) | median p99 ms | errors | ratio to VM |",
            "|---|---|---:|---:|---|---:|---:|---|---:|---:|---|",
        ]
        for run in tp.runs:
            ratio = "-"
            if vm_one is not None and "range" in run.query and vm_one.rps:
                ratio = (
                    f"req/s {run.rps / vm_one.rps:.2f}x"
                    + (f" ({run.rps / vm_wide.rps:.2f}x of 12 series)" if vm_wide else "")
                    + f"; p50 {run.p50_ms / vm_one.p50_ms:.1f}x; p99 "
                    f"{run.p99_ms / vm_one.p99_ms:.1f}x"
                )
            rps_runs = " / ".join(f"{x['rps']:.0f}" for x in run.runs)
            p99_runs = " / ".join(f"{x['p99_ms']:.0f}" for x in run.runs)
            lines.append(
                f"| {run.target} | {run.query} | {run.body_bytes} | {run.points} | {rps_runs} "
                f"| {run.rps:.0f} | {run.p50_ms:.1f} | {p99_runs} | {run.p99_ms:.1f} "
                f"| {run.errors} | {ratio} |"
            )
        lines.append("")
        for name, late in tp.lateness.items():
            lines.append(f"- {name}: tick lateness ms after its load runs {late}")
        for name, pss in tp.pss_mib.items():
            lines.append(f"- {name}: PSS MiB by process after its load runs {pss}")
        for name, head in tp.head.items():
            lines.append(f"- {name}: live head after its load runs {head}")
        for name, reason in tp.skipped.items():
            lines.append(f"- not measured: {name}: {reason}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Issue 9: sysmon's agent and server apart, beside node_exporter, "
        "netdata, Glances and VictoriaMetrics (see the module docstring)"
    )
    parser.add_argument("--window", type=int, default=60, help="seconds measured at rest")
    parser.add_argument("--warmup", type=int, default=15, help="seconds before the window")
    parser.add_argument("--load", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per query")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--extra-procs", type=int, default=1000, help="idle processes (procs)")
    parser.add_argument(
        "--prefill", type=int, default=1800, help="seconds of data before the load runs"
    )
    parser.add_argument(
        "--workers",
        type=lambda s: [int(w) for w in s.split(",")],
        default=[1, 2],
        help="server.workers values for the throughput phase",
    )
    parser.add_argument(
        "--phases", type=lambda s: s.split(","), default=list(ALL_PHASES), help=",".join(ALL_PHASES)
    )
    parser.add_argument(
        "--only", type=lambda s: s.split(","), default=list(ALL_TARGETS), help=",".join(ALL_TARGETS)
    )
    parser.add_argument(
        "--noise-procs",
        type=int,
        default=200,
        help="a window during which the machine's process count moves by more is measured "
        "again (a burst of someone else's processes)",
    )
    parser.add_argument(
        "--quiet-procs",
        type=int,
        default=400,
        help="most processes on the machine (plus --extra-procs in that phase) for a window "
        "to count; before each window the script waits up to --quiet-wait s for it",
    )
    parser.add_argument("--quiet-wait", type=float, default=300)
    parser.add_argument("--retries", type=int, default=2, help="re-measured windows at most")
    parser.add_argument("--glances", default="/tmp/glances-venv/bin/glances")
    parser.add_argument("--out", default=str(RESULTS / "isolation"))
    args = parser.parse_args()
    for bad in set(args.phases) - set(ALL_PHASES):
        parser.error(f"unknown phase {bad}")
    for bad in set(args.only) - set(ALL_TARGETS):
        parser.error(f"unknown target {bad}")
    if shutil.which("wrk") is None and {"jitter", "throughput"} & set(args.phases):
        parser.error("wrk is needed for the jitter and throughput phases: apt-get install wrk")

    # A plain SIGTERM would skip the clean-up (targets, the idle processes): exit instead.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: sys.exit(143))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    source = source_state()
    tmp = Path(tempfile.mkdtemp(prefix="sysmon-isolation-"))
    os.chmod(tmp, 0o755)  # netdata drops to its own user and must reach its directories
    log_dir = tmp / "logs"
    log_dir.mkdir()
    rows: list[Footprint] = []
    skipped: dict[str, str] = {}
    jitter: Jitter | None = None
    tp: Throughput | None = None

    def footprints(phase: str, limit: int) -> None:
        for t in monitor_targets(args, tmp, phase):
            if isinstance(t, str):
                skipped[t.split(" ", 1)[0]] = t
                continue
            sys.stderr.write(f"{phase}: {t.name} {t.version} ...\n")
            try:
                rows.append(footprint(t, phase, args, log_dir, limit))
            except FAILURES as exc:
                skipped[f"{t.name} ({phase})"] = f"failed: {type(exc).__name__}: {exc}"
                continue
            sys.stderr.write(json.dumps(asdict(rows[-1])) + "\n")

    if "idle" in args.phases:
        footprints("idle", args.quiet_procs)
    if "procs" in args.phases:
        sys.stderr.write(f"starting {args.extra_procs} idle processes ...\n")
        with idle_processes(args.extra_procs):
            time.sleep(5)
            footprints(f"+{args.extra_procs} procs", args.quiet_procs + args.extra_procs)
    if "jitter" in args.phases and "sysmon" in args.only:
        sys.stderr.write("jitter under load ...\n")
        try:
            jitter = jitter_under_load(args, tmp, log_dir)
            sys.stderr.write(json.dumps(asdict(jitter)) + "\n")
        except FAILURES as exc:
            skipped["sysmon (jitter)"] = f"failed: {type(exc).__name__}: {exc}"
    if "throughput" in args.phases:
        tp = throughput(args, tmp, log_dir)

    command = " ".join([".venv/bin/python -m bench.bench_isolation", *sys.argv[1:]])
    text = markdown(rows, skipped, jitter, tp, args, command, started, source)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started": started,
        "source": source,
        "command": command,
        "footprint": [asdict(r) for r in rows],
        "skipped": skipped,
        "jitter": asdict(jitter) if jitter else None,
        "throughput": asdict(tp) if tp else None,
    }
    out.with_suffix(".json").write_text(json.dumps(document, indent=2))
    out.with_suffix(".md").write_text(text)
    sys.stdout.write(text)
    sys.stdout.write(f"logs: {log_dir}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
