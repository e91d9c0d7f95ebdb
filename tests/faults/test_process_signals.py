"""The real service process is stopped mid-write: SIGTERM, and ``kill -9``.

Expected behaviour:

* SIGTERM: uvicorn runs the lifespan shutdown (scheduler stopped, write buffer flushed,
  store closed). Every tick the service published before the signal is in the file,
  the last one included, and ``PRAGMA integrity_check`` says ok.
* SIGKILL: nothing runs. WAL with ``synchronous=NORMAL`` keeps every committed
  transaction, and a transaction cut off is rolled back on the next open. So a restart
  on the same file comes up healthy, the file is intact, and at most the last tick (the
  one published to ``/current`` whose write had not committed yet) is missing.

The signal is sent right after a new tick shows up in ``/current``: the snapshot is
published before it is handed to the writer, so this is when a write is in flight.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sysmon.config import load_settings
from sysmon.storage.base import RangeQuery
from sysmon.storage.sqlite import SQLiteStore
from tests.support.process import ROOT, free_port, service_env, wait_healthy

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def start(db: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysmon", "serve", "--port", str(port)],
            cwd=ROOT,
            env=service_env(db),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
    except TimeoutError:
        proc.kill()
        proc.wait()
        raise AssertionError(f"service did not come up: {log.read_text()[-2000:]}") from None
    return proc, base


def watch_ticks(base: str, seconds: float) -> list[float]:
    """Every tick timestamp published in ``seconds``; returns right after a new one."""
    seen: list[float] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=5) as client:
        while True:
            r = client.get(f"{base}/api/v1/metrics/current")
            if r.status_code == 200:
                ts = float(r.json()["timestamp"])
                if not seen or ts != seen[-1]:
                    seen.append(ts)
                    if time.monotonic() > deadline:
                        return seen
            time.sleep(0.01)


def stored_slots(db: Path, start: float, end: float) -> set[float]:
    settings = load_settings(None)
    store = SQLiteStore(db, retention=settings.retention, interval_seconds=1)
    store.open()
    try:
        res = store.query(RangeQuery("memory", start, end, resolution="raw", max_points=10_000))
    finally:
        store.close()
    values = res.fields["total_bytes"]
    return {t for t, v in zip(res.timestamps, values, strict=True) if v is not None}


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_sigterm_during_a_write_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "sysmon.db"
    proc, base = start(db, tmp_path / "service.log")
    try:
        seen = watch_ticks(base, 2.0)
        proc.send_signal(signal.SIGTERM)
        # uvicorn (>= 0.29) re-raises the signal after a graceful shutdown.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Application shutdown complete" in (tmp_path / "service.log").read_text()
    assert integrity(db) == "ok"
    slots = {float(round(t)) for t in seen}
    stored = stored_slots(db, min(slots) - 1, max(slots) + 1)
    assert slots <= stored, f"missing after SIGTERM: {sorted(slots - stored)}"


def test_kill_9_then_restart_opens_cleanly_missing_at_most_the_last_tick(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sysmon.db"
    log = tmp_path / "service.log"
    proc, base = start(db, log)
    try:
        seen = watch_ticks(base, 2.0)
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    again, base = start(db, log)  # the same file: must open (WAL recovery) and collect
    try:
        health = httpx.get(f"{base}/api/v1/health", timeout=5).json()
        assert health["database"]["reachable"] is True
        assert health["database"]["last_error"] is None
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert integrity(db) == "ok"
    slots = {float(round(t)) for t in seen}
    stored = stored_slots(db, min(slots) - 1, max(slots) + 1)
    missing = slots - stored
    assert missing <= {max(slots)}, f"lost more than the last tick: {sorted(missing)}"
