"""Secrets and tokens: the JWT signing key, access JWTs, and random opaque secrets.

* **Signing key.** From the environment variable named by ``auth.signing_key_env`` (for
  deployments that inject secrets), else the file ``auth.signing_key_file`` (default
  ``jwt.key`` in the data directory), created with 32 random bytes on first start. Every
  server worker and restart must agree on the key, hence a file rather than a key made in
  memory. A key file that group or others may read is refused: anyone who reads it can
  mint admin tokens.
* **Access JWT.** HS256 only, and ``decode`` is given that one algorithm explicitly, so
  a token claiming ``alg: none`` or an asymmetric algorithm (the RS256/HS256 confusion)
  is rejected by the library. ``exp``, ``iat``, ``sub``, ``aud`` and ``jti`` must be
  present; PyJWT checks expiry, issue time and audience against the wall clock. ``role``
  is informative (the middleware reads the role from the user row); ``gen`` is the
  user's token generation, bumped by a password change so older tokens stop working.
* **Opaque secrets** (refresh tokens, session ids, API keys) are 256 random bits. The
  database keeps only their SHA-256: a slow hash exists to protect *guessable* secrets,
  and nobody guesses 256 random bits, while a plain digest can be looked up through an
  index on every request (argon2 would cost ~50 ms per request and cannot be indexed).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysmon.errors import ConfigError
from sysmon.security.principal import Role, parse_role

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "jti"]
KEY_BYTES = 32
API_KEY_PREFIX = "sysmon_"


class InvalidTokenError(Exception):
    """The token is missing a claim, expired, forged or for someone else (never says which
    to the client: the reason is only for the server's own debug log)."""


@dataclass(frozen=True)
class AccessClaims:
    sub: str
    role: Role
    jti: str
    exp: int
    generation: int


def signing_key_path(key_file: str | None, folder: Path) -> Path:
    """``auth.signing_key_file``, or ``jwt.key`` in the data directory."""
    return Path(key_file) if key_file else folder / "jwt.key"


def load_signing_key(
    env_name: str, key_file: Path, environ: Mapping[str, str] | None = None
) -> bytes:
    """The HS256 key: from ``environ[env_name]`` if set, else ``key_file`` (made if absent).

    Raises ``ConfigError`` for a short key, or a key file that is not private.
    """
    env = os.environ if environ is None else environ
    value = env.get(env_name)
    if value:
        key = value.encode()
        if len(key) < KEY_BYTES:
            raise ConfigError(
                "auth.signing_key_env", f"${env_name} must hold at least {KEY_BYTES} bytes"
            )
        return key
    if not key_file.exists():
        _create_key_file(key_file)
    info = key_file.stat()
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            "auth.signing_key_file",
            f"{key_file} is readable by group or others (mode {stat.S_IMODE(info.st_mode):o}); "
            "anyone who reads it can sign tokens: chmod 600 it",
        )
    if info.st_uid != os.getuid():
        raise ConfigError("auth.signing_key_file", f"{key_file} is owned by another user")
    key = key_file.read_bytes()
    if len(key) < KEY_BYTES:
        raise ConfigError("auth.signing_key_file", f"{key_file} holds fewer than 32 bytes")
    return key


def _create_key_file(path: Path) -> None:
    """Write a new key atomically: several server workers may start at once, and a worker
    must never read a half-written key. The first ``link`` wins; the others read it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class AccessTokens:
    """Issue and verify access JWTs for one key and audience."""

    def __init__(self, key: bytes, audience: str, ttl_seconds: float) -> None:
        self._key = key
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(
        self, name: str, role: Role, generation: int, now: float | None = None
    ) -> tuple[str, AccessClaims]:
        """A signed token for ``name``; ``now`` is for tests (default: the wall clock)."""
        issued = int(time.time() if now is None else now)
        claims = AccessClaims(
            sub=name,
            role=role,
            jti=uuid.uuid4().hex,
            exp=issued + max(1, int(self.ttl_seconds)),
            generation=generation,
        )
        payload: dict[str, Any] = {
            "sub": claims.sub,
            "aud": self.audience,
            "iat": issued,
            "exp": claims.exp,
            "jti": claims.jti,
            "role": claims.role,
            "gen": claims.generation,
        }
        import jwt  # here: a server with ``auth.mode: none`` never holds PyJWT

        return jwt.encode(payload, self._key, algorithm=ALGORITHM), claims

    def verify(self, token: str) -> AccessClaims:
        import jwt

        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                options={"require": REQUIRED_CLAIMS},
            )
            if int(payload["iat"]) > time.time():  # not left to the PyJWT version at hand
                raise InvalidTokenError("issued in the future")
            sub, jti = payload["sub"], payload["jti"]
            generation = payload.get("gen", 0)
            if not (isinstance(sub, str) and isinstance(jti, str) and type(generation) is int):
                raise InvalidTokenError("malformed claims")
            return AccessClaims(
                sub=sub,
                role=parse_role(str(payload.get("role", "viewer"))),
                jti=jti,
                exp=int(payload["exp"]),
                generation=generation,
            )
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            raise InvalidTokenError(type(exc).__name__) from None


def new_secret(prefix: str = "") -> str:
    """256 random bits, URL-safe (43 characters after the prefix)."""
    return prefix + secrets.token_urlsafe(KEY_BYTES)


def digest(secret: str) -> str:
    """What the database stores for an opaque secret (see the module docstring)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def csrf_for(key: bytes, session_secret: str) -> str:
    """The CSRF token of a session: an HMAC of the session id under the signing key.

    Deriving it (instead of comparing the header with whatever the CSRF cookie holds)
    means a cookie planted by a sibling subdomain cannot pair with a header the attacker
    chose: the value is valid only for this session, and only the server can compute it.
    """
    mac = hmac.new(key, b"csrf:" + session_secret.encode(), hashlib.sha256)
    return mac.hexdigest()


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
