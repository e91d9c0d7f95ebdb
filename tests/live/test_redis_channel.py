"""The Redis side of the live channel in this process, against the machine's Redis:
frames arrive whole and in order, a new subscriber gets the latest frame at once, a
dropped connection is re-established (health shows the error meanwhile), and an agent
whose Redis is gone never waits for it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sysmon.channel import encode_frame
from sysmon.config import load_settings
from sysmon.errors import ConfigError
from sysmon.fanout import (
    Backoff,
    RedisTickPublisher,
    RedisTickSubscriber,
    decode_frame,
    server_source,
)
from sysmon.secreturl import safe_url
from tests.live.support import REDIS_URL, drop_keys, redis_or_skip, unique_prefix
from tests.support.process import free_port

Frames = list[tuple[dict[str, Any], bytes]]


def _publisher(prefix: str, backoff: Backoff | None = None) -> RedisTickPublisher:
    return RedisTickPublisher(
        REDIS_URL, f"{prefix}:ticks:h", f"{prefix}:latest:h", latest_ttl_seconds=30, backoff=backoff
    )


def _subscriber(url: str, prefix: str, out: Frames, name: str) -> RedisTickSubscriber:
    return RedisTickSubscriber(
        url,
        f"{prefix}:ticks:h",
        f"{prefix}:latest:h",
        lambda meta, body: out.append((meta, body)),
        backoff=Backoff(0.02, 0.1),
        client_name=name,
    )


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def test_frame_round_trip_and_damaged_frames() -> None:
    frame = encode_frame({"type": "tick", "timestamp": 5.0}, b'{"timestamp":5.0}')
    assert decode_frame(frame) == ({"type": "tick", "timestamp": 5.0}, b'{"timestamp":5.0}')
    with pytest.raises(ValueError, match="do not match"):
        decode_frame(frame[:-1])
    with pytest.raises(ValueError, match="shorter than its header"):
        decode_frame(b"\x00\x00")


def test_latest_frame_first_then_every_tick_in_order_and_reconnect() -> None:
    client = redis_or_skip()
    prefix = unique_prefix()
    name = f"sysmon-test-{uuid.uuid4().hex[:8]}"
    publisher = _publisher(prefix)
    publisher.start()
    received: Frames = []
    try:
        publisher.publish({"type": "tick", "timestamp": 1.0}, b'{"a":1}')
        deadline = time.monotonic() + 5
        while publisher.published < 1:
            assert time.monotonic() < deadline, publisher.status()
            time.sleep(0.01)

        async def main() -> None:
            subscriber = _subscriber(REDIS_URL, prefix, received, name)
            task = asyncio.create_task(subscriber.run())
            # Before any new tick: the latest frame, read from its key.
            await _until(lambda: len(received) == 1, 5, "the latest frame")
            assert subscriber.connected and subscriber.last_error is None
            for ts in (2.0, 3.0):
                publisher.publish({"type": "tick", "timestamp": ts}, b"x" * int(ts * 1000))
                await _until(lambda n=ts: received[-1][0]["timestamp"] == n, 5, f"tick {ts}")

            # Redis drops the subscriber's connection: it reconnects by itself and reads
            # the latest frame again, which it does not deliver twice.
            killed = [c["id"] for c in client.client_list() if c.get("name") == name]
            assert killed, "the subscriber's connection is not named"
            for client_id in killed:
                client.client_kill_filter(_id=client_id)
            await _until(lambda: subscriber.reconnects == 1, 5, "the drop to be noticed")
            await _until(lambda: subscriber.connected, 5, "the reconnection")
            assert len(received) == 3
            publisher.publish({"type": "tick", "timestamp": 4.0}, b"{}")
            await _until(lambda: len(received) == 4, 5, "tick 4 after the reconnection")
            task.cancel()
            await asyncio.wait([task], timeout=5)
            assert task.done()

        asyncio.run(asyncio.wait_for(main(), 20))
    finally:
        publisher.close()
        drop_keys(client, prefix)
        client.close()
    assert [m["timestamp"] for m, _ in received] == [1.0, 2.0, 3.0, 4.0]
    assert received[0][1] == b'{"a":1}' and len(received[2][1]) == 3000
    assert publisher.status()["connected"] is True and publisher.published == 4


def test_unreachable_redis_is_reported_and_retried_with_backoff() -> None:
    dead = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    received: Frames = []

    async def main() -> RedisTickSubscriber:
        subscriber = _subscriber(dead, "nobody", received, "sysmon-test-dead")
        task = asyncio.create_task(subscriber.run())
        await _until(lambda: subscriber._backoff.current == 0.1, 5, "the backoff to grow")
        task.cancel()
        await asyncio.wait([task], timeout=5)
        return subscriber

    subscriber = asyncio.run(main())
    assert not subscriber.connected and received == []
    error = subscriber.last_error or ""
    assert error.startswith(f"redis redis://:***@127.0.0.1:{dead.split(':')[-1]} unreachable")
    assert "hunter2" not in error and "hunter2" not in str(subscriber)


def test_publishing_never_waits_for_a_dead_redis() -> None:
    publisher = RedisTickPublisher(
        f"redis://127.0.0.1:{free_port()}/0", "c", "k", 5, backoff=Backoff(0.05, 0.2)
    )
    publisher.start()
    try:
        started = time.perf_counter()
        for i in range(200):
            publisher.publish({"type": "tick", "timestamp": float(i)}, b"y" * 10_000)
        elapsed = time.perf_counter() - started
        deadline = time.monotonic() + 5
        while publisher.last_error is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        publisher.close(timeout=2)
    assert elapsed < 0.5  # 200 encodes, no network
    status = publisher.status()
    assert status["connected"] is False and status["published"] == 0
    assert status["last_error"].startswith("ConnectionError")
    assert publisher.replaced >= 190  # only the newest frame ever waits


def test_one_redis_setting_for_rate_limits_and_ticks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("SYSMON_REDIS_PASSWORD", "s3cret/pw")
    settings = load_settings(None, redis={"url": "redis://cache:6379/2", "key_prefix": "p"})
    assert settings.server.security.rate_limits.storage == "redis://:s3cret%2Fpw@cache:6379/2"
    assert "s3cret" not in repr(settings.redis)
    assert settings.redis.channel("web1") == "p:ticks:web1"
    explicit = load_settings(
        None,
        redis={"url": "redis://cache:6379/2"},
        server={"security": {"rate_limits": {"storage": "memory://"}}},
    )
    assert explicit.server.security.rate_limits.storage == "memory://"
    assert load_settings(None).server.security.rate_limits.storage == "memory://"
    with pytest.raises(ConfigError, match=r"redis\.url"):
        load_settings(None, redis={"url": "http://cache"})
    # A password in the file is refused; in the environment it is fine.
    path = tmp_path / "config.yaml"
    path.write_text("redis:\n  url: redis://:inline@cache:6379/0\n")
    with pytest.raises(ConfigError, match=r"redis\.url.*not read from the config file"):
        load_settings(path)
    monkeypatch.setenv("SYSMON_REDIS__URL", "redis://:fromenv@cache:6379/0")
    assert load_settings(None).redis.resolved_url() == "redis://:fromenv@cache:6379/0"
    assert safe_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"


def test_the_server_reads_redis_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from sysmon.channel import TickSubscriber

    plain = server_source(load_settings(None), lambda m, b: None, Path("/x/agent.sock"))
    assert isinstance(plain, TickSubscriber)
    settings = load_settings(
        None, redis={"url": REDIS_URL, "live_host": "agent-box"}, agent={"host": "here"}
    )
    source = server_source(settings, lambda m, b: None, Path("/x/agent.sock"))
    assert isinstance(source, RedisTickSubscriber)
    assert source.channel == "sysmon:ticks:agent-box"
    assert source.latest_key == "sysmon:latest:agent-box"
    off = load_settings(None, redis={"url": REDIS_URL, "live": False})
    assert isinstance(server_source(off, lambda m, b: None, Path("/x")), TickSubscriber)
    assert RedisTickPublisher.from_settings(off) is None
    agent_side = RedisTickPublisher.from_settings(settings)
    assert agent_side is not None and agent_side.channel == "sysmon:ticks:here"


def test_health_says_when_the_server_cannot_reach_redis(tmp_path: Path) -> None:
    import httpx

    from sysmon.main import create_app
    from sysmon.storage.config import RetentionConfig
    from sysmon.storage.sqlite import SQLiteStore
    from tests.support.server import serve

    db = tmp_path / "sysmon.db"
    store = SQLiteStore(db, retention=RetentionConfig(), interval_seconds=1)
    store.open()
    store.close()
    port = free_port()
    settings = load_settings(
        None,
        database={"path": str(db)},
        redis={"url": f"redis://127.0.0.1:{port}/0"},
        server={"security": {"rate_limits": {"storage": "memory://"}}},
    )
    app = create_app(settings, start_agent=False)
    with serve(app) as running:
        deadline = time.monotonic() + 10
        while app.state.subscriber.last_error is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        body = httpx.get(f"{running.base_url}/api/v1/health", timeout=10).json()
    assert body["agent"]["connected"] is False
    assert body["agent"]["error"].startswith(f"redis redis://127.0.0.1:{port}/0 unreachable")
