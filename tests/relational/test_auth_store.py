"""The authentication tables behave the same on SQLite and PostgreSQL: users, the last
admin, cascades, revoked access tokens, refresh-token rotation (atomic even when two
requests race with one token), sessions, API keys and the audit log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.security import audit as audit_module
from sysmon.security.audit import Auditor
from sysmon.security.credentials import Credentials
from sysmon.security.store import AuthStore, LastAdminError, UserExistsError
from tests.relational.backends import BACKENDS, backend_url

START = 1_800_000_000.0
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"  # never checked here


@pytest.fixture(params=BACKENDS)
def relational_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    with backend_url(request) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def store(tmp_path: Path, relational_url: str | None, clock: FakeClock) -> Iterator[AuthStore]:
    opened = AuthStore(tmp_path / "auth.db", wall=clock.time, url=relational_url)
    opened.open()
    opened.add_user("alice", "admin", HASH)
    opened.add_user("victor", "viewer", HASH)
    yield opened
    opened.close()


def test_users(store: AuthStore) -> None:
    with pytest.raises(UserExistsError, match="'alice' already exists"):
        store.add_user("alice", "viewer", HASH)
    assert [(u.name, u.role, u.generation, u.created_at) for u in store.list_users()] == [
        ("alice", "admin", 0, START),
        ("victor", "viewer", 0, START),
    ]
    assert store.set_password("victor", "new-hash")
    assert not store.set_password("nobody", "new-hash")
    victor = store.get_user("victor")
    assert victor is not None and (victor.password_hash, victor.generation) == ("new-hash", 1)
    store.rehash("victor", "stale-hash", "other")  # only replaces the hash it was given
    store.rehash("victor", "new-hash", "rehashed")
    victor = store.get_user("victor")
    assert victor is not None and (victor.password_hash, victor.generation) == ("rehashed", 1)
    assert store.get_user("nobody") is None


def test_the_last_admin_and_cascades(store: AuthStore) -> None:
    credentials = Credentials(store)
    credentials.add_session("s1", "victor", START + 60)
    credentials.add_refresh("r1", "fam", "victor", START + 60)
    with pytest.raises(LastAdminError):
        store.delete_user("alice")
    assert store.delete_user("victor")
    assert not store.delete_user("victor")
    # Sessions and refresh tokens went with the user (ON DELETE CASCADE).
    assert credentials.session_user("s1") is None
    assert credentials.rotate_refresh("r1", "r2", START + 60) == ("invalid", None)
    assert store.delete_user("alice", keep_an_admin=False)
    assert store.list_users() == []


def test_token_user_and_revoked_access_tokens(store: AuthStore) -> None:
    credentials = Credentials(store)
    assert store.token_user("victor", "jti-1") == ("viewer", 0)
    credentials.revoke_jti("jti-1", START + 600)
    credentials.revoke_jti("jti-1", START + 600)  # twice (two logouts) is fine
    assert store.token_user("victor", "jti-1") is None
    assert store.token_user("victor", "jti-2") == ("viewer", 0)
    assert store.token_user("nobody", "jti-2") is None


def test_refresh_rotation_reuse_and_expiry(store: AuthStore, clock: FakeClock) -> None:
    credentials = Credentials(store)
    credentials.add_refresh("t1", "fam", "victor", START + 100)
    assert credentials.rotate_refresh("t1", "t2", START + 100) == ("rotated", "victor")
    assert credentials.rotate_refresh("t2", "t3", START + 100) == ("rotated", "victor")
    assert credentials.rotate_refresh("t1", "x", START + 100) == ("reused", "victor")
    assert credentials.rotate_refresh("t3", "t4", START + 100) == ("invalid", None)
    credentials.add_refresh("u1", "other", "victor", START + 100)
    clock.advance(101)
    assert credentials.rotate_refresh("u1", "u2", START + 300) == ("invalid", None)
    assert credentials.revoke_refresh_family("u1") == "victor"
    assert credentials.revoke_refresh_family("unknown") is None


def test_two_requests_racing_with_one_refresh_token(store: AuthStore) -> None:
    """The check and the spend are one transaction under the write lock: of two
    concurrent refreshes with the same token exactly one rotates, and the other sees a
    spent token (a stolen copy), whichever backend."""
    credentials = Credentials(store)

    def race(token: str) -> list[str]:
        results: list[str] = []
        barrier = threading.Barrier(2)

        def rotate(n: int) -> None:
            barrier.wait()
            results.append(credentials.rotate_refresh(token, f"{token}-{n}", START + 99)[0])

        threads = [threading.Thread(target=rotate, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sorted(results)

    for round_ in range(10):
        credentials.add_refresh(f"t{round_}", f"fam{round_}", "victor", START + 100)
        assert race(f"t{round_}") == ["reused", "rotated"]


def test_sessions(store: AuthStore, clock: FakeClock) -> None:
    credentials = Credentials(store)
    credentials.add_session("s1", "alice", START + 60)
    credentials.add_session("s2", "victor", START + 10)
    assert credentials.session_user("s1") == ("alice", "admin")
    clock.advance(10)
    assert credentials.session_user("s2") is None  # expired
    assert credentials.delete_session("s1") == "alice"
    assert credentials.delete_session("s1") is None
    assert credentials.session_user("s1") is None
    credentials.purge_expired()
    assert credentials.delete_session("s2") is None  # purged


def test_api_keys(store: AuthStore, clock: FakeClock) -> None:
    credentials = Credentials(store)
    first = credentials.add_key("backup", "viewer", "hash-1", "smk_ab", "alice")
    clock.advance(5)
    second = credentials.add_key("ci", "admin", "hash-2", "smk_cd", None)
    assert second.id > first.id
    assert credentials.key_by_hash("hash-1") == first
    revoked = credentials.revoke_key(first.id)
    assert revoked is not None and revoked.revoked_at == START + 5
    assert credentials.revoke_key(first.id) is None
    assert credentials.key_by_hash("hash-1") is None
    assert credentials.list_keys() == [revoked, second]
    with pytest.raises(Exception, match=r"(?i)unique"):
        credentials.add_key("again", "viewer", "hash-2", "smk_ef", None)


def test_audit_rows_newest_first_and_pruned(
    store: AuthStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_module, "PRUNE_EVERY", 5)
    auditor = Auditor(store, retention_days=1)
    for _ in range(4):
        auditor.record("login", actor="alice", role="admin", via="token", source="10.0.0.1")
        clock.advance(3600)
    auditor.record("login", outcome="failure", source="10.0.0.2", reason="bad password")
    rows = auditor.query(START, START + 10 * 3600, limit=2)
    assert [(r.ts, r.event, r.outcome, r.actor, r.source) for r in rows] == [
        (START + 4 * 3600, "login", "failure", None, "10.0.0.2"),
        (START + 3 * 3600, "login", "success", "alice", "10.0.0.1"),
    ]
    assert rows[0].detail == {"reason": "bad password"}
    assert rows[1].id < rows[0].id
    clock.advance(86400)
    auditor.record("logout", actor="alice")  # row 6: no prune yet
    auditor.record("logout", actor="alice")  # ...
    for _ in range(3):
        auditor.record("logout", actor="alice")  # row 10 prunes rows older than a day
    # Rows 1-4 are past the retention; row 5 is exactly a day old and stays.
    remaining = auditor.query(0, 1e12, limit=100)
    assert [(r.event, r.ts) for r in remaining] == [("logout", START + 28 * 3600)] * 5 + [
        ("login", START + 4 * 3600)
    ]
