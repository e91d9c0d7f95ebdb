"""Per client and route rate limits (the ``limits`` library; in memory or in Redis).

Measured before this module: ``POST /api/v1/alerts/test`` sent 3,554 webhook messages in
20 s, and nothing slowed a password guesser. ``RateLimitMiddleware`` is pure ASGI, inside
the Host check (a foreign Host costs no budget) and outside authentication (a guesser is
slowed before any password hash is computed). Each request is counted under one rule:

* ``login`` (``server.security.rate_limits.login``, hardest): ``/api/v1/auth/token``,
  ``/api/v1/auth/login`` and ``/api/v1/auth/refresh``, one budget per client across the
  three, so alternating between them gains nothing;
* ``alerts_test``: ``POST /api/v1/alerts/test`` (each request sends real messages);
* ``default``: every other request, per client and route (method plus path template,
  e.g. ``DELETE /api/v1/alerts/silences/{silence_id}``, so varying an id does not make
  a new budget; every static file shares ``/static``'s; every unknown path shares one).

These apply whatever ``auth.mode`` says. Not counted (``rate_limits.exempt``):
``/api/v1/health``, which supervisors, load balancers and monitoring poll and which a
429 would turn into a false "down"; and ``/api/v1/stream``, one request per dashboard
that lasts for hours. A 429 there would be worse than useless: ``EventSource`` does not
retry after a non-200 answer, so a dashboard that reconnected a few times too often would
stop for good. Open streams are bounded by the connection cap instead
(``server.limits.max_connections``).

An exceeded limit answers 429 ``{"detail": ...}`` with ``Retry-After`` (whole seconds until
a slot frees). The strategy is the moving window: a fixed window would let a client send
twice the limit across a window boundary, which for login attempts is the number that
matters.

**Storage.** ``memory://`` (default) keeps the windows in this process: with
``server.workers`` > 1 each worker has its own. ``redis://host:port/db`` shares them
between workers and servers (async client, short timeouts). While Redis is unreachable,
requests are limited by an in-process fallback (logged once, retried every
``REDIS_RETRY_SECONDS``): limits stay on, per process, and the service stays up.

The client is ``scope["client"]``: the peer address, or the one uvicorn took from
``X-Forwarded-For`` when the peer is a trusted proxy (``--forwarded-allow-ips``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from limits import RateLimitItem, parse_many
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysmon.security.config import RateLimitConfig

if TYPE_CHECKING:
    from sysmon.config import Settings

logger = logging.getLogger(__name__)

LOGIN_PATHS = ("/api/v1/auth/token", "/api/v1/auth/login", "/api/v1/auth/refresh")
ALERTS_TEST = ("POST", "/api/v1/alerts/test")
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_RETRY_SECONDS = 5.0
_ROUTE_CACHE_LIMIT = 1024


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    """Add ``RateLimitMiddleware`` unless ``rate_limits.enabled`` is false. The routes are
    read when requests arrive (they are added after this call)."""
    config = settings.server.security.rate_limits
    if not config.enabled:
        logger.warning("rate limits are off (server.security.rate_limits.enabled: false)")
        return
    app.add_middleware(RateLimitMiddleware, limiter=Limiter(config), routes=RouteTemplates(app))


@dataclass(frozen=True)
class Rule:
    """A named budget: one or more limits (``"5/minute;20/hour"``), all of which apply."""

    name: str
    items: tuple[RateLimitItem, ...]

    @classmethod
    def parse(cls, name: str, text: str) -> Rule:
        return cls(name, tuple(parse_many(text)))

    def describe(self) -> str:
        return " and ".join(str(item) for item in self.items)


class Limiter:
    """Moving-window counting in memory or Redis, with the memory fallback described in
    the module docstring. ``hit`` returns ``None`` when the request may go on, else the
    seconds until it may be retried."""

    def __init__(self, config: RateLimitConfig, *, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.rules = {
            "default": Rule.parse("default", config.default),
            "login": Rule.parse("login", config.login),
            "alerts_test": Rule.parse("alerts_test", config.alerts_test),
        }
        self.exempt = frozenset(path.rstrip("/") or "/" for path in config.exempt)
        self._clock = clock
        self._memory = MovingWindowRateLimiter(MemoryStorage())
        self._redis: AsyncMovingWindow | None = None
        self._redis_storage: RedisStorage | None = None
        self._redis_down_until = 0.0
        if config.storage.startswith("redis"):
            self._redis_storage = RedisStorage(
                "async+" + config.storage,
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=config.key_prefix,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
            self._redis = AsyncMovingWindow(self._redis_storage)

    async def hit(self, rule: Rule, *identifiers: str) -> float | None:
        keys = (rule.name, *identifiers)  # Redis keys also get rate_limits.key_prefix
        if self._redis is not None and self._clock() >= self._redis_down_until:
            try:
                return await self._hit_redis(self._redis, rule, keys)
            except StorageError as exc:
                if self._redis_down_until == 0.0:
                    logger.warning(
                        "rate limit storage unreachable (%s): limiting in this process "
                        "until it answers again",
                        exc,
                    )
                self._redis_down_until = self._clock() + REDIS_RETRY_SECONDS
        return self._hit_memory(rule, keys)

    async def _hit_redis(
        self, redis: AsyncMovingWindow, rule: Rule, keys: tuple[str, ...]
    ) -> float | None:
        for item in rule.items:
            allowed = await redis.hit(item, *keys)
            if self._redis_down_until:  # it answered: back from the fallback
                logger.info("rate limit storage reachable again")
                self._redis_down_until = 0.0
            if not allowed:
                stats = await redis.get_window_stats(item, *keys)
                return _retry_after(stats.reset_time)
        return None

    def _hit_memory(self, rule: Rule, keys: tuple[str, ...]) -> float | None:
        for item in rule.items:
            if not self._memory.hit(item, *keys):
                return _retry_after(self._memory.get_window_stats(item, *keys).reset_time)
        return None

    async def aclose(self) -> None:
        """Close the Redis connections (at the app's shutdown, on the loop that made them)."""
        if self._redis_storage is not None:
            client: Any = getattr(self._redis_storage.bridge, "storage", None)
            if client is not None:
                await client.aclose()


def _retry_after(reset_time: float) -> float:
    """Whole seconds from now until ``reset_time`` (epoch seconds: the limits library's
    clock is ``time.time()``), at least 1."""
    return float(max(1, math.ceil(reset_time - time.time())))


class RateLimitMiddleware:
    """Pure ASGI: count the request under its rule; 429 with ``Retry-After`` when over."""

    def __init__(self, app: ASGIApp, limiter: Limiter, routes: RouteTemplates) -> None:
        self.app = app
        self.limiter = limiter
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"].rstrip("/") or "/"
        method: str = scope["method"]
        client = scope.get("client")
        who = client[0] if client else "unknown"
        identifiers: tuple[str, ...]
        if path in LOGIN_PATHS:
            rule, identifiers = self.limiter.rules["login"], (who,)
        elif (method, path) == ALERTS_TEST:
            rule, identifiers = self.limiter.rules["alerts_test"], (who,)
        elif path in self.limiter.exempt:
            await self.app(scope, receive, send)
            return
        else:
            template = self.routes.template(scope["path"])
            rule, identifiers = self.limiter.rules["default"], (who, method, template)
        retry = await self.limiter.hit(rule, *identifiers)
        if retry is None:
            await self.app(scope, receive, send)
            return
        await _too_many(send, rule, retry)

    def _closing_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                try:
                    await self.limiter.aclose()
                except Exception:
                    logger.debug("closing the rate limit storage failed", exc_info=True)
            return message

        return wrapped


class RouteTemplates:
    """The path template a request path belongs to, for keying budgets per route.

    Read from the app once, at the first request (routes are added after the middleware):
    the paths of the OpenAPI document (every API route, under its template; FastAPI's own
    router nests included routers, so this is the stable way to list them), plus the
    top-level routes and mounts (``/static/*``). Exact paths are looked up first, then
    templates with the longest literal part first, so ``/metrics/current`` wins over
    ``/metrics/{metric}``. Pages left out of the schema (``/``, ``/docs``) and unknown
    paths share the budget ``<unmatched>``: a client probing random URLs cannot spread
    over new budgets, and the few pages outside the schema are fetched rarely.
    """

    UNMATCHED = "<unmatched>"

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._exact: dict[str, str] | None = None
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        self._cache: dict[str, str] = {}

    def template(self, path: str) -> str:
        found = self._cache.get(path)
        if found is None:
            found = self._lookup(path)
            if len(self._cache) >= _ROUTE_CACHE_LIMIT:
                self._cache.clear()  # many distinct paths: look up again, memory bounded
            self._cache[path] = found
        return found

    def _lookup(self, path: str) -> str:
        if self._exact is None:
            self._build()
        assert self._exact is not None
        exact = self._exact.get(path) or self._exact.get(path.rstrip("/"))
        if exact is not None:
            return exact
        for regex, template in self._patterns:
            if regex.match(path):
                return template
        return self.UNMATCHED

    def _build(self) -> None:
        templates: dict[str, str] = {}  # routing template -> budget name
        try:
            for path in self.app.openapi().get("paths", {}):
                templates[str(path)] = str(path)
        except Exception:
            logger.warning("no OpenAPI paths for rate limit keys", exc_info=True)
        for route in self.app.router.routes:
            path = getattr(route, "path", None)
            if isinstance(route, Mount) and path:
                templates[f"{path}/{{rest:path}}"] = f"{path}/*"
            elif isinstance(path, str) and path:
                templates[path] = path
        self._exact = {t: name for t, name in templates.items() if "{" not in t}
        dynamic = [(t, name) for t, name in templates.items() if "{" in t]
        dynamic.sort(key=lambda item: -len(re.sub(r"\{[^}]*\}", "", item[0])))
        self._patterns = [(compile_path(t)[0], name) for t, name in dynamic]


async def _too_many(send: Send, rule: Rule, retry: float) -> None:
    seconds = int(retry)
    body = json.dumps(
        {"detail": f"too many requests: limit {rule.describe()} per client; retry in {seconds} s"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(seconds).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
