"""The authentication database and the flows on it, without HTTP: users, hashes, refresh
token families, sessions and keys, with a fake wall clock where time matters."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.security.config import AuthConfig
from sysmon.security.credentials import Credentials
from sysmon.security.passwords import Passwords
from sysmon.security.service import AuthError, AuthService
from sysmon.security.store import AuthStore, LastAdminError, UserExistsError
from tests.relational.backends import BACKENDS, backend_url

KEY = bytes(range(32))
START = 1_800_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture(params=BACKENDS)
def relational_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Every test here runs on the SQLite file and on PostgreSQL (tests.relational)."""
    with backend_url(request) as url:
        yield url


@pytest.fixture
def service(tmp_path: Path, clock: FakeClock, relational_url: str | None) -> Iterator[AuthService]:
    store = AuthStore(tmp_path / "data" / "auth.db", wall=clock.time, url=relational_url)
    store.open()
    auth = AuthService(
        store,
        KEY,
        AuthConfig(mode="jwt", refresh_token_days=1, session_hours=2),
        wall=clock.time,
    )
    auth.accounts.create_user("alice", "admin", "alice-Secret-pw", by=None, source=None)
    auth.accounts.create_user("victor", "viewer", "victor-Secret-pw", by=None, source=None)
    yield auth
    auth.close()


def test_the_database_is_private_and_in_wal_mode(
    service: AuthService, relational_url: str | None
) -> None:
    if relational_url is not None:
        pytest.skip("the SQLite file's own properties")
    path = service.store.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_passwords_are_stored_as_argon2id_hashes(
    service: AuthService, relational_url: str | None
) -> None:
    user = service.store.get_user("alice")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    with service.store.reader() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM users").all()
    assert "alice-Secret-pw" not in str(rows)
    if relational_url is None:
        assert "alice-Secret-pw" not in service.store.path.read_bytes().decode("latin-1")


def test_check_password(service: AuthService) -> None:
    user = service.check_password("victor", "victor-Secret-pw", source="10.0.0.1", via="token")
    assert (user.name, user.role) == ("victor", "viewer")
    for name, password in [("victor", "wrong-password"), ("nobody", "victor-Secret-pw")]:
        with pytest.raises(AuthError, match="incorrect username or password"):
            service.check_password(name, password, source="10.0.0.1", via="token")


def test_users_are_unique_and_named_plainly(service: AuthService) -> None:
    with pytest.raises(UserExistsError):
        service.accounts.create_user("alice", "viewer", "another-Secret", by=None, source=None)
    for bad in ["", "a b", "../x", "x" * 65, "-leading"]:
        with pytest.raises(ValueError, match="user names"):
            service.accounts.create_user(bad, "viewer", "long-enough-pw", by=None, source=None)
    with pytest.raises(ValueError, match="at least 8"):
        service.accounts.create_user("pat", "viewer", "short", by=None, source=None)
    assert [u.name for u in service.accounts.list_users()] == ["alice", "victor"]


def test_the_last_admin_stays_unless_forced(service: AuthService) -> None:
    with pytest.raises(LastAdminError):
        service.accounts.delete_user("alice", by=None, source=None)
    assert service.accounts.delete_user("victor", by=None, source=None)
    assert not service.accounts.delete_user("victor", by=None, source=None)
    assert service.accounts.delete_user("alice", by=None, source=None, keep_an_admin=False)
    assert service.accounts.list_users() == []


def test_refresh_rotation_reuse_and_expiry(service: AuthService, clock: FakeClock) -> None:
    user = service.store.get_user("victor")
    assert user is not None
    first = service.issue_pair(user)
    second = service.refresh(first.refresh_token, source=None)
    third = service.refresh(second.refresh_token, source=None)
    with pytest.raises(AuthError, match="already used"):
        service.refresh(first.refresh_token, source=None)
    with pytest.raises(AuthError, match="invalid or expired"):
        service.refresh(third.refresh_token, source=None)  # its family was revoked

    other = service.issue_pair(user)
    clock.advance(86400 + 1)  # refresh_token_days: 1
    with pytest.raises(AuthError, match="invalid or expired"):
        service.refresh(other.refresh_token, source=None)


def test_sessions_expire_and_end(service: AuthService, clock: FakeClock) -> None:
    user = service.store.get_user("victor")
    assert user is not None
    session = service.start_session(user)
    principal = service.authenticate_session(session.secret)
    assert principal is not None and (principal.name, principal.via) == ("victor", "session")
    assert service.csrf_ok(session.secret, session.csrf)
    assert not service.csrf_ok(session.secret, None)
    clock.advance(2 * 3600 + 1)
    assert service.authenticate_session(session.secret) is None

    again = service.start_session(user)
    assert service.logout(
        refresh_token=None, access_token=None, session_secret=again.secret, source=None
    )
    assert service.authenticate_session(again.secret) is None


def test_a_new_password_ends_sessions_refresh_tokens_and_access_tokens(
    service: AuthService,
) -> None:
    user = service.store.get_user("victor")
    assert user is not None
    pair = service.issue_pair(user)
    session = service.start_session(user)
    assert service.authenticate_bearer(pair.access_token) is not None
    assert service.accounts.set_password("victor", "new-Secret-pw-2", by=None, source=None)
    assert service.authenticate_bearer(pair.access_token) is None
    assert service.authenticate_session(session.secret) is None
    with pytest.raises(AuthError):
        service.refresh(pair.refresh_token, source=None)


def test_keys_are_stored_as_digests_and_revocable(service: AuthService) -> None:
    key, secret = service.accounts.create_key("backup", "viewer", by=None, source=None)
    principal = service.authenticate_key(secret)
    assert principal is not None
    assert (principal.name, principal.role, principal.key_id) == ("key:backup", "viewer", key.id)
    with Credentials(service.store).reader() as conn:
        rows = conn.exec_driver_sql("SELECT key_hash FROM api_keys").all()
    assert secret not in str(rows)
    assert service.authenticate_key(secret + "x") is None
    assert service.authenticate_key("not-even-prefixed") is None
    assert service.accounts.revoke_key(key.id, by=None, source=None) is not None
    assert service.authenticate_key(secret) is None
    assert service.accounts.revoke_key(key.id, by=None, source=None) is None


def test_two_handles_on_one_file_see_each_other(
    service: AuthService, relational_url: str | None
) -> None:
    """The CLI and the server workers share the database: a user added by one is seen by
    all."""
    other = AuthStore(service.store.path, url=relational_url)
    other.open()
    try:
        other.add_user("olga", "viewer", Passwords().hash("olga-Secret-pw"))
        assert service.store.get_user("olga") is not None
        assert service.accounts.delete_user("olga", by=None, source=None)
        assert other.get_user("olga") is None
    finally:
        other.close()


def test_an_outdated_hash_is_upgraded_at_login(service: AuthService) -> None:
    """Hashes made with weaker parameters (or before a policy change) still log in, and
    are rehashed with today's parameters, whatever the password's length."""
    from argon2 import PasswordHasher

    old = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash("short")
    service.store.add_user("old", "viewer", old)
    user = service.check_password("old", "short", source=None, via="token")
    assert user.name == "old"
    stored = service.store.get_user("old")
    assert stored is not None and stored.password_hash != old
    assert service.passwords.verify(stored.password_hash, "short")
    assert not service.passwords.needs_rehash(stored.password_hash)
