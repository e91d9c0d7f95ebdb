"""Password hashing (argon2id through argon2-cffi's ``PasswordHasher``).

Why argon2id: passwords are low-entropy secrets, so a stolen ``auth.db`` must make each
guess expensive in time *and* memory. The library's defaults (RFC 9106 low-memory
profile: 64 MiB, 3 passes) cost tens of milliseconds, which is also why callers in the
server run ``verify`` in a worker thread behind a small limiter: forty concurrent login
attempts must not take forty times 64 MiB.

``verify`` spends the same work whether the user exists or not (``verify_or_burn``), so
the answer time does not tell an attacker which user names exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a cap keeps a 1 MiB "password" from costing


class PasswordPolicyError(ValueError):
    """The new password is not acceptable (the message says why, never the password)."""


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"password must have at most {MAX_LENGTH} characters")


class Passwords:
    """Hash and verify; one instance per process (the hasher holds only parameters).
    argon2 (with cffi) is imported at the first use: a server with ``auth.mode: none``
    never hashes and does not hold it."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._given = hasher
        self._dummy: str | None = None  # made on first need: every hash costs ~50 ms

    @property
    def _hasher(self) -> PasswordHasher:
        if self._given is None:
            from argon2 import PasswordHasher

            self._given = PasswordHasher()
        return self._given

    def hash(self, password: str) -> str:
        check_policy(password)
        return self._hasher.hash(password)

    def rehash(self, password: str) -> str:
        """A fresh hash of a password that just verified (no policy: it is not new)."""
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

        if len(password) > MAX_LENGTH:
            return False
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_or_burn(self, stored_hash: str | None, password: str) -> bool:
        """``verify`` against the stored hash, or burn the same work when there is none."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = self._hasher.hash("not a real password: equalises timing")
            self.verify(self._dummy, password)
            return False
        return self.verify(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with older parameters (rehash at next login)."""
        from argon2.exceptions import InvalidHashError

        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return False
