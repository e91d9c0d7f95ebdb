"""PSS of a fresh ``sysmon serve`` tree, per process: a quick A/B probe for memory work.

Starts the service as ``bench_isolation`` does (temp data directory, 1 server worker),
waits ``--seconds``, sends a few ``/current`` and range requests, then prints PSS per
process (``smaps_rollup``) with its anonymous/file split and shared/private pages.
``bench_isolation``'s idle phase is the measurement of record.

    .venv/bin/python -m bench.pss_probe [--seconds 30] [--env KEY=VALUE ...] [--kill-agent]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.bench_isolation import health, pss_by_process, running, sysmon_target
from bench.compare import wait_ok

KEYS = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Shared_Clean", "Shared_Dirty", "Private_Dirty")


def rollup_mib(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0]) // 1024
    return {k: out[k] for k in KEYS if k in out}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for sysmon")
    parser.add_argument(
        "--kill-agent",
        action="store_true",
        help="SIGKILL the agent first and measure once the supervisor restarted it "
        "(from its command line, not forked)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sysmon-pss-"))
    target = sysmon_target(tmp, "pss", 1)
    assert target.env is not None
    target.env.update(kv.split("=", 1) for kv in args.env)
    with running(target, tmp, "pss") as proc:
        wait_ok(target.url, timeout=120)
        time.sleep(args.seconds)
        agent = int(health(target.base)["agent"]["pid"])
        if args.kill_agent:
            os.kill(agent, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while agent == int(health(target.base)["agent"]["pid"] or agent):
                assert time.monotonic() < deadline, "the agent did not come back"
                time.sleep(0.5)
            time.sleep(args.seconds)
            agent = int(health(target.base)["agent"]["pid"])
        for _ in range(50):
            httpx.get(target.url, timeout=10)
            start = time.time() - 60
            httpx.get(f"{target.base}/api/v1/metrics/cpu?resolution=raw&start={start}", timeout=10)
        time.sleep(2)
        by_role = pss_by_process(proc.pid, agent)
        print(by_role, "total", round(sum(by_role.values()), 1))
        for child in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]:
            print(child.pid, rollup_mib(child.pid))
    return 0


if __name__ == "__main__":
    sys.exit(main())
