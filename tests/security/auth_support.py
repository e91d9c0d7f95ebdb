"""Shared by the authentication tests: a real agent + server with ``auth.mode: jwt``,
users made through the real ``Accounts`` (as ``sysmon user add`` does), and tokens forged
the ways an attacker would try.

Login attempts are rate limited hardest by default (a few per minute per client); these
tests log in far more often from 127.0.0.1, so the login budget is raised, not turned
off: the rate-limit layer still runs in front of authentication as in production.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from sysmon.channel import data_dir
from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.security.accounts import Accounts
from sysmon.security.audit import Auditor
from sysmon.security.credentials import Credentials
from sysmon.security.passwords import Passwords
from sysmon.security.store import AuthStore, auth_db_path
from sysmon.security.tokens import AccessTokens, load_signing_key, signing_key_path
from tests.support.stack import Stack, stack

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z (the fake clock of the agent)

PASSWORDS = {
    "alice": "alice-admin-Secret-1",  # admin
    "victor": "victor-viewer-Secret-2",  # viewer
}
ROLES = {"alice": "admin", "victor": "viewer"}
HOOK_ENV = "SYSMON_TEST_AUTH_HOOK_URL"


def jwt_settings(tmp_path: Path, **extra: Any) -> Settings:
    security = {"rate_limits": {"login": "10000/minute", "alerts_test": "10000/minute"}}
    return load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        auth={"mode": "jwt", **extra.pop("auth", {})},
        server={"security": security},
        **extra,
    )


@contextmanager
def accounts(settings: Settings) -> Iterator[Accounts]:
    """The same objects ``sysmon user`` uses, on the stack's authentication database."""
    store = AuthStore(auth_db_path(settings.auth.users_db, data_dir(settings.database.path)))
    store.open()
    try:
        yield Accounts(store, Credentials(store), Passwords(), Auditor(store))
    finally:
        store.close()


def add_users(settings: Settings) -> None:
    """alice (admin) and victor (viewer). The argon2 hashes cost about 0.1 s each, so the
    users are made once per test run and their database file copied for each stack."""
    path = auth_db_path(settings.auth.users_db, data_dir(settings.database.path))
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_bytes(_users_template())
    path.chmod(0o600)


@functools.cache
def _users_template() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(None, database={"path": str(Path(folder) / "sysmon.db")})
        with accounts(settings) as acc:
            for name, password in PASSWORDS.items():
                role = "admin" if ROLES[name] == "admin" else "viewer"
                acc.create_user(name, role, password, by=None, source=None)
        # Closing the last connection checkpoints the WAL into the main file.
        return (Path(folder) / "auth.db").read_bytes()


def signing_key(settings: Settings) -> bytes:
    folder = data_dir(settings.database.path)
    return load_signing_key(
        settings.auth.signing_key_env, signing_key_path(settings.auth.signing_key_file, folder)
    )


@dataclass
class AuthStack:
    running: Stack
    settings: Settings
    client: httpx.Client

    @property
    def key(self) -> bytes:
        return signing_key(self.settings)

    def tokens(self, name: str) -> dict[str, Any]:
        """``POST /api/v1/auth/token`` as ``name``: the whole answer."""
        answer = self.client.post(
            "/api/v1/auth/token", data={"username": name, "password": PASSWORDS[name]}
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def bearer(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens(name)['access_token']}"}


@contextmanager
def auth_stack(tmp_path: Path, **extra: Any) -> Iterator[AuthStack]:
    settings = jwt_settings(tmp_path, **extra)
    add_users(settings)
    with (
        stack(settings, FakeClock(start=START)) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        yield AuthStack(running, settings, client)


# -- forged tokens ---------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(name: str, role: str, audience: str = "sysmon", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": name,
        "aud": audience,
        "iat": now,
        "exp": now + 600,
        "jti": "forged",
        "role": role,
        "gen": 0,
        **extra,
    }


def _hs512(payload: dict[str, Any], key: bytes) -> str:
    """Signed by hand: PyJWT warns about a 32-byte key for HS512, and the server must
    refuse the algorithm whatever the key length."""
    signing_input = f"{_b64({'alg': 'HS512', 'typ': 'JWT'})}.{_b64(payload)}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha512).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def bad_tokens(key: bytes, valid_viewer_token: str) -> dict[str, str]:
    """Every way an access token must fail, by name (each otherwise claims admin)."""
    header, payload, signature = valid_viewer_token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered = _b64({**decoded, "role": "admin", "sub": "alice"})
    expired, _ = AccessTokens(key, "sysmon", 60).issue("alice", "admin", 0, now=time.time() - 3600)
    other_key, _ = AccessTokens(b"k" * 32, "sysmon", 600).issue("alice", "admin", 0)
    wrong_aud, _ = AccessTokens(key, "another-service", 600).issue("alice", "admin", 0)
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims('alice', 'admin'))}."
    no_exp = claims("alice", "admin")
    del no_exp["exp"]
    return {
        "expired": expired,
        "tampered": f"{header}.{tampered}.{signature}",
        "other key": other_key,
        "wrong audience": wrong_aud,
        "alg none": alg_none,
        "alg none, signature kept": f"{_b64({'alg': 'none'})}.{_b64(claims('alice', 'admin'))}"
        f".{signature}",
        "no exp": jwt.encode(no_exp, key, algorithm="HS256"),
        "future iat": jwt.encode(
            claims("alice", "admin", iat=int(time.time()) + 3600), key, algorithm="HS256"
        ),
        "HS512 with the right key": _hs512(claims("alice", "admin"), key),
        "garbage": "not.a.jwt",
        "unknown user": jwt.encode(claims("mallory", "admin"), key, algorithm="HS256"),
    }
