"""The real monitor as a user runs it (``sysmon serve``: agent + server processes), and
the checks the isolation tests share: which raw samples are missing, what health says."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from sysmon.storage.base import RangeQuery
from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import SQLiteStore
from tests.support.process import ROOT, free_port, service_env, wait_healthy

BASE_METRICS = ("cpu", "memory", "disk", "network", "processes")


@dataclass
class Monitor:
    proc: subprocess.Popen[bytes]
    base: str
    config: Path
    db: Path
    log: Path

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/api/v1/health", timeout=5).json())

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def missing(self, metric: str, start: float, end: float) -> list[float]:
        """Raw slots in [start, end] where ``metric``'s totals have no value at all
        (read from the database file itself, as a second reader)."""
        store = SQLiteStore(self.db, retention=RetentionConfig(), interval_seconds=1, readonly=True)
        store.open()
        try:
            res = store.query(RangeQuery(metric, start, end, resolution="raw", max_points=10_000))
        finally:
            store.close()
        assert res.step_seconds == 1.0
        columns = list(res.fields.values())
        return [t for i, t in enumerate(res.timestamps) if all(c[i] is None for c in columns)]

    def wait_stored(self, until: float, timeout: float = 15.0) -> None:
        """Until the slot ``until`` is in the database (writes trail the live tick)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.missing("memory", until, until):
                return
            time.sleep(0.2)
        raise AssertionError(f"slot {until} never stored")


def now_slot() -> float:
    return float(int(time.time()))


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def monitor(
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    preexec: Callable[[], None] | None = None,
    argv: list[str] | None = None,
) -> Iterator[Monitor]:
    """``sysmon --config <tmp>/config.yaml serve`` on a free port, stopped with SIGTERM."""
    port = free_port()
    db = tmp_path / "data" / "sysmon.db"
    body: dict[str, Any] = {"database": {"path": str(db)}, "server": {"port": port}}
    for key, value in (config or {}).items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(body))
    log = tmp_path / "monitor.log"
    env = service_env(db)
    env.pop("SYSMON_DATABASE__PATH")
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysmon", "--config", str(path), *(argv or ["serve"])],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,  # the test process's threads do not fork-lock here
        )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(base, timeout=40)
        except TimeoutError:
            raise AssertionError(log.read_text(errors="replace")[-4000:]) from None
        yield Monitor(proc, base, path, db, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie still answers kill(0): look at its state
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
