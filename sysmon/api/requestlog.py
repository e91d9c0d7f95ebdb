"""One structured log line per HTTP request, and the server's JSON log file.

**Access lines.** ``RequestLogMiddleware`` logs each request at INFO to ``sysmon.access``
once the response is over (for the live stream: when the client leaves), with the fields
a log pipeline filters on: ``request_id``, ``method``, ``route`` (the matched template,
``/api/v1/metrics/{name}``, so a dashboard can group without exploding on values; null
when nothing matched or a cache answered first), ``path``, ``query``, ``status``,
``latency_ms``, ``bytes`` and ``client`` (the real client behind a trusted proxy: uvicorn
applies ``X-Forwarded-For`` first). It logs only when ``logging.file`` or
``server.access_log`` is on; the console does not show these lines (``sysmon.logs``).

**Request id.** A client's or proxy's ``X-Request-ID`` (nginx: ``$request_id``) is kept
when it is a plain token (``[A-Za-z0-9._-]``, at most 128 characters, so nothing can be
injected into a log line), otherwise one is generated; either way the response carries
it, so a user's report, the proxy's log and ours meet on one id.

**Secrets.** The query string is logged with the value of every secret-looking key
(``token``, ``access_token``, ``password``, ``api_key``, ...) replaced by ``***``; headers
(cookies, ``Authorization``) and bodies are never logged.

**The file.** The middleware also sees the ASGI lifespan: the server's JSON file log
(``logging.file``) opens at start-up and closes at shutdown, so an app built in a test
leaves no handler behind.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysmon.collectors.redact import is_secret_key
from sysmon.logs import ACCESS_LOGGER, add_file_log, remove_file_log

if TYPE_CHECKING:
    from sysmon.config import LoggingConfig, Settings

access_log = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER = REQUEST_ID_HEADER.lower().encode()
_VALID_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
REDACTED = "***"


def install_request_log(app: FastAPI, settings: Settings) -> None:
    """Add the middleware (call last in ``create_app``: outermost, it times everything)."""
    workers = settings.server.workers
    process = "server" if workers == 1 else f"server-{os.getpid()}"
    app.add_middleware(
        RequestLogMiddleware,
        enabled=bool(settings.logging.file) or settings.server.access_log,
        file_log=settings.logging if settings.logging.file else None,
        process=process,
    )


def request_id(raw: bytes | None) -> str:
    """The caller's id if it is a plain token, else a new one (32 hex digits)."""
    if raw is not None and _VALID_ID.match(raw):
        return raw.decode("ascii")
    return uuid.uuid4().hex


def redacted_query(raw: bytes) -> str:
    """The query string with secret values masked (``token=***``)."""
    if not raw:
        return ""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, REDACTED if is_secret_key(k) else v) for k, v in pairs], safe="*/:,")


class RequestLogMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        enabled: bool,
        file_log: LoggingConfig | None = None,
        process: str = "server",
    ) -> None:
        self.app = app
        self._enabled = enabled
        self._file_log = file_log
        self._process = process

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self._file_log is not None:
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(_header(scope, _HEADER))
        started = time.perf_counter()
        status = 500
        sent = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                headers.append((_HEADER, rid.encode("ascii")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self._enabled:
                self._log(scope, rid, status, sent, started)

    def _log(self, scope: Scope, rid: str, status: int, sent: int, started: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        route = scope.get("route")
        template = getattr(route, "path", None) if route is not None else None
        client = scope.get("client")
        path = scope.get("path", "")
        method = scope.get("method", "")
        access_log.info(
            "%s %s %d %.1fms",
            method,
            path,
            status,
            latency_ms,
            extra={
                "request_id": rid,
                "method": method,
                "route": template if isinstance(template, str) else None,
                "path": path,
                "query": redacted_query(scope.get("query_string", b"")),
                "status": status,
                "latency_ms": latency_ms,
                "bytes": sent,
                "client": client[0] if client else None,
            },
        )

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        cfg = self._file_log
        assert cfg is not None and cfg.file
        handler: logging.Handler | None = None

        async def receive_opening() -> Message:
            nonlocal handler
            message = await receive()
            if message["type"] == "lifespan.startup" and handler is None:
                handler = add_file_log(
                    cfg.file or "",
                    self._process,
                    max_bytes=cfg.file_max_bytes,
                    backups=cfg.file_backups,
                )
            return message

        async def send_closing(message: Message) -> None:
            nonlocal handler
            await send(message)
            if message["type"].startswith("lifespan.shutdown") and handler is not None:
                remove_file_log(handler)
                handler = None

        try:
            await self.app(scope, receive_opening, send_closing)
        finally:
            # The app's lifespan failed or was cancelled before reporting shutdown.
            if handler is not None:
                remove_file_log(handler)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None
