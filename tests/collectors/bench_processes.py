"""CPU cost per tick of the processes collector, with extra idle processes on the host.

Not a test (pytest does not collect it); run it by hand from the project root:

    .venv/bin/python -m tests.collectors.bench_processes EXTRA [INTERVAL] [TICKS] [--quiet]
        [--refresh=SECONDS]

It starts ``EXTRA`` ``sleep 600`` processes, builds the collector with the default
options over ``PsutilSource`` and reports the CPU time of this process
(``time.process_time``) per ``collect`` call, ``TICKS`` calls ``INTERVAL`` seconds apart
(default 1 s, as under the scheduler: cold CPU caches make each call dearer than in a
tight loop), passing the real monotonic clock. Three figures: ``all`` averages every
call after the first (the processes present at start are read on the first
``_ACTIVE_READS + 1`` calls), ``steady`` leaves out the first five calls, ``median`` is
the median call after those five (robust to a noisy neighbour on a shared VM).

``--quiet`` simulates a host where no task is created or reaped during the run by
freezing the ``/proc/loadavg`` token (the listing is then reused, and retaken every
``_PIDS_MAX_AGE`` seconds; changes made meanwhile by other users of the machine are
missed, which does not matter for a cost figure); without it the token is real, and on
a host where something forks every second ``/proc`` is listed on every tick. ``--refresh`` sets
``idle_refresh_seconds`` (default: the option's default).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from sysmon.collectors.registry import discover
from sysmon.collectors.source import PsutilSource


class _QuietSource(PsutilSource):
    def _tasks_token(self) -> bytes | None:
        return b"quiet"

    @property  # type: ignore[override]
    def _pids_gate(self) -> bool:  # keep trusting the frozen token
        return True

    @_pids_gate.setter
    def _pids_gate(self, value: bool) -> None:
        pass


def main(extra: int, interval: float, ticks: int, quiet: bool, refresh: float | None) -> None:
    procs = [subprocess.Popen(["sleep", "600"]) for _ in range(extra)]
    try:
        time.sleep(0.5)
        source = _QuietSource() if quiet else PsutilSource()
        factory = discover().get("processes")
        options = (
            factory.Options() if refresh is None else factory.Options(idle_refresh_seconds=refresh)
        )
        collector = factory(source, options)
        collector.collect(time.monotonic())
        costs = []
        for _ in range(ticks):
            time.sleep(interval)
            t0 = time.process_time()
            collector.collect(time.monotonic())
            costs.append(time.process_time() - t0)
        count = sum(1 for entry in os.listdir("/proc") if entry.isdigit())
        every = sum(costs) / len(costs) * 1000
        steady = sum(costs[5:]) / max(1, len(costs) - 5) * 1000
        median = statistics.median(costs[5:] or costs) * 1000
        sys.stdout.write(
            f"{count} processes, {interval} s apart: all {every:.2f} ms/tick, "
            f"steady {steady:.2f}, median {median:.2f} ms/tick ({ticks} ticks"
            f"{', quiet host' if quiet else ''}"
            f"{'' if refresh is None else f', idle_refresh_seconds={refresh}'}"
            f"{'' if getattr(source, '_pids_gate', True) else ', listing gate off'})\n"
        )
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    refresh = [float(f.split("=", 1)[1]) for f in flags if f.startswith("--refresh=")]
    main(
        int(args[0]) if args else 1000,
        float(args[1]) if len(args) > 1 else 1.0,
        int(args[2]) if len(args) > 2 else 30,
        "--quiet" in flags,
        refresh[0] if refresh else None,
    )
