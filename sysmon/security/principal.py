"""Who is calling: the principal the authentication middleware puts in the request scope.

Roles are two and ordered: ``viewer`` reads metrics, processes and alerts; ``admin`` may
also silence, send test notifications and manage users, keys and the audit log. With
``auth.mode: none`` every request is the implicit ``LOCAL_ADMIN`` (Level 1: the Host
check keeps such a server to loopback clients).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Literal

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
Via = Literal["none", "jwt", "key", "session"]

SCOPE_KEY = "principal"


@dataclass(frozen=True)
class Principal:
    """``name`` is a user name, or ``key:<name>`` for an API key; ``via`` says how the
    request proved it (bearer JWT, API key, dashboard session cookie, or no auth)."""

    name: str
    role: Role
    via: Via
    key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


LOCAL_ADMIN = Principal(name="local", role="admin", via="none")


def principal_of(scope: MutableMapping[str, Any]) -> Principal | None:
    """The principal the middleware stored for this request, if any."""
    found = (scope.get("state") or {}).get(SCOPE_KEY)
    return found if isinstance(found, Principal) else None


def parse_role(value: str) -> Role:
    if value == "admin":
        return "admin"
    if value == "viewer":
        return "viewer"
    raise ValueError(f"role must be admin or viewer, not {value!r}")
