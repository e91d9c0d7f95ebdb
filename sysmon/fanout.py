"""Live ticks through Redis: every server process on any machine gets every tick.

The Unix socket (``sysmon.channel``) reaches the servers of one host and one data
directory. With ``redis.url`` set (``sysmon.fanout_config``), the agent also publishes
each frame, the *same bytes* as on the socket (two lengths, meta JSON, the ``/current``
body), to the Redis channel ``<key_prefix>:ticks:<host>`` (``<host>``: ``agent.host``,
default the hostname), and keeps the latest one under ``<key_prefix>:latest:<host>``
(expiring after a few intervals), so a server that starts between ticks answers
``/current`` at once, like a new socket connection.

A server with Redis configured reads its frames from Redis *instead of* the socket:
one source means one order and no tick twice, and API processes behind a load balancer,
on this host or others, serve the same ticks. ``redis.live_host`` names the agent host
a server follows (default: ``agent.host``, i.e. its own hostname unless set). The agent
keeps serving its socket, so local tools and servers without Redis still work.

Failure handling, each side on its own:

* agent: ``publish`` never blocks the tick. The latest frame waits in a one-slot
  mailbox for a sender thread (a newer frame replaces one not yet sent: live data has
  no use for a backlog). While Redis is down the thread retries with backoff (0.5 s
  doubling to 10 s); the failure is logged once and the recovery once.
* server: the subscriber reconnects with the same backoff; while it is disconnected,
  ``connected`` is false and ``last_error`` says why, so ``/api/v1/health`` reports the
  agent as unreachable through Redis (and ``degraded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysmon.channel import HEADER, MAX_FRAME_BYTES, Frame, TickSubscriber, encode_frame
from sysmon.secreturl import safe_url
from sysmon.serialize import from_json

if TYPE_CHECKING:
    from sysmon.api.feed import FrameSource
    from sysmon.config import Settings

logger = logging.getLogger(__name__)

RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 10.0
TIMEOUT_SECONDS = 2.0
HEALTH_CHECK_SECONDS = 5
"""A silent subscription PINGs Redis this often, so a dead link is noticed."""


def decode_frame(data: bytes) -> Frame:
    """A whole frame (as ``encode_frame`` made it) back into meta and body."""
    if len(data) < HEADER.size:
        raise ValueError("frame shorter than its header")
    meta_len, body_len = HEADER.unpack_from(data)
    if meta_len + body_len > MAX_FRAME_BYTES or HEADER.size + meta_len + body_len != len(data):
        raise ValueError(f"frame lengths {meta_len}+{body_len} do not match {len(data)} bytes")
    meta = from_json(data[HEADER.size : HEADER.size + meta_len])
    if not isinstance(meta, dict):
        raise ValueError("frame metadata is not an object")
    return meta, data[HEADER.size + meta_len :]


def live_host(settings: Settings) -> str:
    """The agent host whose channel a server reads: ``redis.live_host``, else
    ``agent.host`` (default: this machine's hostname), the name that agent publishes under."""
    return settings.redis.live_host or settings.agent.host_name


class Backoff:
    """0.5 s, 1 s, 2 s ... up to ``maximum``; ``reset`` after a success."""

    def __init__(self, first: float = RETRY_SECONDS, maximum: float = MAX_RETRY_SECONDS) -> None:
        self.first = first
        self.maximum = maximum
        self.current = first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self.current = self.first


# --- agent side ------------------------------------------------------------------------


class RedisTickPublisher:
    """Agent side: PUBLISH each frame and SET it as the latest (see the module doc)."""

    def __init__(
        self,
        url: str,
        channel: str,
        latest_key: str,
        latest_ttl_seconds: int,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.channel = channel
        self.latest_key = latest_key
        self._ttl = latest_ttl_seconds
        self._backoff = backoff or Backoff()
        self._pending: bytes | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.connected = False
        self.published = 0
        self.replaced = 0
        """Frames replaced by a newer one before they were sent (Redis slow or down)."""
        self.last_error: str | None = None
        self.latest_error: str | None = None
        """Why the latest-frame key was not stored while PUBLISH works (Redis out of
        memory refuses SET, not PUBLISH): subscribers still get every tick, a server
        that starts meanwhile waits for the next one."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisTickPublisher | None:
        config = settings.redis
        url = config.resolved_url()
        if url is None or not config.live:
            return None
        host = settings.agent.host_name  # the agent always publishes under its own name
        ttl = max(5, 3 * settings.collection.interval_seconds)
        return cls(url, config.channel(host), config.latest_key(host), ttl)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="redis-fanout", daemon=True)
        self._thread.start()

    def publish(self, meta: Mapping[str, Any], body: bytes) -> None:
        """Never blocks: the sender thread does the I/O."""
        self.publish_frame(encode_frame(meta, body))

    def publish_frame(self, frame: bytes) -> None:
        """``publish`` of a frame ``encode_frame`` already made."""
        with self._cond:
            if self._pending is not None:
                self.replaced += 1
            self._pending = frame
            self._cond.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is pending (if Redis answers) and stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return {
            "url": safe_url(self.url),
            "channel": self.channel,
            "connected": self.connected,
            "published": self.published,
            "replaced": self.replaced,
            "last_error": self.last_error,
            "latest_error": self.latest_error,
        }

    def _run(self) -> None:
        import redis

        client = redis.Redis.from_url(
            self.url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            client_name="sysmon-agent-fanout",
        )
        try:
            while True:
                with self._cond:
                    while self._pending is None and not self._stopping:
                        self._cond.wait()
                    frame, self._pending = self._pending, None
                    stopping = self._stopping
                if frame is not None:
                    self._send(client, frame, stopping)
                if stopping:
                    return
        finally:
            client.close()

    def _send(self, client: Any, frame: bytes, stopping: bool) -> None:
        import redis

        while True:
            try:
                pipe = client.pipeline(transaction=False)
                pipe.publish(self.channel, frame)
                pipe.set(self.latest_key, frame, ex=self._ttl)
                sent, stored = pipe.execute(raise_on_error=False)
                if isinstance(sent, Exception):
                    raise sent
            except (redis.RedisError, OSError) as exc:
                if self.connected or self.last_error is None:
                    logger.warning(
                        "live fan-out: cannot publish to redis %s: %s (retrying with backoff)",
                        safe_url(self.url),
                        exc,
                    )
                self.connected = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                if stopping:
                    return
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, self._backoff.next())
                    newer, self._pending = self._pending, None
                    stopping = self._stopping
                frame = newer if newer is not None else frame
                continue
            if not self.connected:
                if self.last_error is not None:
                    logger.info("live fan-out: publishing to redis again")
                self.connected = True
                self.last_error = None
                self._backoff.reset()
            self.published += 1
            self._stored(stored)
            return

    def _stored(self, outcome: Any) -> None:
        """Record the SET of the latest frame: one warning when it starts failing (no
        back-off: the connection and PUBLISH work), one line when it works again."""
        if isinstance(outcome, Exception):
            if self.latest_error is None:
                logger.warning(
                    "live fan-out: redis %s takes the published ticks but refuses to store "
                    "the latest one in %s: %s",
                    safe_url(self.url),
                    self.latest_key,
                    outcome,
                )
            self.latest_error = f"{type(outcome).__name__}: {outcome}"
        elif self.latest_error is not None:
            logger.info("live fan-out: storing the latest tick in redis again")
            self.latest_error = None


def agent_fanout(settings: Settings) -> RedisTickPublisher | None:
    return RedisTickPublisher.from_settings(settings)


# --- server side -----------------------------------------------------------------------


class RedisTickSubscriber:
    """Server side: a ``FrameSource`` reading the agent's frames from Redis.

    On each (re)connection it subscribes, then reads the latest frame (so ``/current``
    answers before the next tick), then delivers every published frame in order. A frame
    equal to the one delivered last (the latest key read just as it was published) is
    not delivered twice.
    """

    def __init__(
        self,
        url: str,
        channel: str,
        latest_key: str,
        on_frame: Callable[[dict[str, Any], bytes], None],
        backoff: Backoff | None = None,
        client_name: str = "sysmon-server-live",
    ) -> None:
        self.url = url
        self.channel = channel
        self.latest_key = latest_key
        self._on_frame = on_frame
        self._backoff = backoff or Backoff()
        self.client_name = client_name
        self.connected = False
        self.frames = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self._last: bytes | None = None

    def __str__(self) -> str:
        return f"redis {safe_url(self.url)} channel {self.channel}"

    async def run(self) -> None:
        from redis import asyncio as aioredis
        from redis.exceptions import RedisError

        while True:
            client = aioredis.Redis.from_url(
                self.url,
                socket_connect_timeout=TIMEOUT_SECONDS,
                socket_keepalive=True,
                health_check_interval=HEALTH_CHECK_SECONDS,
                client_name=self.client_name,
            )
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            # The session runs as its own task, waited for with ``asyncio.wait`` (which
            # does not pass our cancellation on): redis-py can swallow a cancel that
            # lands inside a pub/sub read, so a cancelled server is not left waiting on
            # it. Closing the connection below ends such a read for sure.
            session = asyncio.create_task(self._session(client, pubsub), name="redis-live")
            try:
                await asyncio.wait([session])
                session.result()
            except (RedisError, OSError) as exc:
                if self.connected or self.last_error is None:
                    logger.warning("live ticks: %s lost: %s", self, exc)
                self.last_error = f"redis {safe_url(self.url)} unreachable: {exc}"[:300]
            finally:
                was = self.connected
                self.connected = False
                session.cancel()
                # Typed in redis 8, untyped before: checked under both as a plain callable.
                close_pubsub: Callable[[], Awaitable[object]] = pubsub.aclose
                with contextlib.suppress(Exception):
                    await close_pubsub()
                with contextlib.suppress(Exception):
                    await client.aclose()
                if not session.done():
                    await asyncio.wait([session], timeout=1.0)
                if session.done() and not session.cancelled():
                    session.exception()  # retrieved: its error was handled above or moot
                if was:
                    self.reconnects += 1
            await asyncio.sleep(self._backoff.next())

    async def _session(self, client: Any, pubsub: Any) -> None:
        await pubsub.subscribe(self.channel)
        latest = await client.get(self.latest_key)
        if isinstance(latest, bytes):
            self._deliver(latest)
        if self.last_error is not None:
            logger.info("live ticks: %s connected again", self)
        self.connected = True
        self.last_error = None
        self._backoff.reset()
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None and message.get("type") == "message":
                self._deliver(message["data"])

    def _deliver(self, data: bytes) -> None:
        if data == self._last:
            return
        try:
            meta, body = decode_frame(data)
        except ValueError as exc:
            logger.warning("live ticks: skipped a bad frame from %s: %s", self, exc)
            return
        self._last = data
        self.frames += 1
        self._on_frame(meta, body)


def server_source(
    settings: Settings,
    on_frame: Callable[[dict[str, Any], bytes], None],
    socket_file: Path,
    *,
    force_socket: bool = False,
) -> FrameSource:
    """Where a server reads ticks: Redis when ``redis.url`` is set (and ``redis.live``),
    else the agent's Unix socket. ``force_socket``: a caller that named the socket."""
    config = settings.redis
    url = config.resolved_url()
    if force_socket or url is None or not config.live:
        return TickSubscriber(socket_file, on_frame)
    host = live_host(settings)
    return RedisTickSubscriber(url, config.channel(host), config.latest_key(host), on_frame)


def describe_source(source: FrameSource) -> str:
    path = getattr(source, "path", None)
    return str(path) if path is not None else str(source)
