"""Range answers are reused only while the store is unchanged."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from sysmon.api.cache import ResponseCache, cache_key
from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from tests.api.conftest import START, tick
from tests.support.stack import Stack


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Without the live head, which answers recent raw windows before the cache is asked
    (tests/api/test_head_range.py): these tests are the store's path."""
    return load_settings(
        None, database={"path": str(tmp_path / "sysmon.db")}, api={"live_window_seconds": 0}
    )


@pytest.mark.parametrize(
    ("path", "query", "cached"),
    [
        ("/api/v1/metrics/cpu", b"start=1&end=2", True),
        ("/api/v1/metrics/disk", b"start=1&end=2&mount=/", True),
        ("/api/v1/metrics/cpu", b"start=1", False),  # end = now: depends on the clock
        ("/api/v1/metrics/cpu", b"end=2", False),
        ("/api/v1/metrics/cpu", b"start=&end=2", False),
        ("/api/v1/metrics/cpu", b"", False),
        ("/api/v1/metrics/current", b"start=1&end=2", False),
        ("/api/v1/metrics/processes", b"start=1&end=2", False),
        ("/api/v1/health", b"start=1&end=2", False),
    ],
)
def test_cache_key(path: str, query: bytes, cached: bool) -> None:
    assert (cache_key(path, query) is not None) is cached


def test_entries_expire_when_the_generation_moves() -> None:
    generation = 0
    cache = ResponseCache(lambda: generation, max_entries=2)
    cache.remember("a", 0, b"A")
    assert cache.get("a") == b"A"
    generation = 1
    assert cache.get("a") is None
    cache.remember("b", 0, b"stale")  # computed before the change: not kept
    assert cache.get("b") is None
    for key in ("c", "d", "e"):
        cache.remember(key, 1, key.encode())
    assert cache.get("c") is None  # evicted, least recently used
    assert cache.get("e") == b"e"


def test_many_large_bodies_stay_within_the_byte_budget() -> None:
    budget = 1024 * 1024
    cache = ResponseCache(lambda: 3, max_entries=1000, max_bytes=budget)
    body = b"x" * 100_000
    for i in range(300):
        cache.remember(f"k{i}", 3, body)
        assert cache.total_bytes <= budget
    assert cache.entry_count == budget // len(body)
    assert cache.get("k299") == body  # the newest are kept
    assert cache.get("k0") is None  # the oldest went first
    cache.remember("k299", 3, b"small")  # replacing an entry counts its new size
    assert cache.total_bytes == (cache.entry_count - 1) * len(body) + len(b"small")


def test_a_body_larger_than_the_budget_is_not_cached() -> None:
    cache = ResponseCache(lambda: 1, max_bytes=1000)
    cache.remember("small", 1, b"s" * 600)
    cache.remember("huge", 1, b"h" * 1001)
    assert cache.get("huge") is None
    assert cache.get("small") == b"s" * 600  # not evicted to make room in vain
    assert cache.total_bytes == 600


def test_a_new_generation_frees_the_old_bodies() -> None:
    generation = 1
    cache = ResponseCache(lambda: generation)
    for key in ("a", "b", "c"):
        cache.remember(key, 1, b"old" * 1000)
    generation = 2
    cache.remember("a", 2, b"new")
    assert (cache.entry_count, cache.total_bytes) == (1, 3)
    assert cache.get("a") == b"new"


def test_repeated_range_is_served_from_memory_until_the_next_tick(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 3)
    params = {"start": START, "end": START + 10, "resolution": "raw"}
    first = client.get("/api/v1/metrics/memory", params=params)
    cache: ResponseCache = server.app.state.range_cache
    hits = cache.hits
    second = client.get("/api/v1/metrics/memory", params=params)
    assert second.status_code == 200
    assert second.content == first.content
    assert cache.hits == hits + 1
    present = [v is not None for v in first.json()["fields"]["total_bytes"]]
    assert present.count(True) == 3
    tick(server, clock, 2)  # the store changed: the same URL must see the new ticks
    third = client.get("/api/v1/metrics/memory", params=params).json()
    assert [v is not None for v in third["fields"]["total_bytes"]].count(True) == 5


def test_errors_are_not_cached(client: httpx.Client, server: Stack, clock: FakeClock) -> None:
    tick(server, clock, 2)
    params = {"start": START + 10, "end": START}
    for _ in range(2):
        r = client.get("/api/v1/metrics/cpu", params=params)
        assert r.status_code == 422


def test_concurrent_misses_for_one_url_run_the_query_once() -> None:
    import asyncio

    from starlette.types import Receive, Scope, Send

    from sysmon.api.cache import RangeCacheMiddleware

    cache = ResponseCache(lambda: 7)
    calls = 0

    async def slow_route(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        key = cache_key(scope["path"], scope["query_string"])
        assert key is not None
        cache.remember(key, 7, b'{"n": 1}')
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"n": 1}'})

    middleware = RangeCacheMiddleware(slow_route, lambda: cache)

    async def request() -> bytes:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/v1/metrics/cpu",
            "query_string": b"start=1&end=2",
        }
        body = b""

        async def receive() -> dict[str, object]:
            return {"type": "http.request"}

        async def send(message: dict[str, object]) -> None:
            nonlocal body
            if message["type"] == "http.response.body":
                body += message["body"]  # type: ignore[operator]

        await middleware(scope, receive, send)  # type: ignore[arg-type]
        return body

    async def main() -> list[bytes]:
        return await asyncio.gather(*(request() for _ in range(20)))

    bodies = asyncio.run(main())
    assert calls == 1
    assert bodies == [b'{"n": 1}'] * 20
    assert middleware.shared == 19
