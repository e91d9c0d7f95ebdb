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


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    try:
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0
    return int(statm[1]) * PAGE


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
