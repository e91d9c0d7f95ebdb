"""Answer repeated identical range queries from memory until the store changes.

A range query with an explicit ``start`` and ``end`` is a pure function of its URL and of
what the store holds. The store changes only when the collection thread writes a tick or
runs maintenance, and the writer counts those changes (``generation``). So the JSON body
built for a URL can be served again, byte for byte, to anyone asking the same URL before
the next change: ten dashboards on the same range, or a load test, cost one query per
tick instead of one per request.

``RangeCacheMiddleware`` is a pure ASGI layer in front of the app: on a hit it answers
without entering FastAPI's routing and validation; on a miss the request goes through the
normal route, which stores its body with ``remember``. Misses for the same URL that
arrive while the first is still being answered wait for it instead of running the same
query again (after each tick every client misses at once; without this, 100 clients
would run 100 identical queries). Queries with a relative (absent)
``start`` or ``end`` depend on the clock, not only on the store, and are never cached.

The cache is bounded in entries and in body bytes (a few large answers must not hold
hundreds of MiB): least recently used entries go first, and a change of generation frees
every entry of the old one.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/api/v1/metrics/"
_NOT_CACHED = ("/api/v1/metrics/current", "/api/v1/metrics/processes")


def cache_key(path: str, query_string: bytes) -> str | None:
    """The key for a cacheable range request, or None when it must not be cached."""
    if not path.startswith(PREFIX) or path in _NOT_CACHED:
        return None
    params = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    if not params.get("start", [""])[0] or not params.get("end", [""])[0]:
        return None
    return f"{path}?{query_string.decode('latin-1')}"


DEFAULT_MAX_ENTRIES = 256
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


class ResponseCache:
    """Bodies by key, valid for one store generation, bounded in entries and in bytes.

    The least recently used entries are dropped until both bounds hold; a body larger than
    ``max_bytes`` is not kept. Storing an entry of a new generation drops every entry of
    another one: none of them can be served again. ``total_bytes`` and ``entry_count`` say
    what is held.
    """

    def __init__(
        self,
        generation: Callable[[], int],
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._generation = generation
        self._max = max_entries
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._entries_generation: int | None = None
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def total_bytes(self) -> int:
        return self._bytes

    @property
    def entry_count(self) -> int:
        return len(self._entries)

    def generation(self) -> int:
        return self._generation()

    def get(self, key: str) -> bytes | None:
        current = self._generation()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != current:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def peek(self, key: str) -> bytes | None:
        """Like ``get`` but not counted: for handing a fresh body to waiting requests."""
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] == self._generation() else None

    def remember(self, key: str, generation: int, body: bytes) -> None:
        """Store ``body`` as of ``generation`` (read *before* the query ran)."""
        if generation != self._generation():
            return  # the store changed while we queried: the body may be stale
        with self._lock:
            if generation != self._entries_generation:
                self._entries.clear()
                self._bytes = 0
                self._entries_generation = generation
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            if len(body) > self._max_bytes:
                return  # would evict everything else and still not fit
            self._entries[key] = (generation, body)
            self._bytes += len(body)
            while len(self._entries) > self._max or self._bytes > self._max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= len(evicted)


class RangeCacheMiddleware:
    def __init__(self, app: ASGIApp, cache: Callable[[], ResponseCache | None]) -> None:
        self.app = app
        self._cache = cache
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}
        self.shared = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            cache = self._cache()
            key = cache_key(scope["path"], scope["query_string"]) if cache is not None else None
            if cache is not None and key is not None:
                body = cache.get(key)
                if body is None:
                    pending = self._inflight.get(key)
                    if pending is not None:
                        body = await asyncio.shield(pending)
                        self.shared += body is not None
                if body is not None:
                    await send_json(send, body)
                    return
                if key not in self._inflight:
                    await self._answer_first(key, cache, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer_first(
        self, key: str, cache: ResponseCache, scope: Scope, receive: Receive, send: Send
    ) -> None:
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            await self.app(scope, receive, send)
        finally:
            del self._inflight[key]
            future.set_result(cache.peek(key))


async def send_json(send: Send, body: bytes) -> None:
    """A 200 ``application/json`` answer of ``body`` (its length given)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
