"""Host check (DNS rebinding), security headers, CORS and HSTS: what every response gets.

**Why a Host check.** With ``auth.mode: none`` the API is open to whoever reaches the
port, and the port is on 127.0.0.1 only. A web page the operator happens to have open can
still reach it: the attacker's name (``evil.example``) first resolves to the attacker's
server, then, once the page is loaded, to 127.0.0.1 (DNS rebinding). The browser sees one
origin and lets the page read the answers, and the page can mute every alert. What the
attacker cannot change is the ``Host`` header the browser sends: it is the attacker's
name. So in ``none`` mode only loopback names are served (``localhost``, ``*.localhost``,
``127.0.0.0/8``, ``[::1]``, any port); anything else gets 421 Misdirected Request. With
``jwt`` the service may face a network, and ``server.security.allowed_hosts`` adds the
names it is reached by (exact, ``*.example.com`` for subdomains, or ``*`` for any name,
e.g. behind a proxy that checks the name itself).

A request without a ``Host`` header is refused (421) in both modes: every browser and
every HTTP/1.1 client sends one, so only a hand-made request lacks it (HTTP/1.0, or an
HTTP/1.1 one that httptools lets through), and without it the check cannot tell which
name was used.

**Headers.** ``HttpSecurityMiddleware`` adds, to every response that passes through
it (routes, errors, 404, static files, cached range answers, its own 421), the headers
below unless the response already has them (``/docs`` sets a looser CSP of its own):

* ``Content-Security-Policy``: the dashboard loads its script, styles and uPlot from our
  own origin, has no inline script and no ``style`` attributes in markup (app.js sets
  styles through the CSSOM, which CSP does not restrict), uses ``fetch`` and
  ``EventSource`` on our origin, and an empty ``data:`` icon. So: nothing but ``'self'``,
  ``data:`` images, and no framing (``frame-ancestors 'none'``, clickjacking).
* ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (older browsers),
  ``Referrer-Policy: no-referrer`` (URLs hold time ranges and silence ids; nothing a
  third party needs), ``Cross-Origin-Resource-Policy: same-origin`` (another site cannot
  embed our JSON as a script or image and read side channels).
* ``Strict-Transport-Security`` only when the request came over TLS
  (``scope["scheme"] == "https"``: uvicorn with a certificate, or a trusted proxy's
  ``X-Forwarded-Proto``). Sent over plain HTTP it would be ignored, and on a loopback
  service without TLS it must not pin browsers to https.

Responses produced by middleware outside this one (the body limit's 413, which is
deliberately outermost) and by uvicorn itself (400 on a malformed request) do not get
them; they are JSON or plain text, never a page.

**CORS** is off unless ``server.security.cors_origins`` lists origins: then Starlette's
``CORSMiddleware`` allows exactly those, with credentials (the login cookie), and no
other origin gets any ``Access-Control-Allow-*`` header.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysmon.security.hosts import HostPolicy

if TYPE_CHECKING:
    from sysmon.config import Settings

logger = logging.getLogger(__name__)

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS_HEADER = b"strict-transport-security"
_CACHE_LIMIT = 256  # distinct Host headers remembered (a flood of new ones just re-checks)


def install_http_security(app: FastAPI, settings: Settings) -> None:
    """CORS (when configured), then the Host check and headers around it (outermost of
    the two, so a foreign Host is refused before anything else runs)."""
    security = settings.server.security
    if security.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(security.cors_origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "X-API-Key"],
            max_age=600,
        )
    jwt = settings.auth.mode == "jwt"
    if security.allowed_hosts and not jwt:
        logger.warning(
            "server.security.allowed_hosts is ignored with auth.mode none: "
            "only loopback Host names are served"
        )
    app.add_middleware(
        HttpSecurityMiddleware,
        hosts=HostPolicy.build(security.allowed_hosts if jwt else ()),
        hsts_max_age=security.hsts_max_age_seconds,
    )


class HttpSecurityMiddleware:
    """Pure ASGI: 421 for a Host not served, security headers on every response."""

    def __init__(self, app: ASGIApp, hosts: HostPolicy, hsts_max_age: int) -> None:
        self.app = app
        self.hosts = hosts
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", DASHBOARD_CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        self.tls_headers = list(self.headers)
        if hsts_max_age > 0:
            self.tls_headers.append((HSTS_HEADER, f"max-age={hsts_max_age}".encode()))
        self._verdicts: dict[bytes | None, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        raw = _header(scope, b"host")
        if not self._host_served(raw):
            await self._refuse(scope, raw, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        extra = self.tls_headers if scope.get("scheme") == "https" else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _merged(message.get("headers", ()), extra)}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _host_served(self, raw: bytes | None) -> bool:
        verdict = self._verdicts.get(raw)
        if verdict is None:
            verdict = self.hosts.allows(None if raw is None else raw.decode("latin-1"))
            if len(self._verdicts) >= _CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[raw] = verdict
        return verdict

    async def _refuse(self, scope: Scope, raw: bytes | None, send: Send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = "none" if raw is None else repr(raw.decode("latin-1")[:100])
        body = json.dumps(
            {
                "detail": f"Host {shown} is not served here: use a loopback name "
                "(localhost, 127.0.0.1, [::1]), or with auth.mode jwt a name listed in "
                "server.security.allowed_hosts"
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *(self.tls_headers if scope.get("scheme") == "https" else self.headers),
        ]
        await send({"type": "http.response.start", "status": 421, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _merged(
    headers: Iterable[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` plus each of ``extra`` the response does not set itself."""
    out = list(headers)
    present = {name.lower() for name, _ in out}
    out.extend(item for item in extra if item[0] not in present)
    return out
