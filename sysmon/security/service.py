"""What authentication does, independent of HTTP: log in, rotate, log out, recognise a
caller, manage keys and users, and audit each step.

Methods that hash passwords or write are blocking: the routes run them in worker threads
(password hashing behind ``hashing``, a limiter of two, so a burst of logins costs two
argon2 computations at a time, not forty). The ``authenticate_*`` methods are single
indexed reads and run on the event loop in the middleware.

Why the middleware reads the user row for a JWT instead of trusting its claims: deleting
a user, changing a password (``generation``) or logging out (the ``jti`` is revoked) must
take effect at once, not when the access token expires, and the read costs microseconds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from sysmon.security.accounts import Accounts
from sysmon.security.audit import Auditor
from sysmon.security.config import AuthConfig
from sysmon.security.credentials import Credentials
from sysmon.security.passwords import Passwords
from sysmon.security.principal import Principal, Role
from sysmon.security.store import AuthStore, User, auth_db_path
from sysmon.security.tokens import (
    API_KEY_PREFIX,
    AccessTokens,
    InvalidTokenError,
    csrf_for,
    digest,
    new_secret,
    same_secret,
)

HASHING_AT_ONCE = 2


class AuthError(Exception):
    """Credentials refused. The message is safe to send to the client."""


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    user: str
    role: Role


@dataclass(frozen=True)
class Session:
    secret: str
    csrf: str
    max_age: int
    user: str
    role: Role


class AuthService:
    def __init__(
        self,
        store: AuthStore,
        key: bytes,
        config: AuthConfig,
        *,
        passwords: Passwords | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.credentials = Credentials(store)
        self.tokens = AccessTokens(key, config.audience, config.access_token_minutes * 60)
        self.passwords = passwords or Passwords()
        self.audit = Auditor(store, config.audit_retention_days)
        self.accounts = Accounts(store, self.credentials, self.passwords, self.audit)
        self.hashing = anyio.CapacityLimiter(HASHING_AT_ONCE)
        self._key = key
        self._wall = wall
        self._refresh_seconds = config.refresh_token_days * 86400
        self._session_seconds = config.session_hours * 3600

    @classmethod
    def open(
        cls, config: AuthConfig, folder: Path, key: bytes, *, url: str | None = None
    ) -> AuthService:
        """``url``: the PostgreSQL database of ``relational.url`` (None: ``auth.db``)."""
        store = AuthStore(auth_db_path(config.users_db, folder), url=url)
        store.open()
        return cls(store, key, config)

    def close(self) -> None:
        self.store.close()

    # -- logging in and out (blocking) --------------------------------------------------

    def check_password(self, name: str, password: str, *, source: str | None, via: str) -> User:
        """The user whose password this is, or ``AuthError``; audited either way."""
        user = self.store.get_user(name)
        ok = self.passwords.verify_or_burn(user.password_hash if user else None, password)
        if user is None or not ok:
            # The attempted name is recorded only when it exists: people type passwords
            # into the user field, and an audit log must not collect them.
            self.audit.record(
                "login",
                outcome="failure",
                actor=user.name if user else None,
                source=source,
                via=via,
                reason="bad password" if user else "unknown user",
            )
            raise AuthError("incorrect username or password")
        if self.passwords.needs_rehash(user.password_hash):
            self.store.rehash(user.name, user.password_hash, self.passwords.rehash(password))
        self.credentials.purge_expired()
        self.audit.record("login", actor=user.name, role=user.role, via=via, source=source)
        return user

    def issue_pair(self, user: User) -> TokenPair:
        """A fresh login: an access token and the first refresh token of a new family."""
        access, _ = self.tokens.issue(user.name, user.role, user.generation)
        refresh = new_secret()
        self.credentials.add_refresh(
            digest(refresh),
            uuid.uuid4().hex,
            user.name,
            self._wall() + self._refresh_seconds,
        )
        return TokenPair(access, refresh, int(self.tokens.ttl_seconds), user.name, user.role)

    def refresh(self, refresh_token: str, *, source: str | None) -> TokenPair:
        """Spend ``refresh_token`` for a new pair (see ``Credentials.rotate_refresh``)."""
        new = new_secret()
        outcome, name = self.credentials.rotate_refresh(
            digest(refresh_token), digest(new), self._wall() + self._refresh_seconds
        )
        if outcome == "reused":
            self.audit.record("token.reuse", outcome="failure", actor=name, source=source)
            raise AuthError("refresh token already used: every token of this login is revoked")
        user = self.store.get_user(name) if name else None
        if outcome != "rotated" or user is None:
            raise AuthError("invalid or expired refresh token")
        access, _ = self.tokens.issue(user.name, user.role, user.generation)
        self.audit.record("token.refresh", actor=user.name, source=source)
        return TokenPair(access, new, int(self.tokens.ttl_seconds), user.name, user.role)

    def start_session(self, user: User) -> Session:
        secret = new_secret()
        self.credentials.add_session(
            digest(secret), user.name, self._wall() + self._session_seconds
        )
        return Session(
            secret, csrf_for(self._key, secret), int(self._session_seconds), user.name, user.role
        )

    def logout(
        self,
        *,
        refresh_token: str | None,
        access_token: str | None,
        session_secret: str | None,
        source: str | None,
    ) -> bool:
        """End whatever the caller presented; True when anything was ended."""
        who: str | None = None
        if refresh_token:
            who = self.credentials.revoke_refresh_family(digest(refresh_token)) or who
        if access_token and not access_token.startswith(API_KEY_PREFIX):
            try:
                claims = self.tokens.verify(access_token)
            except InvalidTokenError:
                pass
            else:
                self.credentials.revoke_jti(claims.jti, claims.exp)
                who = claims.sub
        if session_secret:
            who = self.credentials.delete_session(digest(session_secret)) or who
        if who is not None:
            self.audit.record("logout", actor=who, source=source)
        return who is not None

    # -- recognising a caller (event loop: fast reads) -----------------------------------

    def authenticate_bearer(self, token: str) -> Principal | None:
        if token.startswith(API_KEY_PREFIX):
            return self.authenticate_key(token)
        try:
            claims = self.tokens.verify(token)
        except InvalidTokenError:
            return None
        found = self.store.token_user(claims.sub, claims.jti)
        if found is None or found[1] != claims.generation:
            return None
        return Principal(claims.sub, found[0], "jwt")

    def authenticate_key(self, key: str) -> Principal | None:
        if not key.startswith(API_KEY_PREFIX):
            return None
        found = self.credentials.key_by_hash(digest(key))
        if found is None:
            return None
        return Principal(f"key:{found.name}", found.role, "key", key_id=found.id)

    def authenticate_session(self, secret: str) -> Principal | None:
        found = self.credentials.session_user(digest(secret))
        return None if found is None else Principal(found[0], found[1], "session")

    def csrf_ok(self, session_secret: str, header: str | None) -> bool:
        return header is not None and same_secret(csrf_for(self._key, session_secret), header)
