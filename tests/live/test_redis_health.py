"""``/api/v1/health`` while the agent's Redis publishing fails, and while it works.

The failure is real: ``redis.url`` names a port where nothing listens. A server that reads
the agent's Unix socket still gets every tick, with the agent's own report in it: health
shows ``agent.live_redis`` with the error and is ``degraded`` naming Redis. A server that
reads its ticks from that Redis gets none, so no report either: its health names Redis
through its own connection error. With the machine's Redis (ticks through Redis, as
``sysmon serve`` with ``redis.url`` runs), the report says publishing works and no
problem names Redis.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from sysmon.api.routes.health import live_redis_problem
from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import SQLiteStore
from tests.live.support import REDIS_URL, drop_keys, redis_or_skip, unique_prefix
from tests.support.process import free_port, sysmon_process, wait_healthy

Health = dict[str, Any]


@contextmanager
def _process(config: Path, command: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}
    with sysmon_process(["--config", str(config), command], log, env) as proc:
        yield proc


def _config(tmp_path: Path, name: str, body: dict[str, Any]) -> Path:
    path = tmp_path / f"{name}.yaml"
    common = {"database": {"path": str(tmp_path / "data" / "sysmon.db")}}
    path.write_text(yaml.safe_dump({**common, "alerts": {"enabled": False}, **body}))
    return path


def _health_until(base: str, done: Callable[[Health], bool], what: str, logs: Path) -> Health:
    deadline = time.monotonic() + 20
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{base}/api/v1/health", timeout=2).json()
        except httpx.HTTPError as exc:
            last = exc
        if isinstance(last, dict) and done(last):
            return last
        time.sleep(0.1)
    tails = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs.glob("*.log")
    )
    raise AssertionError(f"health never showed {what}: {last}\n{tails}")


def _redis_problems(health: Health) -> list[str]:
    return [p for p in health["problems"] if "redis" in p.lower()]


def test_health_names_the_agents_failing_redis_publishing(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    socket_port, redis_port = free_port(), free_port()
    agent = _config(tmp_path, "agent", {"redis": {"url": dead}})
    # Reads the agent's socket (no redis.url), as a local server beside remote ones does.
    over_socket = _config(tmp_path, "socket-server", {"server": {"port": socket_port}})
    # Reads its ticks from the same dead Redis, as `sysmon serve` with redis.url does.
    over_redis = _config(
        tmp_path,
        "redis-server",
        {
            "redis": {"url": dead},
            "server": {
                "port": redis_port,
                "security": {"rate_limits": {"storage": "memory://"}},
            },
        },
    )
    store = SQLiteStore(tmp_path / "data" / "sysmon.db", RetentionConfig(), interval_seconds=1)
    store.open()  # the servers open it read-only: made here, so all three start at once
    store.close()
    with ExitStack() as stack:
        stack.enter_context(_process(agent, "agent", tmp_path / "agent.log"))
        stack.enter_context(_process(over_socket, "server", tmp_path / "socket-server.log"))
        stack.enter_context(_process(over_redis, "server", tmp_path / "redis-server.log"))

        socket_base = f"http://127.0.0.1:{socket_port}"
        health = _health_until(
            socket_base,
            lambda h: bool((h["agent"].get("live_redis") or {}).get("last_error")),
            "the agent's Redis error",
            tmp_path,
        )
        live = health["agent"]["live_redis"]
        assert live["url"] == dead and live["connected"] is False and live["published"] == 0
        assert health["agent"]["connected"] is True  # the socket works: only Redis fails
        assert health["status"] == "degraded"
        assert _redis_problems(health) == [
            f"agent cannot publish live ticks to redis {dead}: {live['last_error']}"
        ], health["problems"]
        assert "Connection refused" in live["last_error"] or "111" in live["last_error"]

        # The server reading Redis gets no tick, so no report of the agent's: it names
        # Redis by its own connection error (a problem once its start-up grace is over,
        # about 14 s here: not waited for).
        health = _health_until(
            f"http://127.0.0.1:{redis_port}",
            lambda h: h["agent"]["error"] is not None,
            "the server's Redis error",
            tmp_path,
        )
        assert health["agent"]["connected"] is False
        assert health["agent"]["error"].startswith(f"redis {dead} unreachable: ")
        assert health["agent"]["live_redis"] is None


def test_health_shows_working_redis_publishing_without_a_problem(tmp_path: Path) -> None:
    client = redis_or_skip()
    prefix = unique_prefix()
    port = free_port()
    config = _config(
        tmp_path,
        "serve",
        {
            "redis": {"url": REDIS_URL, "key_prefix": prefix},
            "server": {"port": port, "security": {"rate_limits": {"key_prefix": prefix}}},
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with _process(config, "serve", tmp_path / "serve.log"):
            try:
                wait_healthy(base, timeout=30)
            except TimeoutError:
                raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from None
            # Ticks reach this server through Redis; their report says publishing works.
            health = _health_until(
                base,
                lambda h: (h["agent"].get("live_redis") or {}).get("published", 0) >= 2,
                "published ticks",
                tmp_path,
            )
            live = health["agent"]["live_redis"]
            assert live["url"] == REDIS_URL and live["connected"] is True, live
            assert live["last_error"] is None
            assert live["channel"].startswith(f"{prefix}:ticks:")
            assert health["agent"]["connected"] is True
            assert _redis_problems(health) == [], health["problems"]
    finally:
        drop_keys(client, prefix)
        client.close()


def test_no_redis_problem_before_the_first_attempt_or_without_redis() -> None:
    waiting = {"url": REDIS_URL, "connected": False, "published": 0, "last_error": None}
    assert live_redis_problem(waiting) is None  # the first tick, before its send
    assert live_redis_problem(None) is None  # no redis.url
    assert live_redis_problem({**waiting, "connected": True, "published": 3}) is None
    failing = {**waiting, "last_error": "ConnectionError: refused"}
    assert live_redis_problem(failing) == (
        f"agent cannot publish live ticks to redis {REDIS_URL}: ConnectionError: refused"
    )
