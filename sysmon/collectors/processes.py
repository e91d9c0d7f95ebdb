"""Processes: the top-N table (by CPU and by memory) plus process and thread counts.

Per-process CPU % is the delta of user+system CPU seconds between two reads of the
process divided by the monotonic time between them (100 = one full core, so a
multi-threaded process can exceed 100). It is keyed by ``(pid, create_time)`` so a
reused pid never inherits another process's baseline. Nothing sleeps:
``psutil.Process.cpu_percent(interval)`` would block and its ``interval=None`` form
keeps hidden per-object state.

Choice: a process seen for the first time gets ``cpu_percent`` 0.0 (the contract type is
a float) and still competes on memory, so a new memory hog appears immediately; its CPU
shows from the next tick on.

Cost: it grows with what changes, not with the number of processes. Each tick takes the
pids (``SystemSource.process_pids``: on Linux one ``os.listdir('/proc')``, skipped while
``/proc/loadavg`` shows that no task was created or reaped) and reads the cheap fields
(one ``/proc/<pid>/stat``) only of

* new pids (and pids whose read fails: they are gone, the same tick);
* *active* processes: those whose fields (CPU time, RSS, threads, state) changed in one
  of their last ``_ACTIVE_READS`` reads; they are read every tick, so their CPU % is
  exact tick by tick, as before;
* a rotating share of the *idle* ones, so that each is re-read once every
  ``idle_refresh_seconds``: pids are spread over ``_SLOTS`` slots by ``pid % _SLOTS``
  (pids are handed out sequentially, so slots fill evenly) and the slots whose turn
  falls between the previous tick and this one (on the monotonic clock) are read. The
  cost per tick is therefore flat (about ``idle / idle_refresh_seconds`` reads per
  second), not a burst every few seconds, whatever the tick interval.

An idle process not read this tick keeps its last ``ProcessInfo`` (RSS, threads, state)
and reports 0 % CPU, which is what "unchanged" means. When it is re-read and has used
CPU, its CPU % is the delta over the whole time since its previous read (an average, up
to ``idle_refresh_seconds`` long) and it becomes active again, read every tick. So a
process that wakes up shows in the table at most ``idle_refresh_seconds`` (rounded up to
a tick) late, and an idle row's RSS, threads and state are at most that old.
``idle_refresh_seconds: 0`` reads every process every tick.

Counts are exact for the listing of the tick: ``count`` is the number of listed pids
(minus those that vanished before they could be read), ``threads`` adds the last read
thread count of each (kept as a running sum, so no per-process work).

The ranking only sorts what can rank: processes with CPU > 0 were all read this tick,
and the rest rank by RSS in both top lists, so the union is the top N of the busy ones
plus the top N by RSS. A row whose process, CPU % and memory total are unchanged is the
same (read-only) mapping as on the previous tick.

Pid reuse: a pid that exits between two listings disappears from one of them and is
forgotten; if it comes back it is new and read. A pid that exits *and* is reused between
two consecutive listings (the kernel hands out pids cyclically, so it would have to go
round the whole pid space within one tick) is caught when it is next read: the
``create_time`` differs, so it starts over with no baseline and no cached details; until
then (at most ``idle_refresh_seconds``) the old process's row stands in for it. An
active process is read every tick, so its reuse is caught at the next tick. The source
never reads a new process through an old descriptor (``PsutilSource._linux_read``).

Command line and user are fetched only for the selected rows and cached per
``(pid, create_time)`` until the process exits, so a steady host pays nothing for them.
Command lines are capped at ``cmdline_max_chars`` (at most ``MAX_CHARS``, 4096) and then
redacted by ``sysmon.collectors.redact.redact_cmdline`` in one linear pass: whoever starts
a process picks its command line, so its cost must not depend on its shape or length.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Collection, Mapping
from operator import attrgetter
from typing import ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.redact import MAX_CHARS, redact_cmdline
from sysmon.collectors.registry import register
from sysmon.collectors.source import ITEM_ERRORS, ProcessInfo, SystemSource
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "processes"

# --- the collector -----------------------------------------------------------------


_ACTIVE_READS = 3
"""A process is read every tick until this many consecutive reads found it unchanged."""

_SLOTS = 64
"""Idle processes are refreshed in ``pid % _SLOTS`` groups, spread over the refresh period."""

_RSS = attrgetter("rss")

DETAILS_TTL = 300.0
"""Seconds a shown row's command line and user are kept before they are read again: the
fallback for an ``exec`` that keeps the kernel name (another script under the same
interpreter) and for a user change; an ``exec`` into another program shows at once. At
60 s the refreshes alone were ~1.4 reads a second for ~80 shown rows."""

KTHREADD = 2
"""Kernel threads are kthreadd (pid 2) and its children: no command line, no exec; their
name follows the work they do (``kworker/0:1-events``)."""


class _Proc:
    """What the collector remembers of one listed process between ticks."""

    __slots__ = ("details", "details_at", "details_name", "info", "quiet", "read_at", "row", "rss")

    def __init__(self, info: ProcessInfo, read_at: float) -> None:
        self.info = info
        """The last read; stands in for the process until it is read again."""
        self.read_at = read_at
        """Monotonic time of that read: the CPU % baseline is ``(info.cpu_time, read_at)``."""
        self.quiet = 0
        """Consecutive reads that found ``info`` unchanged."""
        self.rss = info.rss or 0
        self.details: tuple[str, str | None, str] | None = None
        """Full name, user, redacted command line: fetched when first shown, and again
        after an ``exec`` (the kernel's name changed) or ``DETAILS_TTL`` seconds."""
        self.details_name = ""
        """``info.name`` when ``details`` were fetched: a new name means an ``exec``."""
        self.details_at = 0.0
        """Monotonic time ``details`` were fetched."""
        self.row: tuple[ProcessInfo, float, int, Mapping[str, object]] | None = None
        """The last table row, after the ``(info, cpu_percent, mem_total)`` it shows."""


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
        idle_refresh_seconds: float = Field(
            default=5.0,
            ge=0,
            le=3600,
            description="Re-read an idle process at least this often (0 = every process "
            "every tick)",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("count", "processes", "Processes on the host", integer=True),
        MetricInfo("threads", "threads", "Threads over all processes", integer=True),
    )

    def __init__(self, source: SystemSource, options: Options) -> None:
        self._source = source
        self._options = options
        self._reset()

    def _reset(self) -> None:
        self._procs: dict[int, _Proc] = {}
        self._active: set[int] = set()
        self._slots: list[set[int]] = [set() for _ in range(_SLOTS)]
        self._threads = 0
        self._last_tick: float | None = None
        # The top processes by RSS, kept until an RSS change could alter them.
        self._mem_top: list[_Proc] | None = None
        self._mem_top_pids: set[int] = set()
        self._mem_floor = 0

    def _add(self, info: ProcessInfo, now: float) -> _Proc:
        proc = _Proc(info, now)
        pid = info.pid
        self._procs[pid] = proc
        self._slots[pid % _SLOTS].add(pid)
        self._active.add(pid)
        self._threads += info.num_threads or 0
        if proc.rss >= self._mem_floor:
            self._mem_top = None
        return proc

    def _forget(self, pid: int) -> None:
        proc = self._procs.pop(pid, None)
        if proc is None:
            return
        self._slots[pid % _SLOTS].discard(pid)
        self._active.discard(pid)
        self._threads -= proc.info.num_threads or 0
        if pid in self._mem_top_pids:
            self._mem_top = None

    def _to_read(self, listing: set[int], new: set[int], now: float) -> set[int]:
        """New and active pids, plus the idle slots whose turn came since the last tick."""
        period = self._options.idle_refresh_seconds
        last = self._last_tick
        if period <= 0 or last is None:
            return listing
        turn_before = math.floor(last / period * _SLOTS)
        turn_now = math.floor(now / period * _SLOTS)
        if turn_now - turn_before >= _SLOTS:
            return listing
        wanted = new | self._active
        slots = self._slots
        for turn in range(turn_before + 1, turn_now + 1):
            wanted |= slots[turn % _SLOTS]
        return wanted

    def collect(self, monotonic: float) -> Collected:
        src = self._source
        now = monotonic
        mem_total = src.memory_total()
        listing = src.process_pids()
        procs = self._procs
        new: set[int] = set()
        if listing != procs.keys():
            for pid in procs.keys() - listing:
                self._forget(pid)
            new = listing.difference(procs)
        wanted = self._to_read(listing, new, now)

        active = self._active
        busy: dict[int, float] = {}
        read: set[int] = set()
        for info in src.read_processes(wanted):
            pid = info.pid
            read.add(pid)
            proc = procs.get(pid)
            if proc is None or proc.info.create_time != info.create_time:
                self._forget(pid)  # a reused pid starts over: no baseline, no details
                self._add(info, now)
                continue
            old = proc.info
            if info == old:
                proc.quiet += 1
                if proc.quiet >= _ACTIVE_READS:
                    active.discard(pid)
            else:
                if info.cpu_time is not None and old.cpu_time is not None:
                    elapsed = now - proc.read_at
                    delta = info.cpu_time - old.cpu_time
                    if elapsed > 0 and delta > 0:
                        busy[pid] = delta / elapsed * 100.0
                self._threads += (info.num_threads or 0) - (old.num_threads or 0)
                proc.info = info
                rss = info.rss or 0
                if rss != proc.rss:
                    # The top by RSS can only change if a member falls below the
                    # smallest member or another process reaches it.
                    if (pid in self._mem_top_pids) != (rss >= self._mem_floor):
                        self._mem_top = None
                    proc.rss = rss
                proc.quiet = 0
                active.add(pid)
            proc.read_at = now
        if len(read) != len(wanted):
            for pid in wanted - read:  # listed, then gone (or unreadable) before the read
                self._forget(pid)
        self._last_tick = now

        samples = (
            Sample(METRIC, "count", float(len(procs))),
            Sample(METRIC, "threads", float(self._threads)),
        )
        # Union of the top N by (cpu, rss) and by rss. Only processes read this tick can
        # have CPU > 0; those without CPU rank by rss in both lists, so the top N by rss
        # over all processes covers them.
        n = self._options.top_n
        chosen: dict[int, _Proc] = {}
        if n:
            ranked = sorted(busy.items(), key=lambda kv: (kv[1], procs[kv[0]].rss), reverse=True)
            for pid, _ in ranked[:n]:
                chosen[pid] = procs[pid]
            for proc in self._top_by_rss(n):
                chosen[proc.info.pid] = proc
        ordered = sorted(
            chosen.values(), key=lambda p: (-busy.get(p.info.pid, 0.0), -p.rss, p.info.pid)
        )
        rows = tuple(self._row(p, busy.get(p.info.pid, 0.0), mem_total, now) for p in ordered)
        return Collected(samples=samples, rows=rows)

    def _top_by_rss(self, n: int) -> Collection[_Proc]:
        """The ``n`` largest processes by RSS, sorted again only after a change that
        could alter them (most ticks on a steady host sort nothing)."""
        procs = self._procs
        if n >= len(procs):
            self._mem_top, self._mem_top_pids, self._mem_floor = None, set(), 0
            return procs.values()
        top = self._mem_top
        if top is None or len(top) != n:
            top = sorted(procs.values(), key=_RSS, reverse=True)[:n]
            self._mem_top = top
            self._mem_top_pids = {p.info.pid for p in top}
            self._mem_floor = top[-1].rss
        return top

    def _details_for(self, proc: _Proc, now: float) -> tuple[str, str | None, str] | None:
        """Cached details, or ``None`` (and no cache) if they could not be read.

        Fetched again when the process ``exec``'d into another program (its kernel name
        changed: ``bash`` became ``python3``), and at most every ``DETAILS_TTL`` seconds
        while shown, which catches an ``exec`` that kept the name (``python3`` running
        another script) and a user change."""
        info = proc.info
        if proc.details is not None and now - proc.details_at < DETAILS_TTL:
            if proc.details_name == info.name:
                return proc.details
            if KTHREADD in (info.pid, info.ppid):  # renamed by its work, not an exec
                proc.details = (info.name, *proc.details[1:])
                proc.details_name = info.name
                return proc.details
        opts = self._options
        want_cmdline = opts.include_cmdline
        try:
            details = self._source.process_details(info.pid, info.create_time, cmdline=want_cmdline)
        except ITEM_ERRORS as exc:
            # Gone or denied between listing and now: keep the row, without extras.
            # Not cached, so a denied read is retried next time the row is shown.
            logger.debug(
                "process details unavailable",
                extra={"collector": "processes", "pid": info.pid, "error": repr(exc)},
            )
            return None
        cmd = ""
        if want_cmdline and details.cmdline:
            cmd = redact_cmdline(details.cmdline, opts.cmdline_max_chars)
        proc.details = (_full_name(info.name, details.cmdline), details.username, cmd)
        proc.details_name = info.name
        proc.details_at = now
        return proc.details

    def _row(self, proc: _Proc, cpu: float, mem_total: int, now: float) -> Mapping[str, object]:
        """The table row; the same (read-only) mapping as last tick if nothing changed
        (and its details are not due for a refresh)."""
        info = proc.info
        last = proc.row
        if (
            last is not None
            and last[0] is info
            and last[1] == cpu
            and last[2] == mem_total
            and now - proc.details_at < DETAILS_TTL
        ):
            return last[3]
        details = self._details_for(proc, now)
        name, user, cmdline = (info.name, None, "") if details is None else details
        rss = proc.rss
        row = {
            "pid": info.pid,
            "name": name,
            "user": user,
            "cpu_percent": round(cpu, 2),
            "memory_percent": round(rss / mem_total * 100.0, 2) if mem_total > 0 else 0.0,
            "rss_bytes": rss,
            "status": info.status or "unknown",
            "threads": info.num_threads or 0,
            "create_time": info.create_time,
            "ppid": info.ppid,
            "cmdline": cmdline,
        }
        if details is not None:  # a row without details is rebuilt, to retry them
            proc.row = (info, cpu, mem_total, row)
        return row

    def close(self) -> None:
        self._reset()
