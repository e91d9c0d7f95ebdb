"""The real agent and server with ``relational.url`` naming PostgreSQL and ``auth.mode:
jwt``: users, logins, the audit log, a silence made through the API and the agent's
alert history all land in PostgreSQL (and no ``auth.db`` appears)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from sysmon.channel import data_dir
from sysmon.clock import FakeClock
from sysmon.security.accounts import Accounts
from sysmon.security.audit import Auditor
from sysmon.security.credentials import Credentials
from sysmon.security.passwords import Passwords
from sysmon.security.store import AuthStore, auth_db_path
from tests.alerts.receivers import wait_for
from tests.relational.backends import backend_url
from tests.security.auth_support import PASSWORDS, START, jwt_settings
from tests.support.stack import stack


@pytest.fixture
def postgresql_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with backend_url(request, "postgresql") as url:
        assert url is not None
        yield url


def test_login_silence_and_alert_history_in_postgresql(tmp_path: Path, postgresql_url: str) -> None:
    rule = {"name": "procs", "metric": "processes.count", "threshold": 0, "for": "0s"}
    settings = jwt_settings(tmp_path, relational={"url": postgresql_url}, alerts={"rules": [rule]})
    url = settings.relational.resolved_url()
    assert url == postgresql_url
    folder = data_dir(settings.database.path)
    store = AuthStore(auth_db_path(settings.auth.users_db, folder), url=url)
    store.open()  # what `sysmon user add` does, on the configured database
    try:
        Accounts(store, Credentials(store), Passwords(), Auditor(store)).create_user(
            "alice", "admin", PASSWORDS["alice"], by=None, source=None
        )
    finally:
        store.close()

    with (
        stack(settings, FakeClock(start=START)) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        running.tick(3)
        login = client.post(
            "/api/v1/auth/token", data={"username": "alice", "password": PASSWORDS["alice"]}
        )
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        made = client.post(
            "/api/v1/alerts/silences",
            json={"matchers": {"rule": "disk*"}, "until": START + 3600, "comment": "e2e"},
            headers=bearer,
        )
        assert made.status_code == 201, made.text
        listed = client.get("/api/v1/alerts/silences", headers=bearer).json()
        assert [s["id"] for s in listed["silences"]] == [made.json()["id"]]

        engine = create_engine(postgresql_url)
        try:
            with engine.connect() as conn:
                silences = conn.exec_driver_sql(
                    "SELECT id, matchers, comment, until FROM alert_silences"
                ).all()
                assert [tuple(r) for r in silences] == [
                    (made.json()["id"], '{"rule": "disk*"}', "e2e", START + 3600)
                ]

                def fired() -> bool:
                    rows = conn.exec_driver_sql("SELECT kind, rule, metric FROM alert_events").all()
                    conn.rollback()
                    return [tuple(r) for r in rows] == [("firing", "procs", "processes.count")]

                assert wait_for(fired), "the agent's firing event never reached PostgreSQL"
                history = client.get(
                    "/api/v1/alerts/history",
                    params={"start": START - 10, "end": START + 60},
                    headers=bearer,
                )
                assert history.status_code == 200, history.text
                assert "procs" in history.text
                logins = conn.exec_driver_sql(
                    "SELECT actor, outcome FROM audit WHERE event = 'login'"
                ).all()
                assert [tuple(r) for r in logins] == [("alice", "success")]
                (state,) = conn.exec_driver_sql("SELECT rule, state FROM alert_state").all()
                assert tuple(state) == ("procs", "firing")
        finally:
            engine.dispose()
    assert not (folder / "auth.db").exists()
