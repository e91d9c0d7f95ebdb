"""Keep one HTTP server process from being starved by its clients.

Measured before this module: 19,950 idle TCP connections used up the process's file
descriptors; a 50 MB POST doubled the RSS and came back in the error response; range answers
kept in the response cache held ~180 MiB. ``HttpLimits`` bounds each of those, and two
pieces enforce the bounds:

* ``uvicorn_options(limits, event_loop)``: the keyword arguments for
  ``uvicorn.Config``/``uvicorn.run``.
  What uvicorn (0.55, read in ``uvicorn/protocols/http/httptools_impl.py``) already
  enforces is passed through: ``timeout_keep_alive`` (idle time after a response). What
  it lacks is added by ``LimitedHttpToolsProtocol`` (``http=``):

  - no timeout before the first request: the keep-alive timer starts only once a response
    has been sent, so a connection that sends nothing, or half a header line, is held for
    ever (slowloris). ``header_timeout_seconds`` closes it.
  - no header size limit: httptools buffers an incomplete header line without bound.
    Past ``max_header_bytes`` received while the headers are still incomplete, the
    answer is 431 (JSON ``detail``) and the connection is closed. Like h11's limit this
    bounds memory; it is not an exact size of the headers.
  - no connection cap: ``limit_concurrency`` still accepts every socket (a descriptor each)
    and answers 503 to every request, on every connection, once the count of open
    connections reaches it, so idle sockets would deny service to the busy ones. Instead a
    connection beyond ``max_connections`` is closed at once, without a response: a 503
    would mean reading its request first, and the connections already open keep working.
  - after a response sent before the request body was read (our 413, or a route that
    ignores a body), the parser discards the rest of the body, but every read cancels the
    keep-alive timer, so dripping bytes would hold the connection for ever. Here the
    discarding lasts at most ``keep_alive_timeout_seconds`` after the response; the client
    has had its answer by then.

  The parser is httptools (llhttp, in C), uvicorn's default when it is installed (it is a
  requirement): it took ``/api/v1/metrics/current`` from 5,150 to 9,070 req/s at 100
  connections on one worker, against h11 (pure Python) with the same three additions
  (bench/README.md).

* ``BodyLimitMiddleware`` (pure ASGI, installed by ``install_limits``): 413 before routing
  when ``Content-Length`` is too large, or as soon as a streamed (chunked) body passes the
  limit; the body is never buffered here, never handed on past the limit, never echoed.
  (FastAPI's own ``max_body_size`` answers plain text, and only once a route reads or
  answers; this answers in the API's JSON error shape before any route runs.)

Every bound is per server process: with ``server.workers`` > 1 each worker has its own.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any

import httptools
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from sysmon.security.config import HttpLimits

logger = logging.getLogger(__name__)


def uvicorn_options(limits: HttpLimits, event_loop: str) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``/``uvicorn.run`` that enforce ``limits``, on
    ``event_loop`` (``server.event_loop``; uvicorn's own default would take uvloop whenever
    it is installed).

    ``http`` is a ``functools.partial`` of ``LimitedHttpToolsProtocol`` (uvicorn only calls it),
    so the options pickle for ``workers`` > 1.
    """
    return {
        "http": functools.partial(LimitedHttpToolsProtocol, limits=limits),
        "timeout_keep_alive": limits.keep_alive_timeout_seconds,
        "loop": event_loop,
    }


def detail_json(text: str) -> bytes:
    """The API's error shape, ``{"detail": text}``, for answers made below FastAPI."""
    return json.dumps({"detail": text}).encode()


def install_limits(app: FastAPI, limits: HttpLimits) -> None:
    """Add ``BodyLimitMiddleware``; call it last of the ``add_middleware`` calls (outermost)."""
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=limits.max_body_bytes)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a connection cap, a header timeout, a header size
    limit and a bounded drain (see the module docstring).

    Invariant added: while the client owes us a request (``owes_request``: its headers
    are incomplete, or every request so far has been answered and nothing more has
    arrived) a timer runs: uvicorn's keep-alive timer from the last response until a
    byte arrives, ours (``header_timeout_seconds``) from the connection or that first
    byte until the headers are complete. An answer the client waits for (a slow query,
    the live stream) is never timed. Bytes of incomplete headers are counted against
    ``max_header_bytes``.
    """

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.refused = False
        self.header_timer: asyncio.TimerHandle | None = None
        self.in_headers = False
        """A request line or headers have begun and are not complete."""
        self.in_body = False
        """Headers complete, the body (possibly empty) not yet all received."""
        self.header_bytes = 0
        self.ended_in_chunk = False

    def owes_request(self) -> bool:
        if self.in_headers:
            return True
        if self.in_body:
            return False
        answered = self.cycle is None or self.cycle.response_complete
        return answered and not self.pipeline

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # ``self.connections`` is every open connection of this server (HTTP and WebSocket);
        # this one is not in it yet.
        if len(self.connections) >= self.limits.max_connections:
            self.refused = True
            self.transport = transport
            transport.close()
            _refusals.note(self.limits.max_connections)
            return
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if not self.refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused or self.parser is None:
            return
        self.ended_in_chunk = False
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and self.in_body:
            # Answered before the body was read: the parser discards the rest, but uvicorn's
            # data_received would cancel the keep-alive timer on every read. Keep it.
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()
                return
        else:
            super().data_received(data)
        if self.transport.is_closing():
            self._cancel_header_timer()
            return
        if self.in_headers:
            # A chunk that also ended the previous request may hold its body: only later
            # chunks count (what escapes the count is one read).
            if not self.ended_in_chunk:
                self.header_bytes += len(data)
            if self.header_bytes > self.limits.max_header_bytes:
                self._refuse_headers()
                return
        if not self.owes_request():
            self._cancel_header_timer()
        elif self.timeout_keep_alive_task is None:
            self._arm_header_timer()  # bytes of a new request arrived: uvicorn's timer is off

    # Parser callbacks (httptools calls them from feed_data).
    def on_message_begin(self) -> None:
        self._unset_keepalive_if_required()  # a new request, also after a drained body
        self.in_headers = True
        self.header_bytes = 0
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.in_headers = False
        self.in_body = True
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_body = False
        self.ended_in_chunk = True
        super().on_message_complete()

    def _refuse_headers(self) -> None:
        """431 in the API's JSON error shape, then close: the headers are not read on."""
        body = detail_json(f"request headers larger than {self.limits.max_header_bytes} bytes")
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + body
        )
        self.transport.close()
        self._cancel_header_timer()

    def _arm_header_timer(self) -> None:
        if self.header_timer is None:
            self.header_timer = self.loop.call_later(
                self.limits.header_timeout_seconds, self._header_timeout
            )

    def _cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _header_timeout(self) -> None:
        self.header_timer = None
        if self.owes_request() and not self.transport.is_closing():
            logger.debug("closing %s: no complete request headers in time", self.client)
            self.transport.close()


class _Refusals:
    """Warn about refused connections at most every ``every`` seconds (a flood must not
    become a log flood)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.count = 0
        self.last: float | None = None

    def note(self, cap: int) -> None:
        self.count += 1
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every:
            logger.warning(
                "connection limit (%d) reached: refused %d connection(s)", cap, self.count
            )
            self.count = 0
            self.last = now


_refusals = _Refusals()


class BodyLimitMiddleware:
    """Answer 413 to a request body larger than ``max_body_bytes``, without reading it.

    A ``Content-Length`` over the limit is answered before the app runs. A body without
    one (chunked) is passed on chunk by chunk, counted; the chunk that crosses the limit
    is not passed on: the client gets the 413 and the app gets ``http.disconnect``, and
    anything the app still sends is dropped. Nothing is buffered here. The server reads
    and discards what the client still sends, for at most the keep-alive timeout.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.rejection = detail_json(f"request body larger than {max_body_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > self.max_body_bytes:
            await self._reject(send)
            return

        received = 0
        started = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    rejected = True
                    if not started:
                        await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if rejected and not started:
                return  # the client has its 413; whatever the app answers goes nowhere
            started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not rejected:
                raise
            # The app failed on the body we cut off (e.g. ClientDisconnect); answered.
            logger.debug("app raised after its request body was cut off", exc_info=True)

    async def _reject(self, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self.rejection)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self.rejection})


def _content_length(scope: Scope) -> int:
    """The declared body length, or 0 when absent or unreadable (the body is counted)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
