"""``deploy/nginx/sysmon.conf`` as shipped, in Debian's nginx, in front of a real sysmon
(agent + server, ``auth.mode: jwt``): HTTPS, the login, forwarded headers, one request
id for both logs, and the live stream passing each tick through at once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.security.auth_support import PASSWORDS, AuthStack, auth_stack
from tests.support.nginx import Nginx, nginx_proxy


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AuthStack, Nginx]]:
    """One server and one nginx for the module (each test uses its own client)."""
    tmp_path = tmp_path_factory.mktemp("nginx")
    with auth_stack(tmp_path) as server:
        port = urlsplit(server.running.base_url).port
        assert port is not None
        with nginx_proxy(tmp_path, port) as proxy:
            yield server, proxy


def _client(proxy: Nginx) -> httpx.Client:
    return httpx.Client(base_url=proxy.https_url, verify=proxy.tls_context(), timeout=10)


def test_health_over_https_with_forwarded_scheme_and_one_request_id(
    proxied: tuple[AuthStack, Nginx],
) -> None:
    _, proxy = proxied
    with _client(proxy) as client:
        r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json()["status"] in ("ok", "degraded")
    # sysmon saw https (X-Forwarded-Proto from a trusted 127.0.0.1 proxy): HSTS is sent.
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    # nginx's $request_id reached sysmon, which echoed it; nginx logged the same id.
    rid = r.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    deadline = time.monotonic() + 5
    while rid not in proxy.access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"127.0.0.1 {rid} 200 GET /api/v1/health HTTP/1.1" in proxy.access_log.read_text()


def test_plain_http_redirects_to_https(proxied: tuple[AuthStack, Nginx]) -> None:
    _, proxy = proxied
    r = httpx.get(f"{proxy.http_url}/api/v1/health?x=1", timeout=5)
    assert r.status_code == 301
    assert r.headers["Location"] == "https://127.0.0.1/api/v1/health?x=1"


def test_login_through_the_proxy(proxied: tuple[AuthStack, Nginx]) -> None:
    _, proxy = proxied
    with _client(proxy) as client:
        assert client.get("/api/v1/auth/me").status_code == 401
        login = client.post(
            "/api/v1/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]}
        )
        assert login.status_code == 200, login.text
        assert login.json()["user"] == "alice"
        cookies = login.headers.get_list("set-cookie")
        assert cookies and all("Secure" in c for c in cookies)  # sysmon knows it is https
        me = client.get("/api/v1/auth/me")  # the session cookie, sent back over https
        assert me.status_code == 200
        assert (me.json()["name"], me.json()["role"]) == ("alice", "admin")
        token = client.post(
            "/api/v1/auth/token", data={"username": "victor", "password": PASSWORDS["victor"]}
        )
        assert token.status_code == 200, token.text
        assert token.json()["access_token"]


def test_live_stream_is_not_buffered(proxied: tuple[AuthStack, Nginx]) -> None:
    server, proxy = proxied
    server.running.tick()  # something to show on connect
    headers = server.bearer("victor")
    with (
        _client(proxy) as client,
        client.stream("GET", "/api/v1/stream", headers=headers, timeout=5) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()

        def next_snapshot() -> dict[str, object]:
            for line in lines:
                if line.startswith("data: "):
                    body: dict[str, object] = json.loads(line.removeprefix("data: "))
                    return body
            raise AssertionError("stream ended")

        first = next_snapshot()
        started = time.monotonic()
        (snapshot,) = server.running.tick()
        second = next_snapshot()  # a buffering proxy would hold it (read timeout: 5 s)
        elapsed = time.monotonic() - started
    assert second["timestamp"] == snapshot.timestamp != first["timestamp"]
    assert elapsed < 2.0
