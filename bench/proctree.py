"""CPU and memory of a whole process tree, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def children(pid: int) -> list[int]:
    out: list[int] = []
    task = Path(f"/proc/{pid}/task")
    try:
        for tid in task.iterdir():
            try:
                text = (tid / "children").read_text()
            except OSError:
                continue
            out.extend(int(c) for c in text.split())
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    pids = [pid]
    i = 0
    while i < len(pids):
        pids.extend(children(pids[i]))
        i += 1
    return pids


def cpu_seconds(pid: int, reaped: bool = False) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds.

    With ``reaped``, plus cutime + cstime: the CPU of its children that have exited and
    been waited for. Summed over a live tree, that counts the CPU of short-lived helpers
    (netdata's plugin scripts) that would otherwise vanish between two samples."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(statm[1]) * PAGE


def pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid`` (/proc/<pid>/smaps_rollup): each shared page is
    split among the processes mapping it, so PSS adds up across processes (RSS does not:
    a library mapped by three processes counts three times in their RSS)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class TreeSample:
    cpu_seconds: float
    rss_bytes: int
    pids: int


def sample_tree(pid: int) -> TreeSample:
    pids = tree(pid)
    return TreeSample(
        cpu_seconds=sum(cpu_seconds(p) for p in pids),
        rss_bytes=sum(rss_bytes(p) for p in pids),
        pids=len(pids),
    )
