"""A quick A/B probe of the server's request path: one ``sysmon serve`` (1 worker) on
the throughput phase's prefilled store, ``wrk -t2 -c100`` on 60 s raw ranges (a new URL
each) then on ``/current``; ``--profile`` also records the server with py-spy (``--gil``:
only the thread holding the GIL) to a raw collapsed-stack file.

    .venv/bin/python -m bench.range_probe [--seconds 15] [--env KEY=VALUE ...] [--profile F]

Numbers from one run are noisy; ``bench_isolation``'s throughput phase is the
measurement of record (three runs, medians, VictoriaMetrics beside it)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.bench_isolation import SYSMON_RANGE, health, range_lua, sysmon_target
from bench.bench_service import prefill
from bench.compare import wait_ok


def wrk(seconds: int, url: str, script: Path | None = None) -> str:
    argv = ["wrk", "-t2", "-c100", f"-d{seconds}s", "--latency"]
    argv += ["-s", str(script)] if script else []
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    keep = ("Requests/sec", "50%", "90%", "99%", "Non-2xx", "Socket errors")
    return "\n".join(line for line in out.splitlines() if line.strip().startswith(keep))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for sysmon")
    parser.add_argument("--profile", type=Path, help="py-spy raw output file")
    parser.add_argument("--pin-server", type=int, help="run the server on this CPU only")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sysmon-probe-"))
    target = sysmon_target(tmp, "probe", 1, loaded=True)
    assert target.env is not None
    target.env.update(kv.split("=", 1) for kv in args.env)
    prefill(Path(target.env["SYSMON_DATABASE__PATH"]), 900)
    with (tmp / "sysmon.log").open("wb") as log:
        proc = subprocess.Popen(target.argv, env=target.env, cwd=target.cwd, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_ok(target.url, timeout=120)
        time.sleep(3)
        agent = int(health(target.base)["agent"]["pid"])
        server = next(c.pid for c in psutil.Process(proc.pid).children() if c.pid != agent)
        if args.pin_server is not None:
            for thread in psutil.Process(server).threads():
                os.sched_setaffinity(thread.id, {args.pin_server})
        script = tmp / "range.lua"
        script.write_text(range_lua(SYSMON_RANGE, sysmon=True))
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(server),
                 "-d", str(args.seconds), "-r", "200", "-f", "raw", "--threads", "--gil",
                 "-o", str(args.profile)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        print("60 s raw range, new URL each:\n" + wrk(args.seconds, target.base + "/", script))
        if spy is not None:
            spy.wait()
        print("live head:", health(target.base).get("live_head"))
        print("/current:\n" + wrk(args.seconds, target.url))
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
