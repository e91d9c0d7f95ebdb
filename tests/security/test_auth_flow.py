"""Logging in and out over real HTTP (``auth.mode: jwt``): tokens, refresh rotation and
reuse detection, logout, password changes and deleted users taking effect at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.config import load_settings
from sysmon.errors import ConfigError
from sysmon.main import create_app
from tests.security.auth_support import PASSWORDS, AuthStack, accounts, auth_stack


@pytest.fixture
def api(tmp_path: Path) -> Iterator[AuthStack]:
    with auth_stack(tmp_path) as running:
        running.running.tick(2)
        yield running


def test_token_answer_is_an_oauth2_bearer_pair_that_opens_the_api(api: AuthStack) -> None:
    answer = api.client.post(
        "/api/v1/auth/token", data={"username": "victor", "password": PASSWORDS["victor"]}
    )
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.client.get("/api/v1/metrics/current", headers=headers).status_code == 200
    me = api.client.get("/api/v1/auth/me", headers=headers).json()
    assert me == {"name": "victor", "role": "viewer", "via": "jwt"}


@pytest.mark.parametrize(
    ("username", "password"),
    [("victor", "wrong-password-1"), ("nobody", "whatever-password"), ("victor", "")],
)
def test_wrong_credentials_get_401_and_no_token(
    api: AuthStack, username: str, password: str
) -> None:
    answer = api.client.post(
        "/api/v1/auth/token", data={"username": username, "password": password}
    )
    assert answer.status_code in (401, 422)
    assert "access_token" not in answer.text
    if answer.status_code == 401:
        assert answer.json() == {"detail": "incorrect username or password"}
        assert answer.headers["www-authenticate"] == "Bearer"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_login(
    api: AuthStack,
) -> None:
    first = api.tokens("victor")
    second = api.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"]
    assert (
        api.client.get(
            "/api/v1/metrics/current", headers={"Authorization": f"Bearer {pair['access_token']}"}
        ).status_code
        == 200
    )

    # Someone replays the spent token: refused, and the token the victim holds now dies too.
    replay = api.client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert "revoked" in replay.json()["detail"]
    victim = api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert victim.status_code == 401

    # Another login of the same user (another family) is untouched.
    other = api.tokens("victor")
    assert (
        api.client.post(
            "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
        ).status_code
        == 200
    )


def test_unknown_refresh_token_is_401(api: AuthStack) -> None:
    answer = api.client.post("/api/v1/auth/refresh", json={"refresh_token": "made-up"})
    assert answer.status_code == 401
    assert api.client.post("/api/v1/auth/refresh", json={}).status_code == 422


def test_logout_ends_the_refresh_token_and_the_access_token(api: AuthStack) -> None:
    pair = api.tokens("alice")
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    out = api.client.post(
        "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=headers
    )
    assert out.status_code == 204
    assert api.client.get("/api/v1/metrics/current", headers=headers).status_code == 401
    again = api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 401
    # Logging out twice, or with nothing, is not an error.
    assert api.client.post("/api/v1/auth/logout").status_code == 204


def test_a_password_change_ends_every_login_of_that_user(api: AuthStack) -> None:
    pair = api.tokens("victor")
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    with accounts(api.settings) as acc:
        assert acc.set_password("victor", "a-brand-new-Secret-3", by=None, source=None)
    assert api.client.get("/api/v1/metrics/current", headers=headers).status_code == 401
    refresh = api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refresh.status_code == 401
    old = api.client.post(
        "/api/v1/auth/token", data={"username": "victor", "password": PASSWORDS["victor"]}
    )
    assert old.status_code == 401
    new = api.client.post(
        "/api/v1/auth/token", data={"username": "victor", "password": "a-brand-new-Secret-3"}
    )
    assert new.status_code == 200


def test_a_deleted_user_is_refused_at_once(api: AuthStack) -> None:
    headers = api.bearer("victor")
    admin = api.bearer("alice")
    assert api.client.delete("/api/v1/users/victor", headers=admin).status_code == 204
    assert api.client.get("/api/v1/metrics/current", headers=headers).status_code == 401


def test_users_over_the_api(api: AuthStack) -> None:
    admin = api.bearer("alice")
    created = api.client.post(
        "/api/v1/users",
        json={"name": "olga", "role": "admin", "password": "olga-Secret-password"},
        headers=admin,
    )
    assert created.status_code == 201
    assert set(created.json()) == {"name", "role", "created_at"}
    listed = api.client.get("/api/v1/users", headers=admin).json()["users"]
    assert [(u["name"], u["role"]) for u in listed] == [
        ("alice", "admin"),
        ("olga", "admin"),
        ("victor", "viewer"),
    ]
    assert "password" not in str(listed) and "argon2" not in str(listed)
    duplicate = {"name": "olga", "role": "viewer", "password": "another-Secret-1"}
    assert api.client.post("/api/v1/users", json=duplicate, headers=admin).status_code == 409
    short = {"name": "pat", "role": "viewer", "password": "short"}
    refused = api.client.post("/api/v1/users", json=short, headers=admin)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "password"]
    bad_name = {"name": "../etc", "role": "viewer", "password": "long-enough-Secret"}
    assert api.client.post("/api/v1/users", json=bad_name, headers=admin).status_code == 422
    assert api.client.delete("/api/v1/users/olga", headers=admin).status_code == 204
    assert api.client.delete("/api/v1/users/olga", headers=admin).status_code == 404
    last = api.client.delete("/api/v1/users/alice", headers=admin)
    assert last.status_code == 409 and "last admin" in last.json()["detail"]


def test_api_keys_are_shown_once_work_by_either_header_and_die_when_revoked(
    api: AuthStack,
) -> None:
    admin = api.bearer("alice")
    created = api.client.post("/api/v1/keys", json={"name": "prometheus"}, headers=admin)
    assert created.status_code == 201
    body = created.json()
    key = body["key"]
    assert key.startswith("sysmon_") and len(key) >= 40
    assert body["role"] == "viewer" and body["created_by"] == "alice"
    assert key.startswith(body["prefix"]) and len(body["prefix"]) < 16

    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert api.client.get("/api/v1/metrics/current", headers=headers).status_code == 200
        me = api.client.get("/api/v1/auth/me", headers=headers).json()
        assert me == {"name": "key:prometheus", "role": "viewer", "via": "key"}

    listed = api.client.get("/api/v1/keys", headers=admin)
    assert key not in listed.text
    (entry,) = listed.json()["keys"]
    assert entry["id"] == body["id"] and entry["revoked_at"] is None
    db = (Path(api.settings.database.path).parent / "auth.db").read_bytes()
    assert key.encode() not in db, "only the digest is stored"

    assert api.client.delete(f"/api/v1/keys/{body['id']}", headers=admin).status_code == 204
    assert api.client.get("/api/v1/metrics/current", headers={"X-API-Key": key}).status_code == 401
    assert api.client.delete(f"/api/v1/keys/{body['id']}", headers=admin).status_code == 404
    (entry,) = api.client.get("/api/v1/keys", headers=admin).json()["keys"]
    assert entry["revoked_at"] is not None


def test_an_admin_key_can_administer(api: AuthStack) -> None:
    admin = api.bearer("alice")
    key = api.client.post(
        "/api/v1/keys", json={"name": "ops-script", "role": "admin"}, headers=admin
    ).json()["key"]
    silence = {"matchers": {"rule": "x"}, "until": 4_000_000_000}
    answer = api.client.post("/api/v1/alerts/silences", json=silence, headers={"X-API-Key": key})
    assert answer.status_code == 201, "no CSRF token needed outside the cookie session"


def test_the_signing_key_file_is_private_and_a_readable_one_stops_the_server(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None, database={"path": str(tmp_path / "sysmon.db")}, auth={"mode": "jwt"}
    )
    create_app(settings, start_agent=False)
    key_file = tmp_path / "jwt.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "auth.db").stat().st_mode & 0o777 == 0o600
    key_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by group or others"):
        create_app(settings, start_agent=False)


def test_the_openapi_document_says_how_to_authenticate(api: AuthStack) -> None:
    document = api.client.get("/openapi.json", headers=api.bearer("victor")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["OAuth2Password"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert schemes["ApiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert document["paths"]["/api/v1/health"]["get"]["security"] == []
    assert document["paths"]["/api/v1/auth/token"]["post"]["security"] == []
    assert "security" not in document["paths"]["/api/v1/keys"]["post"]  # the global one
