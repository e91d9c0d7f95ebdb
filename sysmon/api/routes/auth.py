"""``/api/v1/auth``: tokens for API clients, the dashboard's cookie session, who am I.

* ``POST /token``   OAuth2 password form -> access JWT + refresh token
* ``POST /refresh`` a refresh token -> a new pair; the old token is spent (rotation)
* ``POST /login``   form or JSON username/password -> session cookie + CSRF cookie
* ``POST /logout``  ends what it is given: refresh token (body), access token (header),
  session (cookie); always 204, and clears the cookies
* ``GET  /me``      the authenticated caller

Everything here but ``/me`` is public (``sysmon.security.auth.PUBLIC``): these endpoints
check the credentials themselves. Token answers carry ``Cache-Control: no-store``.
Password checks run in worker threads, two at a time (``AuthService.hashing``).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import cookie_parser

from sysmon.api.errors import unprocessable
from sysmon.security.auth import CSRF_COOKIE, SESSION_COOKIE
from sysmon.security.deps import AuthDep, PrincipalDep, source_of
from sysmon.security.principal import Role
from sysmon.security.service import AuthError, AuthService, TokenPair
from sysmon.security.store import User

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
UNAUTHORIZED: dict[int | str, dict[str, Any]] = {401: {"description": "Wrong credentials"}}


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_token: str


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str | None = Field(default=None, max_length=200)


class LoginResponse(BaseModel):
    user: str
    role: Role
    csrf_token: str = Field(description="Send as X-CSRF-Token on POST/PUT/PATCH/DELETE")
    expires_in: int


class Me(BaseModel):
    name: str
    role: Role
    via: str


def _refused(exc: AuthError) -> HTTPException:
    return HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"})


async def _check_password(
    auth: AuthService, request: Request, name: str, password: str, via: str
) -> User:
    check = functools.partial(
        auth.check_password, name, password, source=source_of(request), via=via
    )
    try:
        return await anyio.to_thread.run_sync(check, limiter=auth.hashing)
    except AuthError as exc:
        raise _refused(exc) from None


def _pair(pair: TokenPair) -> JSONResponse:
    body = TokenResponse(
        access_token=pair.access_token, expires_in=pair.expires_in, refresh_token=pair.refresh_token
    )
    return JSONResponse(body.model_dump(), headers=NO_STORE)


@router.post(
    "/token",
    response_model=TokenResponse,
    responses=UNAUTHORIZED,
    summary="Access JWT and refresh token for a username and password (OAuth2 password form)",
)
async def token(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], auth: AuthDep
) -> JSONResponse:
    user = await _check_password(auth, request, form.username, form.password, "token")
    return _pair(await anyio.to_thread.run_sync(auth.issue_pair, user))


@router.post(
    "/refresh",
    response_model=TokenResponse,
    responses=UNAUTHORIZED,
    summary="A new token pair for a refresh token (which is spent; reuse revokes the login)",
)
async def refresh(request: Request, body: RefreshIn, auth: AuthDep) -> JSONResponse:
    rotate = functools.partial(auth.refresh, body.refresh_token, source=source_of(request))
    try:
        return _pair(await anyio.to_thread.run_sync(rotate))
    except AuthError as exc:
        raise _refused(exc) from None


LOGIN_BODY = {
    "required": True,
    "content": {
        media: {
            "schema": {
                "type": "object",
                "required": ["username", "password"],
                "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
            }
        }
        for media in ("application/json", "application/x-www-form-urlencoded")
    },
}


async def _login_fields(request: Request) -> tuple[str, str]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data: Any = await request.json()
        except ValueError:
            raise unprocessable("body", "username", "body is not valid JSON") from None
    else:
        data = dict(await request.form())
    if not isinstance(data, dict):
        raise unprocessable("body", "username", "expected username and password")
    return _field(data, "username"), _field(data, "password")


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise unprocessable("body", name, f"{name} is required (a string)")
    return value


@router.post(
    "/login",
    response_model=LoginResponse,
    responses={**UNAUTHORIZED, 403: {"description": "Cross-site login attempt"}},
    openapi_extra={"requestBody": LOGIN_BODY},
    summary="Dashboard login: sets the session cookie (HttpOnly) and the CSRF cookie",
)
async def login(request: Request, auth: AuthDep) -> JSONResponse:
    # A page elsewhere must not log the browser into an account of its choosing.
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(status_code=403, detail="cross-site login refused")
    username, password = await _login_fields(request)
    user = await _check_password(auth, request, username, password, "session")
    session = await anyio.to_thread.run_sync(auth.start_session, user)
    body = LoginResponse(
        user=session.user, role=session.role, csrf_token=session.csrf, expires_in=session.max_age
    )
    response = JSONResponse(body.model_dump(), headers=NO_STORE)
    secure = request.scope.get("scheme") == "https"
    for name, value, http_only in (
        (SESSION_COOKIE, session.secret, True),
        (CSRF_COOKIE, session.csrf, False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=session.max_age,
            path="/",
            secure=secure,
            httponly=http_only,
            samesite="strict",
        )
    return response


@router.post("/logout", status_code=204, summary="End a login: refresh token, access token, cookie")
async def logout(request: Request, auth: AuthDep, body: LogoutIn | None = None) -> Response:
    authorization = request.headers.get("authorization", "")
    scheme, _, access = authorization.partition(" ")
    end = functools.partial(
        auth.logout,
        refresh_token=body.refresh_token if body else None,
        access_token=access.strip() if scheme.lower() == "bearer" else None,
        session_secret=cookie_parser(request.headers.get("cookie", "")).get(SESSION_COOKIE),
        source=source_of(request),
    )
    await anyio.to_thread.run_sync(end)
    response = Response(status_code=204, headers=NO_STORE)
    secure = request.scope.get("scheme") == "https"
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, samesite="strict")
    return response


@router.get("/me", response_model=Me, summary="The authenticated caller: name, role, how")
async def me(principal: PrincipalDep) -> Me:
    return Me(name=principal.name, role=principal.role, via=principal.via)
