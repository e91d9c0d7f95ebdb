"""The machine's Redis for the live fan-out tests: skip (with the reason) only when
nothing answers on 127.0.0.1:6379; every test gets its own key prefix."""

from __future__ import annotations

import uuid

import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_or_skip() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({exc}): start redis-server to run this")
    return client


def unique_prefix() -> str:
    """A key namespace of this test alone (parallel runs share the machine's Redis)."""
    return f"sysmon-test-{uuid.uuid4().hex[:12]}"


def drop_keys(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"*{prefix}*"):  # rate limit keys: LIMITS:...
        client.delete(key)
