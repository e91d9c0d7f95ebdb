"""Admin endpoints: API keys, users and the audit log (``require_admin`` on every one).

* ``POST /api/v1/keys`` ``{"name", "role"}`` -> the key, shown in this answer only
* ``GET /api/v1/keys`` (no secrets), ``DELETE /api/v1/keys/{id}`` (revoke)
* ``GET /api/v1/users``, ``POST /api/v1/users``, ``DELETE /api/v1/users/{name}``
  (the last admin cannot be deleted over the API: nobody could administer the service)
* ``GET /api/v1/audit?start=&end=&limit=`` newest first

With ``auth.mode: none`` there are no accounts and these answer 404. Writes run in worker
threads (hashing, SQLite) and audit their own events.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sysmon.api.errors import query_instant, unprocessable
from sysmon.security.credentials import ApiKey
from sysmon.security.deps import AdminDep, AuthDep, mark_audited, source_of
from sysmon.security.passwords import MAX_LENGTH, PasswordPolicyError
from sysmon.security.principal import Role
from sysmon.security.store import LastAdminError, User, UserExistsError

router = APIRouter(prefix="/api/v1", tags=["admin"])

DEFAULT_AUDIT_SECONDS = 7 * 86400.0
NO_STORE = {"Cache-Control": "no-store"}


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="What the key is for")
    role: Role = "viewer"


class KeyOut(BaseModel):
    id: int
    name: str
    role: Role
    prefix: str = Field(description="First characters of the key, to recognise it")
    created_at: float
    created_by: str | None
    revoked_at: float | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret: shown once, store it now")


class KeysOut(BaseModel):
    keys: list[KeyOut]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: Role = "viewer"
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class UserOut(BaseModel):
    name: str
    role: Role
    created_at: float


class UsersOut(BaseModel):
    users: list[UserOut]


class AuditEventOut(BaseModel):
    id: int
    ts: float
    event: str
    outcome: str
    actor: str | None
    role: str | None
    via: str | None
    source: str | None
    detail: dict[str, Any]


class AuditOut(BaseModel):
    start: float
    end: float
    events: list[AuditEventOut]


def _key(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        role=key.role,
        prefix=key.prefix,
        created_at=key.created_at,
        created_by=key.created_by,
        revoked_at=key.revoked_at,
    )


def _user(user: User) -> UserOut:
    return UserOut(name=user.name, role=user.role, created_at=user.created_at)


@router.post("/keys", status_code=201, response_model=KeyCreated, summary="Create an API key")
async def create_key(request: Request, body: KeyIn, admin: AdminDep, auth: AuthDep) -> KeyCreated:
    create = functools.partial(
        auth.accounts.create_key, body.name, body.role, by=admin, source=source_of(request)
    )
    key, secret = await anyio.to_thread.run_sync(create)
    mark_audited(request)
    return KeyCreated(**_key(key).model_dump(), key=secret)


@router.get("/keys", response_model=KeysOut, summary="API keys (never their secrets)")
async def list_keys(admin: AdminDep, auth: AuthDep) -> KeysOut:
    keys = await anyio.to_thread.run_sync(auth.accounts.list_keys)
    return KeysOut(keys=[_key(k) for k in keys])


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_key(
    request: Request,
    key_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    admin: AdminDep,
    auth: AuthDep,
) -> Response:
    revoke = functools.partial(
        auth.accounts.revoke_key, key_id, by=admin, source=source_of(request)
    )
    if await anyio.to_thread.run_sync(revoke) is None:
        raise HTTPException(status_code=404, detail=f"no active key {key_id}")
    mark_audited(request)
    return Response(status_code=204)


@router.get("/users", response_model=UsersOut, summary="Users and their roles")
async def list_users(admin: AdminDep, auth: AuthDep) -> UsersOut:
    users = await anyio.to_thread.run_sync(auth.accounts.list_users)
    return UsersOut(users=[_user(u) for u in users])


@router.post("/users", status_code=201, response_model=UserOut, summary="Create a user")
async def create_user(request: Request, body: UserIn, admin: AdminDep, auth: AuthDep) -> UserOut:
    create = functools.partial(
        auth.accounts.create_user,
        body.name,
        body.role,
        body.password,
        by=admin,
        source=source_of(request),
    )
    try:
        user = await anyio.to_thread.run_sync(create, limiter=auth.hashing)
    except UserExistsError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except PasswordPolicyError as exc:
        raise unprocessable("body", "password", str(exc)) from None
    except ValueError as exc:
        raise unprocessable("body", "name", str(exc)) from None
    mark_audited(request)
    return _user(user)


@router.delete("/users/{name}", status_code=204, summary="Delete a user (and end their logins)")
async def delete_user(
    request: Request,
    name: Annotated[str, Path(min_length=1, max_length=64)],
    admin: AdminDep,
    auth: AuthDep,
) -> Response:
    delete = functools.partial(auth.accounts.delete_user, name, by=admin, source=source_of(request))
    try:
        deleted = await anyio.to_thread.run_sync(delete)
    except LastAdminError as exc:
        raise HTTPException(status_code=409, detail=f"{exc}: create another admin first") from None
    if not deleted:
        raise HTTPException(status_code=404, detail=f"user {name!r} not found")
    mark_audited(request)
    return Response(status_code=204)


@router.get("/audit", response_model=AuditOut, summary="Audit events, newest first")
async def audit(
    admin: AdminDep,
    auth: AuthDep,
    start: Annotated[
        str | None, Query(description="Epoch seconds or ISO 8601; default end - 7 days")
    ] = None,
    end: Annotated[str | None, Query(description="Epoch seconds or ISO 8601; default now")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> AuditOut:
    end_ts = query_instant("end", end, time.time())
    start_ts = query_instant("start", start, end_ts - DEFAULT_AUDIT_SECONDS)
    if start_ts > end_ts:
        raise unprocessable("query", "start", "start must not be after end")
    events = await anyio.to_thread.run_sync(auth.audit.query, start_ts, end_ts, limit)
    return AuditOut(
        start=start_ts,
        end=end_ts,
        events=[AuditEventOut(**vars(e)) for e in events],
    )
