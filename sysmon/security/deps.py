"""FastAPI dependencies for routes: the caller, the admin check, the auth service.

``require_admin`` is the one place the admin role is enforced for routes; the route
coverage test finds admin routes by their dependency on it, so a new admin route is
tested for 403 without being listed anywhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from sysmon.security.auth import AUDITED
from sysmon.security.principal import LOCAL_ADMIN, Principal, principal_of
from sysmon.security.service import AuthService


async def get_principal(request: Request) -> Principal:
    """The authenticated caller (``AuthMiddleware`` put it in the scope).

    An app built without ``install_auth`` at all (a bare router under test) has no
    authentication, the Level 1 behaviour: its callers are the implicit local admin.
    Every app ``create_app`` builds has the middleware, which never lets a request reach
    a protected route without a principal.
    """
    principal = principal_of(request.scope)
    if principal is not None:
        return principal
    if not hasattr(request.app.state, "auth_mode"):
        return LOCAL_ADMIN
    raise HTTPException(
        status_code=401, detail="not authenticated", headers={"WWW-Authenticate": "Bearer"}
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    """403 unless the caller has the admin role."""
    if not principal.is_admin:
        raise HTTPException(status_code=403, detail="admin role required")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


async def get_auth(request: Request) -> AuthService:
    service: AuthService | None = getattr(request.app.state, "auth", None)
    if service is None:
        raise HTTPException(status_code=404, detail="authentication is off (auth.mode: none)")
    return service


AuthDep = Annotated[AuthService, Depends(get_auth)]


def source_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def mark_audited(request: Request) -> None:
    """This route audits its own event: the middleware need not add a generic one."""
    request.scope.setdefault("state", {})[AUDITED] = True
