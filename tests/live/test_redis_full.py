"""A Redis that is out of memory refuses SET but not PUBLISH: the agent keeps publishing
every tick (no back-off), says that the latest frame is not stored, and stores it again
once Redis has room. A private ``redis-server`` (``maxmemory 1``), not the machine's."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from sysmon.api.routes.health import live_redis_problem
from sysmon.fanout import Backoff, RedisTickPublisher, decode_frame
from tests.support.process import free_port


@pytest.fixture
def full_redis(tmp_path: Path) -> Iterator[redis.Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--maxmemory", "1", "--maxmemory-policy", "noeviction", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        _until(lambda: _pings(client), 10, "redis-server to answer")
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_full_redis_still_gets_every_tick_and_health_says_the_latest_is_not_kept(
    full_redis: redis.Redis,
) -> None:
    port = full_redis.connection_pool.connection_kwargs["port"]
    url = f"redis://127.0.0.1:{port}/0"
    publisher = RedisTickPublisher(url, "ticks:h", "latest:h", 30, backoff=Backoff(30.0, 30.0))
    pubsub = full_redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("ticks:h")
    received: list[float] = []

    def take() -> bool:
        message = pubsub.get_message(timeout=0.05)
        if message is not None:
            received.append(decode_frame(message["data"])[0]["timestamp"])
        return False

    publisher.start()
    try:
        for i in range(1, 4):
            publisher.publish({"type": "tick", "timestamp": float(i)}, b"{}")
            _until(lambda i=i: take() or received[-1:] == [float(i)], 5, f"tick {i}")
        # A back-off (30 s here) would have held tick 2 back; none was taken.
        assert received == [1.0, 2.0, 3.0]
        # Counted once execute() returns, which can be just after the subscriber has it.
        _until(lambda: publisher.published == 3, 5, "the third publish counted")
        status = publisher.status()
        assert status["connected"] is True and status["published"] == 3
        assert status["last_error"] is None
        assert "maxmemory" in (status["latest_error"] or ""), status
        assert full_redis.get("latest:h") is None
        problem = live_redis_problem(status)
        assert problem is not None and "cannot store the latest one" in problem

        full_redis.config_set("maxmemory", 0)  # room again
        publisher.publish({"type": "tick", "timestamp": 4.0}, b"{}")
        _until(lambda: take() or received[-1:] == [4.0], 5, "tick 4")
        _until(lambda: publisher.latest_error is None, 5, "the latest frame stored")
    finally:
        publisher.close()
        pubsub.close()
    stored = full_redis.get("latest:h")
    assert stored is not None and decode_frame(stored)[0]["timestamp"] == 4.0
    assert live_redis_problem(publisher.status()) is None
