"""Users and API keys: the changes an admin makes, through the API or ``sysmon user``.

Every change is audited here, once, whoever asked: ``by`` is the admin principal for the
API, or None for the command line (recorded as actor ``cli``, the local operator who can
read the database file anyway). All methods block (hashing, writes): the API runs them in
worker threads.
"""

from __future__ import annotations

from sysmon.security.audit import Auditor
from sysmon.security.credentials import ApiKey, Credentials
from sysmon.security.passwords import Passwords
from sysmon.security.principal import Principal, Role
from sysmon.security.store import AuthStore, LastAdminError, User, check_name
from sysmon.security.tokens import API_KEY_PREFIX, digest, new_secret


class Accounts:
    def __init__(
        self, store: AuthStore, credentials: Credentials, passwords: Passwords, audit: Auditor
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._passwords = passwords
        self._audit = audit

    def list_users(self) -> list[User]:
        return self._store.list_users()

    def list_keys(self) -> list[ApiKey]:
        return self._credentials.list_keys()

    def create_key(
        self, name: str, role: Role, *, by: Principal | None, source: str | None
    ) -> tuple[ApiKey, str]:
        """The stored key and its secret, which is shown once and never again."""
        secret = new_secret(API_KEY_PREFIX)
        prefix = secret[: len(API_KEY_PREFIX) + 4]
        key = self._credentials.add_key(
            name, role, digest(secret), prefix, by.name if by else "cli"
        )
        self._audit.record(
            "key.create",
            principal=by,
            actor="cli",
            source=source,
            key_id=key.id,
            key_name=name,
            key_role=role,
        )
        return key, secret

    def revoke_key(self, key_id: int, *, by: Principal | None, source: str | None) -> ApiKey | None:
        key = self._credentials.revoke_key(key_id)
        if key is not None:
            self._audit.record(
                "key.revoke",
                principal=by,
                actor="cli",
                source=source,
                key_id=key.id,
                key_name=key.name,
            )
        return key

    def create_user(
        self, name: str, role: Role, password: str, *, by: Principal | None, source: str | None
    ) -> User:
        check_name(name)  # before the ~50 ms of hashing
        user = self._store.add_user(name, role, self._passwords.hash(password))
        self._audit.record(
            "user.create", principal=by, actor="cli", source=source, user=name, user_role=role
        )
        return user

    def set_password(
        self, name: str, password: str, *, by: Principal | None, source: str | None
    ) -> bool:
        changed = self._store.set_password(name, self._passwords.hash(password))
        if changed:
            self._audit.record("user.passwd", principal=by, actor="cli", source=source, user=name)
        return changed

    def delete_user(
        self, name: str, *, by: Principal | None, source: str | None, keep_an_admin: bool = True
    ) -> bool:
        """Raises ``LastAdminError`` rather than leave no admin (unless told otherwise)."""
        try:
            deleted = self._store.delete_user(name, keep_an_admin=keep_an_admin)
        except LastAdminError:
            self._audit.record(
                "user.delete",
                outcome="failure",
                principal=by,
                actor="cli",
                source=source,
                user=name,
                reason="last admin",
            )
            raise
        if deleted:
            self._audit.record("user.delete", principal=by, actor="cli", source=source, user=name)
        return deleted
