"""Host check, security headers, CORS and the 422 for NaN, against the real server over
HTTP (``tests.support.stack``: in-process agent + uvicorn on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.security.hosts import HostPolicy, is_loopback_host, normalize_host
from sysmon.security.http import DASHBOARD_CSP
from tests.support.stack import Stack, stack

START = 1_800_000_000.0
SECURITY_HEADERS = {
    "content-security-policy": DASHBOARD_CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def make_settings(tmp_path: Path, auth_mode: str = "none", **security: Any) -> Settings:
    return load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        auth={"mode": auth_mode},
        server={"security": security},
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Stack]:
    with stack(make_settings(tmp_path), FakeClock(start=START)) as running:
        yield running


@pytest.fixture
def client(server: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


# --- Host names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LOCALHOST:8000", "localhost"),
        ("localhost.:8000", "localhost"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("example.com", "example.com"),
        ("::1", None),  # IPv6 needs brackets
        ("localhost:80x", None),
        ("[::1]x", None),
        ("[::1", None),
        ("", None),
        (":8000", None),
    ],
)
def test_normalize_host(header: str, name: str | None) -> None:
    assert normalize_host(header) == name


@pytest.mark.parametrize(
    ("name", "loopback"),
    [
        ("localhost", True),
        ("app.localhost", True),
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("localhost.evil.example", False),
        ("evillocalhost", False),
        ("128.0.0.1", False),
    ],
)
def test_loopback_names(name: str, loopback: bool) -> None:
    assert is_loopback_host(name) is loopback


def test_allowed_hosts_exact_and_wildcard() -> None:
    policy = HostPolicy.build(["Monitor.Example", "*.corp.example", "[2001:db8::1]"])
    assert policy.allows("monitor.example:443")
    assert policy.allows("a.corp.example")
    assert policy.allows("a.b.corp.example")
    assert not policy.allows("corp.example")  # the wildcard is for subdomains only
    assert not policy.allows("corp.example.evil")
    assert policy.allows("[2001:db8::1]:8000")
    assert policy.allows("localhost:8000")  # loopback is always served
    assert not policy.allows("evil.example")
    assert not policy.allows(None)
    assert HostPolicy.build(["*"]).allows("anything.example")


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1", "127.0.0.5:1", "[::1]:8000", "x.localhost"]
)
def test_loopback_host_is_served(client: httpx.Client, host: str) -> None:
    r = client.get("/api/v1/health", headers={"Host": host})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8000", "10.0.0.1", "localhost.attacker.example"]
)
def test_foreign_host_gets_421_in_none_mode(client: httpx.Client, host: str) -> None:
    """DNS rebinding: the browser sends the attacker's name; nothing is served to it."""
    for method, path in (
        ("GET", "/api/v1/health"),
        ("GET", "/"),
        ("DELETE", "/api/v1/alerts/silences/1"),
    ):
        r = client.request(method, path, headers={"Host": host})
        assert r.status_code == 421, (method, path)
        assert "is not served here" in r.json()["detail"]
        assert r.headers["x-frame-options"] == "DENY"
    # The silence a rebinding page would post never reaches the route.
    r = client.post(
        "/api/v1/alerts/silences",
        headers={"Host": host},
        json={"matchers": {"rule": "*"}, "until": "9999-12-31T23:59:59Z"},
    )
    assert r.status_code == 421
    assert client.get("/api/v1/alerts/silences").json()["silences"] == []


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /api/v1/health HTTP/1.0\r\n\r\n",
        # httptools (the server's parser) lets an HTTP/1.1 request without Host through.
        b"GET /api/v1/health HTTP/1.1\r\nConnection: close\r\n\r\n",
    ],
)
def test_missing_host_gets_421(server: Stack, request_bytes: bytes) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 421 ")


def test_allowed_hosts_with_jwt(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, auth_mode="jwt", allowed_hosts=["monitor.example", "*.corp.example"]
    )
    with (
        stack(settings, FakeClock(start=START)) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as c,
    ):
        for host in ("monitor.example", "monitor.example:8443", "db.corp.example", "localhost"):
            assert c.get("/api/v1/health", headers={"Host": host}).status_code != 421, host
        for host in ("corp.example", "evil.example", "monitor.example.evil"):
            assert c.get("/api/v1/health", headers={"Host": host}).status_code == 421, host


def test_allowed_hosts_ignored_without_auth(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, allowed_hosts=["monitor.example"])
    with (
        stack(settings, FakeClock(start=START)) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as c,
    ):
        assert c.get("/api/v1/health", headers={"Host": "monitor.example"}).status_code == 421


# --- Headers -------------------------------------------------------------------------------


def assert_security_headers(r: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert r.headers.get(name) == value, (r.url, name)
    assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS


def test_headers_on_every_kind_of_response(server: Stack, client: httpx.Client) -> None:
    server.tick(3)
    end = server.clock.time()
    answers = {
        "json": client.get("/api/v1/health"),
        "dashboard": client.get("/"),
        "static": client.get("/static/app.js"),
        "vendor": client.get("/static/vendor/uplot/uPlot.iife.min.js"),
        "not found": client.get("/no/such/page"),
        "validation error": client.get("/api/v1/metrics/cpu", params={"start": "yesterday-ish"}),
        "method not allowed": client.post("/api/v1/health"),
        "range": client.get("/api/v1/metrics/cpu", params={"start": end - 60, "end": end}),
        "range, cached": client.get("/api/v1/metrics/cpu", params={"start": end - 60, "end": end}),
    }
    statuses = {what: r.status_code for what, r in answers.items()}
    assert statuses == {
        "json": 200,
        "dashboard": 200,
        "static": 200,
        "vendor": 200,
        "not found": 404,
        "validation error": 422,
        "method not allowed": 405,
        "range": 200,
        "range, cached": 200,
    }
    assert answers["range"].content == answers["range, cached"].content
    for r in answers.values():
        assert_security_headers(r)


def test_dashboard_has_no_inline_script_or_handlers() -> None:
    """The CSP allows no inline script and no inline style: the page must need neither."""
    page = (Path(__file__).resolve().parents[2] / "sysmon/web/templates/index.html").read_text()
    found: list[str] = []

    class Inline(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            names = {name for name, _ in attrs}
            found.extend(f"{tag} {name}" for name in names if name.startswith("on"))
            if "style" in names:
                found.append(f"{tag} style")
            if tag == "script" and "src" not in names:
                found.append("inline script")
            if tag == "style":
                found.append("inline style")

    Inline().feed(page)
    assert found == []


# --- CORS ------------------------------------------------------------------------------------


def preflight(c: httpx.Client, origin: str) -> httpx.Response:
    return c.options(
        "/api/v1/alerts/silences",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


def test_cors_off_by_default(client: httpx.Client) -> None:
    r = preflight(client, "https://grafana.example")
    assert "access-control-allow-origin" not in r.headers
    r = client.get("/api/v1/health", headers={"Origin": "https://grafana.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_cors_allows_exactly_the_listed_origins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cors_origins=["https://grafana.example"])
    with (
        stack(settings, FakeClock(start=START)) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as c,
    ):
        r = preflight(c, "https://grafana.example")
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://grafana.example"
        assert r.headers["access-control-allow-credentials"] == "true"
        assert_security_headers(r)
        r = c.get("/api/v1/health", headers={"Origin": "https://grafana.example"})
        assert r.headers["access-control-allow-origin"] == "https://grafana.example"

        r = preflight(c, "https://evil.example")
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers
        r = c.get("/api/v1/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers


# --- NaN and Infinity in JSON bodies ------------------------------------------------------


class Connection:
    """One kept-alive HTTP/1.1 connection, so a test can tell whether it survived."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h11.Connection(h11.CLIENT)

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        headers = [("Host", "127.0.0.1"), ("Content-Length", str(len(body)))]
        if body:
            headers.append(("Content-Type", "application/json"))
        self.sock.sendall(
            self.conn.send(h11.Request(method=method, target=target, headers=headers))
        )
        self.sock.sendall(self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage()))
        status, content = 0, b""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                data = self.sock.recv(65536)
                assert data, "the server closed the connection"
                self.conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.conn.start_next_cycle()
                return status, content

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_get_422_json_and_keep_the_connection(server: Stack, token: str) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    conn = Connection(port)
    try:
        templates = [
            '{"until": @}',  # invalid (no matchers): the error echoed the whole body
            '{"matchers": {"rule": @}, "until": 1}',  # a number where a string goes
            '{"matchers": {"rule": "*"}, "until": @}',  # valid shape, not an instant
            '{"matchers": {"rule": "*"}, "until": [@], "comment": @}',
        ]
        bodies = [t.replace("@", token) for t in templates]
        for body in bodies:
            status, content = conn.request("POST", "/api/v1/alerts/silences", body.encode())
            assert status == 422, (body, content)
            detail = json.loads(content)["detail"]  # strict JSON: no NaN token in it
            assert detail and all("loc" in item and "msg" in item for item in detail)
            assert token not in content.decode().replace(f'"{token}"', "")
        status, content = conn.request("GET", "/api/v1/health")
        assert status == 200 and json.loads(content)["status"] in ("ok", "degraded")
    finally:
        conn.close()


def test_validation_errors_do_not_echo_the_body(client: httpx.Client) -> None:
    """A body may hold a password or a webhook URL: a 422 names the field, never echoes it."""
    secret = "hunter2-webhook-https://hooks.example/T000/B000/XXXX"
    r = client.post("/api/v1/alerts/silences", json={"until": 1, "secret": secret})
    assert r.status_code == 422
    assert secret not in r.text
    assert {tuple(e["loc"]) for e in r.json()["detail"]} >= {("body", "matchers")}
    # Query parameters are still echoed (they are in the URL anyway).
    r = client.get("/api/v1/metrics/cpu", params={"max_points": "lots"})
    assert r.status_code == 422
    assert any(e.get("input") == "lots" for e in r.json()["detail"])
