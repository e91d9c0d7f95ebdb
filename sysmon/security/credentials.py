"""Credentials other than passwords: refresh tokens, dashboard sessions, revoked access
tokens and API keys, in the authentication database (``AuthStore``).

Only digests of the secrets are stored (``tokens.digest``). Refresh tokens form
*families*: each rotation spends one token and adds its successor to the same family, so
when a spent token comes back (a copy was stolen and one side already used it) the whole
family is revoked and both the thief and the victim must log in again.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from sysmon.relational.tables import api_keys, refresh_tokens, revoked_jti, sessions, users
from sysmon.security.principal import Role, parse_role
from sysmon.security.store import AuthStore

Rotation = Literal["rotated", "reused", "invalid"]

_rt, _se, _k = refresh_tokens, sessions, api_keys
_SESSION_USER = (
    select(users.c.name, users.c.role)
    .select_from(_se.join(users, users.c.name == _se.c.user))
    .where(_se.c.id_hash == bindparam("id_hash"), _se.c.expires_at > bindparam("now"))
)
_KEY_COLUMNS = (_k.c.id, _k.c.name, _k.c.role, _k.c.prefix, _k.c.created_at, _k.c.created_by,
                _k.c.revoked_at)  # fmt: skip
_KEY_BY_HASH = select(*_KEY_COLUMNS).where(
    _k.c.key_hash == bindparam("key_hash"), _k.c.revoked_at.is_(None)
)
_INSERT_REFRESH = insert(_rt)
_REFRESH = select(
    _rt.c.family, _rt.c.user, _rt.c.expires_at, _rt.c.used_at, _rt.c.revoked_at
).where(_rt.c.token_hash == bindparam("token_hash"))
_REVOKE_FAMILY = (
    update(_rt)
    .where(_rt.c.family == bindparam("fam"), _rt.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
_SPEND_REFRESH = (
    update(_rt).where(_rt.c.token_hash == bindparam("old")).values(used_at=bindparam("now"))
)
_REVOKE_JTI = {
    "sqlite": sqlite_insert(revoked_jti).on_conflict_do_nothing(),
    "postgresql": pg_insert(revoked_jti).on_conflict_do_nothing(),
}
_INSERT_SESSION = insert(_se)
_SESSION_OWNER = select(_se.c.user).where(_se.c.id_hash == bindparam("id_hash"))
_DELETE_SESSION = sql_delete(_se).where(_se.c.id_hash == bindparam("id_hash"))
_PURGE = (
    sql_delete(_rt).where(_rt.c.expires_at <= bindparam("now")),
    sql_delete(_se).where(_se.c.expires_at <= bindparam("now")),
    sql_delete(revoked_jti).where(revoked_jti.c.expires_at <= bindparam("now")),
)
_INSERT_KEY = insert(_k)
_LIST_KEYS = select(*_KEY_COLUMNS).order_by(_k.c.id)
_REVOKE_KEY = (
    update(_k)
    .where(_k.c.id == bindparam("key_id"), _k.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
_KEY_BY_ID = select(*_KEY_COLUMNS).where(_k.c.id == bindparam("key_id"))


@dataclass(frozen=True)
class ApiKey:
    id: int
    name: str
    role: Role
    prefix: str
    created_at: float
    created_by: str | None
    revoked_at: float | None


class Credentials:
    def __init__(self, store: AuthStore) -> None:
        self.store = store

    def now(self) -> float:
        return self.store.now()

    def reader(self) -> AbstractContextManager[Connection]:
        return self.store.reader()

    def transaction(self) -> AbstractContextManager[Connection]:
        return self.store.transaction()

    # -- request-time lookups (event loop thread: single indexed reads) ------------------

    def session_user(self, id_hash: str) -> tuple[str, Role] | None:
        with self.reader() as conn:
            row = conn.execute(_SESSION_USER, {"id_hash": id_hash, "now": self.now()}).first()
        return None if row is None else (row[0], parse_role(row[1]))

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        with self.reader() as conn:
            row = conn.execute(_KEY_BY_HASH, {"key_hash": key_hash}).first()
        return None if row is None else _key(row)

    # -- refresh tokens, sessions, revoked access tokens ---------------------------------

    def add_refresh(self, token_hash: str, family: str, user: str, expires_at: float) -> None:
        with self.transaction() as tx:
            tx.execute(
                _INSERT_REFRESH,
                {
                    "token_hash": token_hash,
                    "family": family,
                    "user": user,
                    "issued_at": self.now(),
                    "expires_at": expires_at,
                },
            )

    def rotate_refresh(
        self, old_hash: str, new_hash: str, expires_at: float
    ) -> tuple[Rotation, str | None]:
        """Spend ``old_hash`` and store ``new_hash`` in its family, atomically.

        ``reused`` (with the user name): the token was already spent, so a copy is in
        someone else's hands; its whole family is revoked. ``invalid``: unknown, expired
        or revoked.
        """
        now = self.now()
        with self.transaction() as tx:
            row = tx.execute(_REFRESH, {"token_hash": old_hash}).first()
            if row is None:
                return "invalid", None
            family, user, expires, used_at, revoked_at = row
            if used_at is None and revoked_at is not None:
                return "invalid", None  # revoked (logout, or its family's reuse) but unused
            if used_at is not None:
                tx.execute(_REVOKE_FAMILY, {"now": now, "fam": family})
                return "reused", str(user)
            if expires <= now:
                return "invalid", None
            tx.execute(_SPEND_REFRESH, {"now": now, "old": old_hash})
            tx.execute(
                _INSERT_REFRESH,
                {
                    "token_hash": new_hash,
                    "family": family,
                    "user": user,
                    "issued_at": now,
                    "expires_at": expires_at,
                },
            )
            return "rotated", str(user)

    def revoke_refresh_family(self, token_hash: str) -> str | None:
        """Revoke the family of this token; the user name, or None if unknown."""
        with self.transaction() as tx:
            row = tx.execute(_REFRESH, {"token_hash": token_hash}).first()
            if row is None:
                return None
            tx.execute(_REVOKE_FAMILY, {"now": self.now(), "fam": row[0]})
            return str(row[1])

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        with self.transaction() as tx:
            tx.execute(_REVOKE_JTI[tx.dialect.name], {"jti": jti, "expires_at": expires_at})

    def add_session(self, id_hash: str, user: str, expires_at: float) -> None:
        with self.transaction() as tx:
            tx.execute(
                _INSERT_SESSION,
                {
                    "id_hash": id_hash,
                    "user": user,
                    "created_at": self.now(),
                    "expires_at": expires_at,
                },
            )

    def delete_session(self, id_hash: str) -> str | None:
        with self.transaction() as tx:
            user = tx.execute(_SESSION_OWNER, {"id_hash": id_hash}).scalar()
            tx.execute(_DELETE_SESSION, {"id_hash": id_hash})
        return None if user is None else str(user)

    def purge_expired(self) -> None:
        """Forget what can no longer be used (called on login; the tables stay small)."""
        now = self.now()
        with self.transaction() as tx:
            for statement in _PURGE:
                tx.execute(statement, {"now": now})

    # -- API keys ------------------------------------------------------------------------

    def add_key(
        self, name: str, role: Role, key_hash: str, prefix: str, created_by: str | None
    ) -> ApiKey:
        now = self.now()
        with self.transaction() as tx:
            result = tx.execute(
                _INSERT_KEY,
                {
                    "name": name,
                    "role": role,
                    "key_hash": key_hash,
                    "prefix": prefix,
                    "created_at": now,
                    "created_by": created_by,
                },
            )
            key_id = int((result.inserted_primary_key or (0,))[0] or 0)
        return ApiKey(key_id, name, role, prefix, now, created_by, None)

    def list_keys(self) -> list[ApiKey]:
        with self.reader() as conn:
            rows = conn.execute(_LIST_KEYS).all()
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: int) -> ApiKey | None:
        """Revoke an active key; None when there is no such active key."""
        with self.transaction() as tx:
            changed = tx.execute(_REVOKE_KEY, {"now": self.now(), "key_id": key_id}).rowcount
            row = tx.execute(_KEY_BY_ID, {"key_id": key_id}).first()
        return _key(row) if changed and row is not None else None


def _key(row: Sequence[Any]) -> ApiKey:
    revoked = row[6]
    return ApiKey(
        id=int(str(row[0])),
        name=str(row[1]),
        role=parse_role(str(row[2])),
        prefix=str(row[3]),
        created_at=float(str(row[4])),
        created_by=None if row[5] is None else str(row[5]),
        revoked_at=None if revoked is None else float(str(revoked)),
    )
