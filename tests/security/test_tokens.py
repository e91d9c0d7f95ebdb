"""Access JWTs, opaque secrets and the signing key, without a server."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import jwt
import pytest

from sysmon.errors import ConfigError
from sysmon.security.tokens import (
    AccessTokens,
    InvalidTokenError,
    csrf_for,
    digest,
    load_signing_key,
    new_secret,
)
from tests.security.auth_support import bad_tokens

KEY = bytes(range(32))


def test_an_issued_token_verifies_with_its_claims() -> None:
    tokens = AccessTokens(KEY, "sysmon", 900)
    token, issued = tokens.issue("alice", "admin", generation=3)
    claims = tokens.verify(token)
    assert claims == issued
    assert (claims.sub, claims.role, claims.generation) == ("alice", "admin", 3)
    assert claims.exp - time.time() == pytest.approx(900, abs=2)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"sub", "aud", "iat", "exp", "jti", "role", "gen"}


def test_every_token_gets_its_own_jti() -> None:
    tokens = AccessTokens(KEY, "sysmon", 900)
    jtis = {tokens.verify(tokens.issue("alice", "admin", 0)[0]).jti for _ in range(20)}
    assert len(jtis) == 20


@pytest.mark.parametrize(
    "kind",
    [
        "expired",
        "tampered",
        "other key",
        "wrong audience",
        "alg none",
        "alg none, signature kept",
        "no exp",
        "future iat",
        "HS512 with the right key",
        "garbage",
    ],
)
def test_bad_tokens_are_refused(kind: str) -> None:
    tokens = AccessTokens(KEY, "sysmon", 900)
    valid, _ = tokens.issue("victor", "viewer", 0)
    with pytest.raises(InvalidTokenError):
        tokens.verify(bad_tokens(KEY, valid)[kind])


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "aud", "jti"])
def test_each_required_claim_is_required(missing: str) -> None:
    now = int(time.time())
    payload = {"sub": "a", "aud": "sysmon", "iat": now, "exp": now + 60, "jti": "j"}
    del payload[missing]
    token = jwt.encode(payload, KEY, algorithm="HS256")
    with pytest.raises(InvalidTokenError):
        AccessTokens(KEY, "sysmon", 900).verify(token)


def test_secrets_are_random_and_stored_as_digests() -> None:
    a, b = new_secret("sysmon_"), new_secret("sysmon_")
    assert a != b and a.startswith("sysmon_") and len(a) == len("sysmon_") + 43
    assert digest(a) == digest(a) and digest(a) != digest(b) and a not in digest(a)
    assert len(digest(a)) == 64


def test_the_csrf_token_is_bound_to_the_session_and_the_key() -> None:
    assert csrf_for(KEY, "s1") == csrf_for(KEY, "s1")
    assert csrf_for(KEY, "s1") != csrf_for(KEY, "s2")
    assert csrf_for(KEY, "s1") != csrf_for(b"x" * 32, "s1")


def test_the_key_file_is_made_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "jwt.key"
    key = load_signing_key("UNSET_FOR_TEST", path, environ={})
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_signing_key("UNSET_FOR_TEST", path, environ={}) == key


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        keys.append(load_signing_key("UNSET_FOR_TEST", path, environ={}))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["jwt.key"], "no temporary file left"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "jwt.key"
    path.write_bytes(os.urandom(32))
    path.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        load_signing_key("UNSET_FOR_TEST", path, environ={})
    assert caught.value.key == "auth.signing_key_file"
    assert "chmod 600" in str(caught.value)


def test_the_environment_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    path = tmp_path / "jwt.key"
    secret = "e" * 40
    assert load_signing_key("SYSMON_JWT_SECRET", path, environ={"SYSMON_JWT_SECRET": secret}) == (
        secret.encode()
    )
    assert not path.exists(), "no file is made when the environment holds the key"
    with pytest.raises(ConfigError, match="at least 32 bytes") as caught:
        load_signing_key("SYSMON_JWT_SECRET", path, environ={"SYSMON_JWT_SECRET": "tiny-xyz"})
    assert "tiny-xyz" not in str(caught.value), "the error names the variable, never its value"
