"""``FakeSource``: a ``SystemSource`` fed with canned psutil-shaped data.

The state is a plain dict shaped like psutil's return values (namedtuples as dicts),
usually loaded from ``tests/fixtures/*.json``. It goes through the same ``*_from``
converters ``PsutilSource`` uses, so the fake differs from the real source only in where
the numbers come from. Set a key to ``None`` to simulate a missing sensor, and put an
exception in ``fail`` to make a whole call raise.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psutil

from sysmon.collectors import source as src
from sysmon.collectors.source import (
    CpuReading,
    CpuStats,
    CpuTimes,
    DiskIO,
    DiskPartition,
    DiskUsage,
    MemoryReading,
    NetIO,
    NicStats,
    ProcessDetails,
    ProcessInfo,
    SwapMemory,
    VirtualMemory,
)
from sysmon.models import Collected

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


HOST_READERS = ("containers", "files", "gpus", "inodes", "pressure", "sensors", "sockets")
"""Collectors that read kernel files, sensors or NVML themselves, not ``SystemSource``:
a test that needs every sample to come from ``FakeSource`` turns them off
(``only_fake_source``)."""


def only_fake_source() -> dict[str, dict[str, bool]]:
    """``collectors`` settings that disable ``HOST_READERS``."""
    return {name: {"enabled": False} for name in HOST_READERS}


def load_ticks(name: str = "linux_host.json") -> list[dict[str, Any]]:
    """Full states, one per tick: ``base`` overlaid with each tick's top-level keys."""
    doc = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return [{**copy.deepcopy(doc["base"]), **copy.deepcopy(t)} for t in doc["ticks"]]


def _ns(value: Any) -> Any:
    """Dicts -> attribute objects, recursively, so converters see psutil-like tuples."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _ns(v) for k, v in value.items()})
    return value


_ERRORS: dict[str, type[Exception]] = {
    "AccessDenied": psutil.AccessDenied,
    "NoSuchProcess": psutil.NoSuchProcess,
    "ZombieProcess": psutil.ZombieProcess,
    "PermissionError": PermissionError,
    "OSError": OSError,
}


def _raise(spec: Mapping[str, Any], pid: int | None = None) -> None:
    cls = _ERRORS[spec["error"]]
    if issubclass(cls, psutil.Error):
        raise cls(pid or 0)  # type: ignore[call-arg]
    raise cls(spec.get("message", spec["error"]))


class FakeSource:
    def __init__(self, state: Mapping[str, Any]) -> None:
        self.state: dict[str, Any] = copy.deepcopy(dict(state))
        self.fail: dict[str, BaseException] = {}
        self.calls: list[str] = []
        self.reads: list[int] = []
        """Every pid returned by ``read_processes``, in order (the per-process cost)."""

    def set_state(self, state: Mapping[str, Any]) -> None:
        self.state = copy.deepcopy(dict(state))

    def _get(self, key: str) -> Any:
        self.calls.append(key)
        if key in self.fail:
            raise self.fail[key]
        return self.state.get(key)

    def cpu_times(self) -> CpuTimes:
        return src.cpu_times_from(_ns(self._get("cpu_times")))

    def cpu_times_percpu(self) -> list[CpuTimes]:
        return [src.cpu_times_from(_ns(t)) for t in self._get("cpu_times_percpu")]

    def cpu_stats(self) -> CpuStats:
        return src.cpu_stats_from(_ns(self._get("cpu_stats")))

    def cpu_reading(self, percpu: bool) -> CpuReading:
        return CpuReading(
            self.cpu_times(), self.cpu_times_percpu() if percpu else None, self.cpu_stats()
        )

    def cpu_freq(self) -> float | None:
        freq = self._get("cpu_freq")
        return None if freq is None else float(freq["current"])

    def getloadavg(self) -> tuple[float, float, float] | None:
        load = self._get("getloadavg")
        return None if load is None else (float(load[0]), float(load[1]), float(load[2]))

    def cpu_count(self, logical: bool = True) -> int | None:
        value = self._get("cpu_count" if logical else "cpu_count_physical")
        return None if value is None else int(value)

    def boot_time(self) -> float:
        return float(self._get("boot_time"))

    def virtual_memory(self) -> VirtualMemory:
        return src.virtual_memory_from(_ns(self._get("virtual_memory")))

    def swap_memory(self) -> SwapMemory | None:
        swap = self._get("swap_memory")
        return None if swap is None else src.swap_memory_from(_ns(swap))

    def memory_reading(self) -> MemoryReading:
        return MemoryReading(self.virtual_memory(), self.swap_memory())

    def memory_total(self) -> int:
        return self.virtual_memory().total

    def disk_partitions(self, all: bool = False) -> list[DiskPartition]:
        return [src.disk_partition_from(_ns(p)) for p in self._get("disk_partitions")]

    def disk_usage(self, path: str) -> DiskUsage:
        usage = self._get("disk_usage").get(path)
        if usage is None:
            raise FileNotFoundError(path)
        if "error" in usage:
            _raise(usage)
        return src.disk_usage_from(_ns(usage))

    def disk_io_counters(self) -> Mapping[str, DiskIO]:
        return {
            n: src.disk_io_from(_ns(v)) for n, v in (self._get("disk_io_counters") or {}).items()
        }

    def net_io_counters(self) -> Mapping[str, NetIO]:
        return {n: src.net_io_from(_ns(v)) for n, v in (self._get("net_io_counters") or {}).items()}

    def net_if_stats(self) -> Mapping[str, NicStats]:
        return {n: src.nic_stats_from(_ns(v)) for n, v in (self._get("net_if_stats") or {}).items()}

    def processes(self) -> Iterator[ProcessInfo]:
        for info in self._get("processes"):
            yield src.process_info_from(
                {k: _ns(v) if isinstance(v, dict) else v for k, v in info.items()}
            )

    def process_pids(self) -> set[int]:
        return {int(info["pid"]) for info in self._get("processes")}

    def read_processes(self, pids: Collection[int]) -> Iterator[ProcessInfo]:
        # Through ``processes`` so a subclass that fails the listing fails this too.
        wanted = set(pids)
        for proc in self.processes():
            if proc.pid in wanted:
                self.reads.append(proc.pid)
                yield proc

    def process_details(self, pid: int, create_time: float, *, cmdline: bool) -> ProcessDetails:
        spec = self._get("process_details").get(str(pid))
        if spec is None:
            raise psutil.NoSuchProcess(pid)
        if "error" in spec:
            _raise(spec, pid)
        args = tuple(spec["cmdline"]) if cmdline else None
        return ProcessDetails(cmdline=args, username=spec.get("username"))


# --- helpers for asserting on emitted samples


def totals(collected: Collected) -> dict[str, float]:
    """Unlabelled samples as ``{field: value}``; fails on a duplicate field."""
    return labelled(collected)


def labelled(collected: Collected, key: str | None = None, value: str = "") -> dict[str, float]:
    """Samples whose labels are exactly ``((key, value),)`` (or none) as ``{field: value}``."""
    want = () if key is None else ((key, value),)
    out: dict[str, float] = {}
    for s in collected.samples:
        if s.labels == want:
            assert s.field not in out, f"duplicate sample {s.field} {want}"
            out[s.field] = s.value
    return out


def label_values(collected: Collected, key: str) -> set[str]:
    return {v for s in collected.samples for k, v in s.labels if k == key}


def run_ticks(
    collector: Any, source: FakeSource, ticks: Sequence[Mapping[str, Any]], step: float = 1.0
) -> list[Collected]:
    """Feed ``ticks`` one by one, advancing the monotonic clock by ``step`` seconds."""
    out = []
    now = 1000.0
    for state in ticks:
        source.set_state(state)
        out.append(collector.collect(now))
        now += step
    return out
