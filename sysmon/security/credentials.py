"""Credentials other than passwords: refresh tokens, dashboard sessions, revoked access
tokens and API keys, in the authentication database (``AuthStore``).

Only digests of the secrets are stored (``tokens.digest``). Refresh tokens form
*families*: each rotation spends one token and adds its successor to the same family, so
when a spent token comes back (a copy was stolen and one side already used it) the whole
family is revoked and both the thief and the victim must log in again.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal

from sysmon.security.principal import Role, parse_role
from sysmon.security.store import AuthStore

Rotation = Literal["rotated", "reused", "invalid"]


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

    def reader(self) -> sqlite3.Connection:
        return self.store.reader()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return self.store.transaction()

    # -- request-time lookups (event loop thread: single indexed reads) ------------------

    def session_user(self, id_hash: str) -> tuple[str, Role] | None:
        row = (
            self.reader()
            .execute(
                "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user "
                "WHERE s.id_hash = ? AND s.expires_at > ?",
                (id_hash, self.now()),
            )
            .fetchone()
        )
        return None if row is None else (row[0], parse_role(row[1]))

    def key_by_hash(self, key_hash: str) -> ApiKey | None:
        row = (
            self.reader()
            .execute(
                "SELECT id, name, role, prefix, created_at, created_by, revoked_at FROM api_keys "
                "WHERE key_hash = ? AND revoked_at IS NULL",
                (key_hash,),
            )
            .fetchone()
        )
        return None if row is None else _key(row)

    # -- refresh tokens, sessions, revoked access tokens ---------------------------------

    def add_refresh(self, token_hash: str, family: str, user: str, expires_at: float) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family, user, issued_at, expires_at) "
                "VALUES (?,?,?,?,?)",
                (token_hash, family, user, self.now(), expires_at),
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
            row = tx.execute(
                "SELECT family, user, expires_at, used_at, revoked_at FROM refresh_tokens "
                "WHERE token_hash = ?",
                (old_hash,),
            ).fetchone()
            if row is None:
                return "invalid", None
            family, user, expires, used_at, revoked_at = row
            if used_at is None and revoked_at is not None:
                return "invalid", None  # revoked (logout, or its family's reuse) but unused
            if used_at is not None:
                tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = ? "
                    "WHERE family = ? AND revoked_at IS NULL",
                    (now, family),
                )
                return "reused", str(user)
            if expires <= now:
                return "invalid", None
            tx.execute(
                "UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ?", (now, old_hash)
            )
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family, user, issued_at, expires_at) "
                "VALUES (?,?,?,?,?)",
                (new_hash, family, user, now, expires_at),
            )
            return "rotated", str(user)

    def revoke_refresh_family(self, token_hash: str) -> str | None:
        """Revoke the family of this token; the user name, or None if unknown."""
        with self.transaction() as tx:
            row = tx.execute(
                "SELECT family, user FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if row is None:
                return None
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL",
                (self.now(), row[0]),
            )
            return str(row[1])

    def revoke_jti(self, jti: str, expires_at: float) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT OR IGNORE INTO revoked_jti (jti, expires_at) VALUES (?, ?)",
                (jti, expires_at),
            )

    def add_session(self, id_hash: str, user: str, expires_at: float) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO sessions (id_hash, user, created_at, expires_at) VALUES (?,?,?,?)",
                (id_hash, user, self.now(), expires_at),
            )

    def delete_session(self, id_hash: str) -> str | None:
        with self.transaction() as tx:
            row = tx.execute("SELECT user FROM sessions WHERE id_hash = ?", (id_hash,)).fetchone()
            tx.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
        return None if row is None else str(row[0])

    def purge_expired(self) -> None:
        """Forget what can no longer be used (called on login; the tables stay small)."""
        now = self.now()
        with self.transaction() as tx:
            tx.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", (now,))
            tx.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
            tx.execute("DELETE FROM revoked_jti WHERE expires_at <= ?", (now,))

    # -- API keys ------------------------------------------------------------------------

    def add_key(
        self, name: str, role: Role, key_hash: str, prefix: str, created_by: str | None
    ) -> ApiKey:
        now = self.now()
        with self.transaction() as tx:
            cursor = tx.execute(
                "INSERT INTO api_keys (name, role, key_hash, prefix, created_at, created_by) "
                "VALUES (?,?,?,?,?,?)",
                (name, role, key_hash, prefix, now, created_by),
            )
            key_id = int(cursor.lastrowid or 0)
        return ApiKey(key_id, name, role, prefix, now, created_by, None)

    def list_keys(self) -> list[ApiKey]:
        rows = self.reader().execute(
            "SELECT id, name, role, prefix, created_at, created_by, revoked_at FROM api_keys "
            "ORDER BY id"
        )
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: int) -> ApiKey | None:
        """Revoke an active key; None when there is no such active key."""
        with self.transaction() as tx:
            changed = tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self.now(), key_id),
            ).rowcount
            row = tx.execute(
                "SELECT id, name, role, prefix, created_at, created_by, revoked_at FROM api_keys "
                "WHERE id = ?",
                (key_id,),
            ).fetchone()
        return _key(row) if changed and row is not None else None


def _key(row: tuple[object, ...]) -> ApiKey:
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
