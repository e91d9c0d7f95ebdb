"""The audit log over real HTTP: a row in the database (``GET /api/v1/audit``) and a JSON
line on the ``sysmon.audit`` logger for logins, admin actions, keys and users; and no
password, token, key or webhook URL anywhere in the logs or in an answer that did not
issue it."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.alerts.receivers import HttpReceiver
from tests.security.auth_support import HOOK_ENV, PASSWORDS, AuthStack, auth_stack

WRONG_PASSWORD = "Wrong-guess-for-victor-77"
# The test's own HTTP client logs what it receives (httpcore at DEBUG shows Set-Cookie);
# the server runs in other threads, so its records are those of any other thread.
MAIN_THREAD = threading.main_thread().ident
NEW_USER_PASSWORD = "olga-initial-Secret-9"


@pytest.fixture
def hooks() -> Iterator[HttpReceiver]:
    with HttpReceiver().running() as receiver:
        yield receiver


@pytest.fixture
def api(
    tmp_path: Path,
    hooks: HttpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[AuthStack]:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(HOOK_ENV, hooks.url("/ok/secret-hook-path-123"))
    channel = {"type": "webhook", "url_env": HOOK_ENV, "timeout_seconds": 5}
    with auth_stack(tmp_path, alerts={"channels": {"hook": channel}}) as running:
        running.running.tick(2)
        yield running


def _formatted(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info:
        text += logging.Formatter().formatException(record.exc_info)
    return text


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "sysmon.audit"]


def audit_rows(api: AuthStack, **params: Any) -> list[dict[str, Any]]:
    answer = api.client.get("/api/v1/audit", params=params, headers=api.bearer("alice"))
    assert answer.status_code == 200
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def test_logins_are_audited_with_the_source_and_never_the_password(
    api: AuthStack, caplog: pytest.LogCaptureFixture
) -> None:
    api.tokens("victor")
    failed = api.client.post(
        "/api/v1/auth/token", data={"username": "victor", "password": WRONG_PASSWORD}
    )
    assert failed.status_code == 401
    unknown = api.client.post(
        "/api/v1/auth/login", json={"username": WRONG_PASSWORD, "password": WRONG_PASSWORD}
    )
    assert unknown.status_code == 401

    logins = [e for e in audit_rows(api) if e["event"] == "login"]
    # Newest first; alice's own login for the audit query is the newest.
    assert [(e["outcome"], e["actor"], e["via"]) for e in logins] == [
        ("success", "alice", "token"),
        ("failure", None, "session"),
        ("failure", "victor", "token"),
        ("success", "victor", "token"),
    ]
    assert {e["source"] for e in logins} == {"127.0.0.1"}
    assert logins[1]["detail"] == {"reason": "unknown user"}
    assert logins[2]["detail"] == {"reason": "bad password"}

    lines = [line for line in audit_lines(caplog) if line["audit"] == "login"]
    assert [(line["outcome"], line["actor"]) for line in lines] == [
        ("success", "victor"),
        ("failure", "victor"),
        ("failure", None),
        ("success", "alice"),
    ]
    assert all(line["source"] == "127.0.0.1" for line in lines)
    warnings = [
        r for r in caplog.records if r.name == "sysmon.audit" and r.levelno >= logging.WARNING
    ]
    assert len(warnings) == 2, "failed logins are warnings"
    assert WRONG_PASSWORD not in caplog.text, "a password typed as a user name is not kept"


def test_admin_actions_are_audited(
    api: AuthStack, caplog: pytest.LogCaptureFixture, hooks: HttpReceiver
) -> None:
    admin = api.bearer("alice")
    silence = api.client.post(
        "/api/v1/alerts/silences",
        json={"matchers": {"rule": "*"}, "until": 4_000_000_000},
        headers=admin,
    )
    assert silence.status_code == 201
    silence_id = silence.json()["id"]
    path = f"/api/v1/alerts/silences/{silence_id}"
    assert api.client.delete(path, headers=admin).status_code == 204
    sent = api.client.post("/api/v1/alerts/test", json={"channel": "hook"}, headers=admin)
    assert sent.status_code == 200 and len(hooks.bodies("/ok/")) == 1
    key = api.client.post("/api/v1/keys", json={"name": "ci", "role": "viewer"}, headers=admin)
    key_id = key.json()["id"]
    assert api.client.delete(f"/api/v1/keys/{key_id}", headers=admin).status_code == 204
    user = {"name": "olga", "role": "viewer", "password": NEW_USER_PASSWORD}
    assert api.client.post("/api/v1/users", json=user, headers=admin).status_code == 201
    assert api.client.delete("/api/v1/users/olga", headers=admin).status_code == 204
    # A viewer's attempt is recorded as denied.
    viewer = api.bearer("victor")
    denied = api.client.post(
        "/api/v1/alerts/silences", json={"matchers": {"rule": "*"}, "until": 4e9}, headers=viewer
    )
    assert denied.status_code == 403

    expected = [
        (
            "request",
            "success",
            "alice",
            {"method": "POST", "path": "/api/v1/alerts/silences", "status": 201},
        ),
        ("request", "success", "alice", {"method": "DELETE", "path": path, "status": 204}),
        (
            "request",
            "success",
            "alice",
            {"method": "POST", "path": "/api/v1/alerts/test", "status": 200},
        ),
        (
            "key.create",
            "success",
            "alice",
            {"key_id": key_id, "key_name": "ci", "key_role": "viewer"},
        ),
        ("key.revoke", "success", "alice", {"key_id": key_id, "key_name": "ci"}),
        ("user.create", "success", "alice", {"user": "olga", "user_role": "viewer"}),
        ("user.delete", "success", "alice", {"user": "olga"}),
        (
            "request",
            "denied",
            "victor",
            {"method": "POST", "path": "/api/v1/alerts/silences", "status": 403},
        ),
    ]
    rows = [e for e in reversed(audit_rows(api)) if e["event"] != "login" and e["actor"] != "cli"]
    assert [(e["event"], e["outcome"], e["actor"], e["detail"]) for e in rows] == expected
    assert all(e["via"] == "jwt" and e["source"] == "127.0.0.1" for e in rows)
    assert [e["role"] for e in rows] == ["admin"] * 7 + ["viewer"]

    lines = [line for line in audit_lines(caplog) if line["audit"] != "login" and line["actor"]]
    assert [(line["audit"], line["outcome"], line["actor"]) for line in lines] == [
        (event, outcome, actor) for event, outcome, actor, _ in expected
    ]
    assert lines[0]["method"] == "POST" and lines[0]["status"] == 201


def test_audit_query_by_time_and_limit(api: AuthStack) -> None:
    for _ in range(3):
        api.tokens("victor")
    rows = audit_rows(api)
    assert len(rows) >= 4
    assert [e["ts"] for e in rows] == sorted((e["ts"] for e in rows), reverse=True)
    assert len(audit_rows(api, limit=2)) == 2
    middle = rows[2]["ts"]
    older = audit_rows(api, end=middle)
    assert older and all(e["ts"] <= middle for e in older)
    assert audit_rows(api, start=4_000_000_000, end=4_000_000_100) == []
    bad = api.client.get(
        "/api/v1/audit", params={"start": "10", "end": "5"}, headers=api.bearer("alice")
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "start"]


def test_no_secret_appears_in_logs_or_in_answers_that_did_not_issue_it(
    api: AuthStack, caplog: pytest.LogCaptureFixture
) -> None:
    client = api.client
    answers: list[httpx.Response] = []  # every answer that issues nothing
    secrets: set[str] = set(PASSWORDS.values()) | {WRONG_PASSWORD, NEW_USER_PASSWORD}
    secrets.add(api.key.hex())
    secrets.add(str(json.loads(json.dumps(api.key.decode("latin-1")))))

    def issued(answer: httpx.Response, *fields: str) -> dict[str, Any]:
        assert answer.status_code in (200, 201), answer.text
        body: dict[str, Any] = answer.json()
        secrets.update(str(body[f]) for f in fields)
        secrets.update(
            c.split(";")[0].split("=", 1)[1]
            for c in answer.headers.get_list("set-cookie")
            if not c.split(";")[0].endswith("=")
        )
        return body

    pair = issued(
        client.post(
            "/api/v1/auth/token", data={"username": "alice", "password": PASSWORDS["alice"]}
        ),
        "access_token",
        "refresh_token",
    )
    admin = {"Authorization": f"Bearer {pair['access_token']}"}
    rotated = issued(
        client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}),
        "access_token",
        "refresh_token",
    )
    answers.append(
        client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    )  # reuse: refused
    answers.append(
        client.post("/api/v1/auth/token", data={"username": "victor", "password": WRONG_PASSWORD})
    )
    key = issued(client.post("/api/v1/keys", json={"name": "k"}, headers=admin), "key")
    answers.append(client.get("/api/v1/keys", headers=admin))
    answers.append(client.get("/api/v1/metrics/current", headers={"X-API-Key": key["key"]}))
    answers.append(
        client.post(
            "/api/v1/users",
            json={"name": "olga", "role": "viewer", "password": NEW_USER_PASSWORD},
            headers=admin,
        )
    )
    answers.append(client.get("/api/v1/users", headers=admin))
    session = issued(
        client.post(
            "/api/v1/auth/login", json={"username": "victor", "password": PASSWORDS["victor"]}
        ),
        "csrf_token",
    )
    answers.append(client.get("/api/v1/auth/me"))
    answers.append(
        client.post(
            "/api/v1/alerts/test",
            json={"channel": "hook"},
            headers={"X-CSRF-Token": session["csrf_token"]},
        )
    )  # viewer: 403
    answers.append(client.post("/api/v1/alerts/test", json={"channel": "hook"}, headers=admin))
    answers.append(client.get("/api/v1/alerts/rules", headers=admin))
    answers.append(client.get("/api/v1/audit", headers=admin))
    answers.append(client.get("/api/v1/health"))
    answers.append(
        client.post(
            "/api/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]}, headers=admin
        )
    )
    answers.append(client.get("/openapi.json", headers={"X-API-Key": key["key"]}))

    secrets.add(os.environ[HOOK_ENV])  # the webhook URL is a secret too
    assert all(len(s) >= 8 for s in secrets)
    logs = "\n".join(_formatted(r) for r in caplog.records if r.thread != MAIN_THREAD)
    assert "audit" in logs and "key.create" in logs, "the server's records were captured"
    for secret in secrets:
        assert secret not in logs, f"a secret is in the logs: {secret[:6]}..."
        for answer in answers:
            seen = answer.text + "".join(f"{k}:{v}" for k, v in answer.headers.items())
            assert secret not in seen, f"{answer.request.url.path} shows {secret[:6]}..."
