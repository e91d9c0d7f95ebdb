"""Authentication and roles: ``AuthMiddleware`` and ``install_auth``.

Deny by default: with ``auth.mode: jwt`` the middleware refuses (401 JSON, with
``WWW-Authenticate: Bearer``) every request that is not on ``PUBLIC`` and does not prove
who it is, before routing. A new route is therefore protected without anyone remembering
to, and so are answers that never reach routing: the range cache sits inside this layer,
and the plain Starlette ``FAST_ROUTES`` and static mounts bypass FastAPI dependencies.

A request proves who it is with, in this order of precedence (the first one present is the
only one tried, so a bad bearer token never falls back to a cookie):

* ``Authorization: Bearer <access JWT>`` or ``Authorization: Bearer sysmon_<key>``,
* ``X-API-Key: sysmon_<key>``,
* the dashboard session cookie. Browsers send cookies by themselves, so a state-changing
  request (anything but GET, HEAD, OPTIONS) authenticated by the cookie must also carry
  ``X-CSRF-Token`` equal to the session's CSRF token, which only a page of our own origin
  can read (from the ``sysmon_csrf`` cookie or the login answer); otherwise 403.

The principal goes to ``scope["state"]["principal"]`` for routes (``sysmon.security.deps``).
The middleware audits state-changing requests (a success by an admin, or any 403) as the
answer starts, before the caller sees it; routes that audit their own events (keys,
users) set ``request.state.audited`` so they are not recorded twice.

With ``auth.mode: none`` (Level 1, loopback only) every request is ``LOCAL_ADMIN``.

``PUBLIC``, and why each entry: health is for load balancers and probes that hold no
credentials; the auth endpoints take the credentials themselves; ``/`` and ``/login`` are
HTML shells and ``/static/`` scripts and styles that hold no data (the page must load to
show a login form). ``/docs``, ``/redoc`` and ``/openapi.json`` are *not* public: they map
the whole API for an attacker, and a logged-in browser opens them with its session
cookie. Each entry names its methods, so a POST to ``/`` is refused, not routed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysmon.channel import data_dir
from sysmon.relational.database import error_text
from sysmon.security.principal import LOCAL_ADMIN, SCOPE_KEY, Principal
from sysmon.security.service import AuthService
from sysmon.security.tokens import load_signing_key, signing_key_path

if TYPE_CHECKING:
    from sysmon.config import Settings

logger = logging.getLogger(__name__)

READ = frozenset({"GET", "HEAD"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC: dict[str, frozenset[str]] = {
    "/api/v1/health": READ,
    "/api/v1/auth/token": frozenset({"POST"}),
    "/api/v1/auth/refresh": frozenset({"POST"}),
    "/api/v1/auth/login": frozenset({"POST"}),
    "/api/v1/auth/logout": frozenset({"POST"}),
    "/": READ,
    "/login": READ,
}
PUBLIC_PREFIXES: dict[str, frozenset[str]] = {"/static/": READ}

SESSION_COOKIE = "sysmon_session"
CSRF_COOKIE = "sysmon_csrf"
CSRF_HEADER = "x-csrf-token"
AUDITED = "audited"


def is_public(method: str, path: str) -> bool:
    allowed = PUBLIC.get(path)
    if allowed is not None:
        return method in allowed
    return any(path.startswith(p) and method in m for p, m in PUBLIC_PREFIXES.items())


def client_address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


class AuthMiddleware:
    def __init__(self, app: ASGIApp, service: AuthService | None) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        service = self.service
        if service is None:
            state[SCOPE_KEY] = LOCAL_ADMIN
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        # The path exactly as Starlette's router sees it (root_path removed): what is
        # public here is what the router routes, with no normalisation of ours to differ.
        if is_public(method, get_route_path(scope)):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            principal, session = self._authenticate(service, headers)
        except SQLAlchemyError as exc:
            logger.error("authentication store unavailable: %s", error_text(exc))
            await self._refuse(scope, receive, send, 503, "authentication store unavailable")
            return
        if principal is None:
            await self._refuse(scope, receive, send, 401, "not authenticated")
            return
        unsafe = method not in SAFE_METHODS
        if (
            unsafe
            and session is not None
            and not service.csrf_ok(session, headers.get(CSRF_HEADER))
        ):
            await self._audit(service, scope, principal, 403, reason="csrf")
            await self._refuse(scope, receive, send, 403, "missing or wrong X-CSRF-Token header")
            return
        state[SCOPE_KEY] = principal
        if not unsafe:
            await self.app(scope, receive, send)
            return

        async def audit_then_send(message: Message) -> None:
            # Audited before the caller hears of the result: the row exists once the
            # client knows the action happened, and rows keep the order of the actions.
            if message["type"] == "http.response.start":
                status = message["status"]
                audited = state.get(AUDITED)
                if status == 403 or (principal.is_admin and 200 <= status < 400 and not audited):
                    await self._audit(service, scope, principal, status)
            await send(message)

        await self.app(scope, receive, audit_then_send)

    @staticmethod
    def _authenticate(
        service: AuthService, headers: Headers
    ) -> tuple[Principal | None, str | None]:
        """The principal (or None) and, when it came from the cookie, the session secret."""
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None, None
            return service.authenticate_bearer(token.strip()), None
        key = headers.get("x-api-key")
        if key is not None:
            return service.authenticate_key(key.strip()), None
        secret = cookie_parser(headers.get("cookie", "")).get(SESSION_COOKIE)
        if secret:
            return service.authenticate_session(secret), secret
        return None, None

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": detail})
            return
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        await JSONResponse({"detail": detail}, status_code=status, headers=headers)(
            scope, receive, send
        )

    @staticmethod
    async def _audit(
        service: AuthService, scope: Scope, principal: Principal, status: int, **detail: str
    ) -> None:
        record = functools.partial(
            service.audit.record,
            "request",
            outcome="success" if status < 400 else "denied",
            principal=principal,
            source=client_address(scope),
            method=scope.get("method"),
            path=scope.get("path"),
            status=status,
            **detail,
        )
        await anyio.to_thread.run_sync(record)


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Add ``AuthMiddleware``. With ``jwt``, load the signing key (made on first start)
    and open the authentication database now, so a bad key file stops the server before
    it serves anything (``ConfigError``)."""
    app.state.auth_mode = settings.auth.mode
    service: AuthService | None = None
    if settings.auth.mode == "jwt":
        folder = data_dir(settings.database.path)
        key = load_signing_key(
            settings.auth.signing_key_env, signing_key_path(settings.auth.signing_key_file, folder)
        )
        service = AuthService.open(
            settings.auth, folder, key, url=settings.relational.resolved_url()
        )
        _close_on_shutdown(app, service)
        _document_security(app)
    app.state.auth = service
    app.add_middleware(AuthMiddleware, service=service)


def _close_on_shutdown(app: FastAPI, service: AuthService) -> None:
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(the_app: Any) -> AsyncIterator[Any]:
        try:
            async with inner(the_app) as state:
                yield state
        finally:
            service.close()

    app.router.lifespan_context = lifespan


SECURITY_SCHEMES: dict[str, Any] = {
    "OAuth2Password": {
        "type": "oauth2",
        "flows": {"password": {"tokenUrl": "/api/v1/auth/token", "scopes": {}}},
    },
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
}


def _document_security(app: FastAPI) -> None:
    """Say in the OpenAPI document what the middleware enforces (Swagger UI's Authorize
    button logs in with the password flow); public operations say they need nothing."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if is_public(method.upper(), path):
                    operation["security"] = []
        return schema

    setattr(app, "openapi", openapi)  # noqa: B010 (mypy refuses assigning to a method)
