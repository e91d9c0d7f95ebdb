"""The dashboard's cookie session over real HTTP: HttpOnly + SameSite=Strict cookie (Secure
under TLS), a CSRF token that every state-changing cookie request must echo, the SSE
stream with the cookie alone, and logout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.security.auth_support import PASSWORDS, AuthStack, auth_stack

SILENCE = {"matchers": {"rule": "x"}, "until": 4_000_000_000}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[AuthStack]:
    with auth_stack(tmp_path) as running:
        running.running.tick(2)
        yield running


def _login(api: AuthStack, name: str, headers: dict[str, str] | None = None) -> httpx.Response:
    answer = api.client.post(
        "/api/v1/auth/login",
        json={"username": name, "password": PASSWORDS[name]},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    return answer


def test_login_sets_an_httponly_strict_session_cookie_and_a_readable_csrf_cookie(
    api: AuthStack,
) -> None:
    answer = _login(api, "alice")
    body = answer.json()
    assert body["user"] == "alice" and body["role"] == "admin"
    cookies = {c.split("=", 1)[0]: c for c in answer.headers.get_list("set-cookie")}
    session, csrf = cookies["sysmon_session"], cookies["sysmon_csrf"]
    assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/" in session
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
    assert "Secure" not in session, "plain HTTP: a Secure cookie would never come back"
    assert api.client.cookies["sysmon_csrf"] == body["csrf_token"]


def test_the_cookie_is_secure_when_the_request_came_over_tls(api: AuthStack) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (forwarded_allow_ips): scheme https.
    answer = _login(api, "victor", headers={"X-Forwarded-Proto": "https"})
    for cookie in answer.headers.get_list("set-cookie"):
        assert "Secure" in cookie


def test_form_login_works_too_and_bad_passwords_set_no_cookie(api: AuthStack) -> None:
    bad = api.client.post(
        "/api/v1/auth/login", data={"username": "victor", "password": "not-the-password"}
    )
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    good = api.client.post(
        "/api/v1/auth/login", data={"username": "victor", "password": PASSWORDS["victor"]}
    )
    assert good.status_code == 200 and "sysmon_session" in api.client.cookies
    assert api.client.post("/api/v1/auth/login", json={"username": "victor"}).status_code == 422
    assert (
        api.client.post(
            "/api/v1/auth/login", content=b"{nope", headers={"Content-Type": "application/json"}
        ).status_code
        == 422
    )


def test_a_cross_site_login_is_refused(api: AuthStack) -> None:
    answer = api.client.post(
        "/api/v1/auth/login",
        data={"username": "victor", "password": PASSWORDS["victor"]},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_reads_work_with_the_cookie_alone(api: AuthStack) -> None:
    _login(api, "victor")
    assert api.client.get("/api/v1/metrics/current").status_code == 200
    me = api.client.get("/api/v1/auth/me").json()
    assert me == {"name": "victor", "role": "viewer", "via": "session"}


def test_the_live_stream_works_with_the_cookie(api: AuthStack) -> None:
    _login(api, "victor")
    with api.client.stream("GET", "/api/v1/stream") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "retry: 2000"
        assert any(line == "event: snapshot" for line, _ in zip(lines, range(5), strict=False))


def test_a_state_changing_cookie_request_needs_the_csrf_header(api: AuthStack) -> None:
    csrf = _login(api, "alice").json()["csrf_token"]
    missing = api.client.post("/api/v1/alerts/silences", json=SILENCE)
    assert missing.status_code == 403
    assert missing.json() == {"detail": "missing or wrong X-CSRF-Token header"}
    wrong = api.client.post(
        "/api/v1/alerts/silences", json=SILENCE, headers={"X-CSRF-Token": "0" * 64}
    )
    assert wrong.status_code == 403
    assert api.client.get("/api/v1/alerts/silences").json()["silences"] == []
    right = api.client.post("/api/v1/alerts/silences", json=SILENCE, headers={"X-CSRF-Token": csrf})
    assert right.status_code == 201
    silence_id = right.json()["id"]
    assert api.client.delete(f"/api/v1/alerts/silences/{silence_id}").status_code == 403
    deleted = api.client.delete(
        f"/api/v1/alerts/silences/{silence_id}", headers={"X-CSRF-Token": csrf}
    )
    assert deleted.status_code == 204


def test_the_csrf_token_of_another_session_does_not_fit(api: AuthStack) -> None:
    other = httpx.Client(base_url=api.running.base_url)
    with other:
        theirs = other.post(
            "/api/v1/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}
        ).json()["csrf_token"]
    mine = _login(api, "alice").json()["csrf_token"]
    assert theirs != mine
    refused = api.client.post(
        "/api/v1/alerts/silences", json=SILENCE, headers={"X-CSRF-Token": theirs}
    )
    assert refused.status_code == 403


def test_logout_clears_the_cookie_and_ends_the_session_on_the_server(api: AuthStack) -> None:
    _login(api, "victor")
    stolen = api.client.cookies["sysmon_session"]
    out = api.client.post("/api/v1/auth/logout")
    assert out.status_code == 204
    assert "sysmon_session" not in api.client.cookies
    assert api.client.get("/api/v1/metrics/current").status_code == 401
    replay = api.client.get(
        "/api/v1/metrics/current", headers={"Cookie": f"sysmon_session={stolen}"}
    )
    assert replay.status_code == 401, "a copy of the cookie dies with the session"


def test_a_bearer_header_wins_over_the_cookie(api: AuthStack) -> None:
    _login(api, "alice")
    viewer = api.bearer("victor")
    assert api.client.get("/api/v1/auth/me", headers=viewer).json()["name"] == "victor"
    bad = {"Authorization": "Bearer not-a-token"}
    assert api.client.get("/api/v1/metrics/current", headers=bad).status_code == 401
