"""Real pieces for the Celery tests: the machine's Redis (one database, a namespace per
test), a webhook receiver that can hold a request, and ``celery worker`` subprocesses.

Each test gets its own queue and key prefix (a random suffix), so runs that overlap on
the same Redis database never take each other's messages; the keys are deleted after.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from sysmon.alerts.notifiers.base import DELIVERY_ID_HEADER

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 13
"""A database number no other test uses (rate limits and fan-out tests use 0)."""
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def redis_client() -> redis.Redis:
    """The machine's Redis, or the test is skipped (only when it is unreachable)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis at 127.0.0.1:6379 unreachable: {exc}")
    return client


@dataclass
class Namespace:
    """A queue name and key prefix of one's own, and the keys cleaned up afterwards."""

    client: redis.Redis
    name: str = field(default_factory=lambda: f"sysmon-test-{uuid.uuid4().hex[:12]}")

    def cleanup(self) -> None:
        keys = list(self.client.scan_iter(match=f"{self.name}*", count=500))
        if keys:
            self.client.delete(*keys)


@contextmanager
def namespace() -> Iterator[Namespace]:
    ns = Namespace(redis_client())
    try:
        yield ns
    finally:
        ns.cleanup()
        ns.client.close()


@dataclass(frozen=True)
class Arrival:
    path: str
    delivery_id: str | None
    body: dict[str, Any]


class Receiver:
    """A webhook on 127.0.0.1 that dedupes by ``X-Sysmon-Delivery-Id``, as a careful
    receiver would. Every request is an ``arrival`` the moment its body is read; while
    ``hold`` is set, a ``/hold/...`` request then gets no answer until ``release``."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.hold = threading.Event()
        self.hold.set()
        self.released = threading.Event()
        self._lock = threading.Lock()
        self.base_url = ""

    def delivered(self) -> list[Arrival]:
        """What the receiver acted on: the first arrival of each delivery id."""
        seen: set[str | None] = set()
        out = []
        with self._lock:
            for arrival in self.arrivals:
                if arrival.delivery_id not in seen:
                    seen.add(arrival.delivery_id)
                    out.append(arrival)
        return out

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def url(self, path: str) -> str:
        return self.base_url + path

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrival = Arrival(self.path, self.headers.get(DELIVERY_ID_HEADER), json.loads(raw))
                with receiver._lock:
                    receiver.arrivals.append(arrival)
                if self.path.startswith("/hold") and receiver.hold.is_set():
                    receiver.released.wait(30)
                    return  # the sender is gone by now; no answer
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.daemon = True
        thread.start()
        try:
            yield self
        finally:
            self.released.set()
            server.shutdown()
            server.server_close()


def wait_for(predicate: Any, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    if predicate():
        return
    tail = f"\nworker log:\n{log.read_text(errors='replace')[-4000:]}" if log else ""
    raise AssertionError(f"not within {timeout:g}s: {what}{tail}")


def write_config(
    path: Path, ns: Namespace, db: Path, *, timeout: float = 2.0, retries: int = 2
) -> Path:
    """A sysmon config the agent side and the worker both read: one webhook channel
    (URL from ``SYSMON_TEST_HOOK_URL``), one rule, Celery on the test's namespace."""
    config = {
        "database": {"path": str(db)},
        "alerts": {
            "channels": {
                "hook": {
                    "type": "webhook",
                    "url_env": "SYSMON_TEST_HOOK_URL",
                    "timeout_seconds": timeout,
                    "retries": retries,
                    "backoff_seconds": 0.2,
                }
            },
            "rules": [{"name": "cpu_high", "metric": "cpu.percent", "threshold": 80, "for": "0s"}],
        },
        "tasks": {
            "broker_url": REDIS_URL,
            "queue": ns.name,
            "key_prefix": ns.name,
            "visibility_timeout_seconds": 3,
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


class Worker:
    """``celery -A sysmon.tasks worker --pool=solo`` as a subprocess, the way it is run."""

    def __init__(self, config: Path, queue: str, hook_url: str, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}
        env.update(SYSMON_CONFIG=str(config), SYSMON_TEST_HOOK_URL=hook_url)
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "sysmon.tasks", "worker",
                    "--pool=solo", "-Q", queue, "--loglevel=INFO",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                    "-n", f"{uuid.uuid4().hex[:8]}@%h",
                ],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_for(
            lambda: (
                "ready." in self.log.read_text(errors="replace") or self.proc.poll() is not None
            ),
            timeout,
            "worker ready",
            self.log,
        )
        assert self.proc.poll() is None, self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
