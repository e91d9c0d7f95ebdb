"""Processes: the top-N table (by CPU and by memory) plus process and thread counts.

Per-process CPU % is the delta of user+system CPU seconds between two ticks divided by
the monotonic interval (100 = one full core, so a multi-threaded process can exceed
100). It is keyed by ``(pid, create_time)`` so a reused pid never inherits another
process's baseline. Nothing sleeps: ``psutil.Process.cpu_percent(interval)`` would block
and its ``interval=None`` form keeps hidden per-object state.

Choice: a process seen for the first time gets ``cpu_percent`` 0.0 (the contract type is
a float) and still competes on memory, so a new memory hog appears immediately; its CPU
shows from the next tick on.

Cost: every tick reads only the cheap fields of every process (one ``/proc`` file each
on Linux). Command line and user are fetched only for the selected rows and cached per
``(pid, create_time)`` until the process exits, so a steady host pays nothing for them.
Command lines are capped at ``cmdline_max_chars`` (at most ``MAX_CHARS``, 4096) and then
redacted by ``app.collectors.redact.redact_cmdline`` in one linear pass: whoever starts
a process picks its command line, so its cost must not depend on its shape or length.
"""

from __future__ import annotations

import heapq
import logging
import os
from typing import ClassVar

from pydantic import Field

from app.collectors.base import CollectorOptions
from app.collectors.redact import MAX_CHARS, redact_cmdline
from app.collectors.registry import register
from app.collectors.source import ITEM_ERRORS, ProcessInfo, SystemSource
from app.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "processes"

# --- the collector -----------------------------------------------------------------

_Key = tuple[int, float]


def _full_name(name: str, cmdline: tuple[str, ...] | None) -> str:
    """Linux truncates ``comm`` to 15 chars; recover the full name from argv[0] like psutil."""
    if len(name) >= 15 and cmdline:
        base = os.path.basename(cmdline[0])
        if base.startswith(name):
            return base
    return name


@register("processes")
class ProcessesCollector:
    """Top processes by CPU and memory, process and thread counts."""

    class Options(CollectorOptions):
        top_n: int = Field(default=100, ge=0, le=10_000)
        cmdline_max_chars: int = Field(default=256, ge=0, le=MAX_CHARS)
        include_cmdline: bool = True

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("count", "processes", "Processes on the host"),
        MetricInfo("threads", "threads", "Threads over all processes"),
    )

    def __init__(self, source: SystemSource, options: Options) -> None:
        self._source = source
        self._options = options
        self._prev: dict[_Key, tuple[float, float]] = {}
        self._details: dict[_Key, tuple[str, str | None, str]] = {}

    def collect(self, monotonic: float) -> Collected:
        src = self._source
        mem_total = src.memory_total()
        prev = self._prev
        current: dict[_Key, tuple[float, float]] = {}
        scored: list[tuple[float, int, ProcessInfo]] = []
        threads = 0
        for proc in src.processes():
            key = (proc.pid, proc.create_time)
            cpu = 0.0
            if proc.cpu_time is not None:
                current[key] = (proc.cpu_time, monotonic)
                before = prev.get(key)
                if before is not None:
                    elapsed = monotonic - before[1]
                    delta = proc.cpu_time - before[0]
                    if elapsed > 0 and delta >= 0:
                        cpu = delta / elapsed * 100.0
            threads += proc.num_threads or 0
            scored.append((cpu, proc.rss or 0, proc))
        self._prev = current

        samples = (
            Sample(METRIC, "count", float(len(scored))),
            Sample(METRIC, "threads", float(threads)),
        )
        n = self._options.top_n
        by_cpu = heapq.nlargest(n, scored, key=lambda s: (s[0], s[1]))
        by_mem = heapq.nlargest(n, scored, key=lambda s: s[1])
        chosen: dict[int, tuple[float, int, ProcessInfo]] = {}
        for item in (*by_cpu, *by_mem):
            chosen[item[2].pid] = item
        ordered = sorted(chosen.values(), key=lambda s: (-s[0], -s[1], s[2].pid))

        rows = tuple(self._row(cpu, rss, proc, mem_total) for cpu, rss, proc in ordered)
        # Forget details of processes that exited (their key is no longer listed).
        self._details = {k: v for k, v in self._details.items() if k in current}
        return Collected(samples=samples, rows=rows)

    def _details_for(self, proc: ProcessInfo) -> tuple[str, str | None, str]:
        key = (proc.pid, proc.create_time)
        cached = self._details.get(key)
        if cached is not None:
            return cached
        opts = self._options
        want_cmdline = opts.include_cmdline
        try:
            details = self._source.process_details(proc.pid, proc.create_time, cmdline=want_cmdline)
        except ITEM_ERRORS as exc:
            # Gone or denied between listing and now: keep the row, without extras.
            # Not cached, so a denied read is retried next time the row is shown.
            logger.debug(
                "process details unavailable",
                extra={"collector": "processes", "pid": proc.pid, "error": repr(exc)},
            )
            return proc.name, None, ""
        cmd = ""
        if want_cmdline and details.cmdline:
            cmd = redact_cmdline(details.cmdline, opts.cmdline_max_chars)
        result = (_full_name(proc.name, details.cmdline), details.username, cmd)
        self._details[key] = result
        return result

    def _row(self, cpu: float, rss: int, proc: ProcessInfo, mem_total: int) -> dict[str, object]:
        name, user, cmdline = self._details_for(proc)
        return {
            "pid": proc.pid,
            "name": name,
            "user": user,
            "cpu_percent": round(cpu, 2),
            "memory_percent": round(rss / mem_total * 100.0, 2) if mem_total > 0 else 0.0,
            "rss_bytes": rss,
            "status": proc.status or "unknown",
            "threads": proc.num_threads or 0,
            "create_time": proc.create_time,
            "cmdline": cmdline,
        }

    def close(self) -> None:
        self._prev = {}
        self._details = {}
