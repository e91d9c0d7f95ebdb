"""Rate limits against the real server over HTTP (``tests.support.stack``), with small
limits so the 429 comes after a handful of requests. A second client address is a real
second address: the client socket is bound to 127.0.0.2 (all of 127/8 is loopback)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from sysmon.main import create_app
from tests.support.server import serve
from tests.support.stack import Stack, stack

START = 1_800_000_000.0
REDIS = ("127.0.0.1", 6379)
LIMITS = {"default": "5/minute", "login": "3/minute", "alerts_test": "2/minute"}


def make_settings(tmp_path: Path, **rate_limits: Any) -> Settings:
    return load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        server={"security": {"rate_limits": {**LIMITS, **rate_limits}}},
    )


@contextmanager
def client_from(base_url: str, address: str = "127.0.0.1") -> Iterator[httpx.Client]:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=base_url, timeout=10, transport=transport) as c:
        yield c


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Stack]:
    with stack(make_settings(tmp_path), FakeClock(start=START)) as running:
        yield running


@pytest.fixture
def client(server: Stack) -> Iterator[httpx.Client]:
    with client_from(server.base_url) as c:
        yield c


def statuses(c: httpx.Client, n: int, method: str, path: str, **kwargs: Any) -> list[int]:
    return [c.request(method, path, **kwargs).status_code for _ in range(n)]


def assert_429(r: httpx.Response, limit: str) -> None:
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    detail = r.json()["detail"]
    assert limit in detail and "too many requests" in detail
    assert r.headers["x-content-type-options"] == "nosniff"  # inside the headers layer


def test_default_limit_per_client_and_route(server: Stack, client: httpx.Client) -> None:
    assert statuses(client, 5, "GET", "/api/v1/alerts/silences") == [200] * 5
    assert_429(client.get("/api/v1/alerts/silences"), "5 per 1 minute")
    assert_429(client.get("/api/v1/alerts/silences"), "5 per 1 minute")
    # Another route of the same client has its own budget...
    assert client.get("/api/v1/alerts/rules").status_code == 200
    # ...and so has another client on the same route.
    with client_from(server.base_url, "127.0.0.2") as other:
        assert statuses(other, 5, "GET", "/api/v1/alerts/silences") == [200] * 5
        assert other.get("/api/v1/alerts/silences").status_code == 429


def test_path_parameters_share_their_routes_budget(client: httpx.Client) -> None:
    """Varying an id or a metric name does not buy a new budget."""
    got = [client.get(f"/api/v1/metrics/{name}").status_code for name in ("a", "b", "c", "d", "e")]
    assert 429 not in got
    assert_429(client.get("/api/v1/metrics/f"), "5 per 1 minute")
    got = [client.delete(f"/api/v1/alerts/silences/{i}").status_code for i in range(1, 6)]
    assert got == [404] * 5
    assert_429(client.delete("/api/v1/alerts/silences/6"), "5 per 1 minute")
    # Unknown paths share one budget too (a scanner cannot spread over them).
    assert statuses(client, 5, "GET", "/nope/1") == [404] * 5
    assert client.get("/another/unknown/path").status_code == 429


def test_login_routes_share_the_hardest_limit(server: Stack, client: httpx.Client) -> None:
    """Applies in ``auth.mode: none`` too, whether or not the routes exist yet."""
    form = {"username": "admin", "password": "guess"}
    got = [
        client.post("/api/v1/auth/token", data=form).status_code,
        client.post("/api/v1/auth/login", data=form).status_code,
        client.post("/api/v1/auth/refresh").status_code,
    ]
    assert 429 not in got
    for path in ("/api/v1/auth/token", "/api/v1/auth/login", "/api/v1/auth/refresh/"):
        assert_429(client.post(path, data=form), "3 per 1 minute")
    with client_from(server.base_url, "127.0.0.3") as other:
        assert other.post("/api/v1/auth/token", data=form).status_code != 429


def test_alert_test_messages_are_limited_without_auth(client: httpx.Client) -> None:
    body = {"channel": "no-such-channel"}
    assert statuses(client, 2, "POST", "/api/v1/alerts/test", json=body) == [404, 404]
    assert_429(client.post("/api/v1/alerts/test", json=body), "2 per 1 minute")
    # Reading alerts is the default limit's business, not the test budget's.
    assert client.get("/api/v1/alerts/rules").status_code == 200


def test_health_and_stream_are_not_counted(client: httpx.Client) -> None:
    assert statuses(client, 12, "GET", "/api/v1/health") == [200] * 12
    for _ in range(8):
        with client.stream("GET", "/api/v1/stream") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")


def test_limits_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, enabled=False)
    with stack(settings, FakeClock(start=START)) as running, client_from(running.base_url) as c:
        assert statuses(c, 8, "GET", "/api/v1/alerts/silences") == [200] * 8


# --- Redis ---------------------------------------------------------------------------------


def redis_or_skip() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host=REDIS[0], port=REDIS[1], socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS[0]}:{REDIS[1]} ({exc}): shared-limit test not run")
    return client


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis_or_skip()
    prefix = f"sysmon-test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def test_two_servers_share_one_limit_through_redis(tmp_path: Path, redis_prefix: str) -> None:
    settings = make_settings(
        tmp_path, storage=f"redis://{REDIS[0]}:{REDIS[1]}/0", key_prefix=redis_prefix
    )
    clock = FakeClock(start=START)
    with stack(settings, clock) as first:
        second_app = create_app(
            settings, clock=clock, channel=first.app.state.subscriber.path, start_agent=False
        )
        with (
            serve(second_app) as second,
            client_from(first.base_url) as a,
            client_from(second.base_url) as b,
        ):
            got = [
                a.get("/api/v1/alerts/silences").status_code,
                b.get("/api/v1/alerts/silences").status_code,
                a.get("/api/v1/alerts/silences").status_code,
                b.get("/api/v1/alerts/silences").status_code,
                a.get("/api/v1/alerts/silences").status_code,
            ]
            assert got == [200] * 5
            assert_429(b.get("/api/v1/alerts/silences"), "5 per 1 minute")
            assert_429(a.get("/api/v1/alerts/silences"), "5 per 1 minute")
            with client_from(second.base_url, "127.0.0.2") as other:
                assert other.get("/api/v1/alerts/silences").status_code == 200
    # The windows really are in Redis, under the configured prefix.
    keys = list(redis_or_skip().scan_iter(match=f"{redis_prefix}*"))
    assert keys


def test_unreachable_redis_falls_back_to_limits_in_this_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, storage="redis://127.0.0.1:1/0")  # nothing listens
    caplog.set_level(logging.WARNING, logger="sysmon.security.ratelimit")
    with stack(settings, FakeClock(start=START)) as running, client_from(running.base_url) as c:
        assert statuses(c, 5, "GET", "/api/v1/alerts/silences") == [200] * 5
        assert_429(c.get("/api/v1/alerts/silences"), "5 per 1 minute")
    warnings = [r.getMessage() for r in caplog.records if r.name == "sysmon.security.ratelimit"]
    assert len(warnings) == 1, warnings
    assert "limiting in this process" in warnings[0]
