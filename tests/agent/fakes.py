"""Collectors and a store with controllable failures, for the agent's unit tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import ClassVar

from sysmon.models import Collected, MetricInfo, Sample, Snapshot
from sysmon.storage.base import RangeQuery, SeriesResult, StoreStats


class Steady:
    name: ClassVar[str] = "steady"
    fields: ClassVar[Sequence[MetricInfo]] = (MetricInfo("value", "count", "a number"),)

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.threads: set[str] = set()

    def collect(self, monotonic: float) -> Collected:
        self.calls.append(monotonic)
        self.threads.add(threading.current_thread().name)
        return Collected(samples=(Sample("steady", "value", float(len(self.calls))),))

    def close(self) -> None:
        pass


class Broken(Steady):
    def collect(self, monotonic: float) -> Collected:
        raise PermissionError("psutil.AccessDenied (pid=1)")


class Hanging(Steady):
    """Blocks until ``release`` is set (a collector stuck in a kernel call)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def collect(self, monotonic: float) -> Collected:
        self.calls.append(monotonic)
        self.threads.add(threading.current_thread().name)
        self.release.wait(30)
        return Collected()


class Sleepy(Steady):
    """Takes ``seconds`` per call (a slow but working collector)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def collect(self, monotonic: float) -> Collected:
        time.sleep(self.seconds)
        return super().collect(monotonic)


class FlakyStore:
    """A store whose writes fail while ``down`` is set."""

    def __init__(self) -> None:
        self.down = False
        self.written: list[float] = []
        self.maintained: list[float] = []

    def open(self) -> None: ...

    def write(self, snapshot: Snapshot) -> None:
        if self.down:
            raise OSError(28, "No space left on device")
        self.written.append(snapshot.timestamp)

    def query(self, q: RangeQuery) -> SeriesResult:  # pragma: no cover - unused
        raise NotImplementedError

    def series(self, metric: str) -> list[tuple[tuple[str, str], ...]]:
        return []

    def query_processes(self, at: float) -> None:
        return None

    def maintain(self, now: float) -> None:
        self.maintained.append(now)

    def ping(self) -> bool:
        return not self.down

    def stats(self) -> StoreStats:
        return StoreStats(backend="fake", path=None, size_bytes=None)

    def close(self) -> None: ...


def snap(ts: float) -> Snapshot:
    return Snapshot(timestamp=ts, results={})
