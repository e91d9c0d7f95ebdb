"""Every route of the real app, found by enumeration, refuses a caller without valid
credentials; every admin route, found by its dependency on ``require_admin``, refuses a
viewer. A route added tomorrow is covered without anyone adding it here.

Only ``PUBLIC_EXPECTED`` answers without credentials, and that list is spelled out below
on purpose: widening the allow-list in ``sysmon.security.auth`` must change this test too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from sysmon.security.deps import require_admin
from tests.security.auth_support import AuthStack, auth_stack, bad_tokens

PUBLIC_EXPECTED = {
    ("GET", "/api/v1/health"),
    ("GET", "/login"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/refresh"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("GET", "/"),
}
STATIC_FILE = "app.js"  # a file that exists under /static: the mount's files are public
START_RANGE = {"start": "1800000000", "end": "1800000060"}


def _concrete(path: str) -> str:
    """A request path for a route template: every ``{param}`` becomes ``1``."""
    return re.sub(r"\{[^}]+\}", "1", path)


def flat_routes(app: FastAPI) -> list[tuple[BaseRoute, Any]]:
    """(the route as declared, the route as served: full path, methods, ``dependant``).

    FastAPI >= 0.16x keeps included routers as lazy ``_IncludedRouter`` entries in
    ``app.routes``; ``iter_route_contexts`` flattens them with their prefixes and
    router-level dependencies. Older versions list the routes themselves.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return [(route, route) for route in app.routes]
    return [(ctx.original_route, ctx) for ctx in iter_route_contexts(app.routes)]


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route, FAST_ROUTE and mount of the app."""
    found: set[tuple[str, str]] = set()
    for route, served in flat_routes(app):
        if isinstance(route, WebSocketRoute | APIWebSocketRoute):
            pytest.fail(f"websocket route {served.path}: extend this test to cover it")
        if isinstance(route, Mount):
            found.add(("GET", f"{served.path}/{STATIC_FILE}"))
            found.add(("GET", f"{served.path}/does-not-exist.js"))
        elif isinstance(route, Route | APIRoute):
            found.update((m, _concrete(served.path)) for m in served.methods or ())
        else:
            pytest.fail(f"unknown kind of route {route!r}: extend this test to cover it")
    return sorted(found)


def _depends_on(dependant: Dependant, target: object) -> bool:
    return any(d.call is target or _depends_on(d, target) for d in dependant.dependencies)


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method, _concrete(served.path))
        for route, served in flat_routes(app)
        if isinstance(route, APIRoute) and _depends_on(served.dependant, require_admin)
        for method in served.methods
    )


def _status(client: httpx.Client, method: str, path: str, headers: dict[str, str]) -> int:
    """The status only: streamed, so the never-ending SSE answer does not hang the test."""
    with client.stream(method, path, headers=headers) as response:
        return response.status_code


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthStack]:
    tmp: Path = tmp_path_factory.mktemp("coverage")
    with auth_stack(tmp) as running:
        running.running.tick(3)
        yield running


def test_the_enumeration_sees_every_kind_of_route(api: AuthStack) -> None:
    seen = endpoints(api.running.app)
    paths = {path for _, path in seen}
    assert ("GET", "/api/v1/metrics/current") in seen  # a plain Starlette FAST_ROUTE
    assert ("GET", "/api/v1/metrics/1") in seen  # FastAPI route with a parameter
    assert ("DELETE", "/api/v1/alerts/silences/1") in seen
    assert any(path.startswith("/static/") for path in paths)  # mounts
    assert {"/docs", "/openapi.json", "/api/v1/stream"} <= paths


def test_every_route_but_the_allow_list_answers_401_without_credentials(api: AuthStack) -> None:
    public = set()
    for method, path in endpoints(api.running.app):
        status = _status(api.client, method, path, {})
        if status != 401:
            public.add((method, path))
            continue
        answer = api.client.request(method, path)
        assert answer.headers["www-authenticate"] == "Bearer"
        if method != "HEAD":
            assert answer.json() == {"detail": "not authenticated"}
    static = {(m, p) for m, p in public if p.startswith("/static/")}
    assert public - static == PUBLIC_EXPECTED
    assert static, "static assets load without credentials (the login page needs them)"


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
        "unknown user",
    ],
)
def test_every_protected_route_refuses_a_bad_token(api: AuthStack, kind: str) -> None:
    viewer = api.tokens("victor")["access_token"]
    token = bad_tokens(api.key, viewer)[kind]
    for method, path in endpoints(api.running.app):
        if (method, path) in PUBLIC_EXPECTED or path.startswith("/static/"):
            continue
        status = _status(api.client, method, path, {"Authorization": f"Bearer {token}"})
        assert status == 401, f"{kind}: {method} {path} -> {status}"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic YWxpY2U6YWxpY2U="},
        {"Authorization": "Bearer"},
        {"X-API-Key": "sysmon_not-a-key"},
        {"Cookie": "sysmon_session=not-a-session"},
    ],
    ids=["basic auth", "empty bearer", "unknown api key", "unknown session"],
)
def test_other_bad_credentials_are_refused_too(api: AuthStack, headers: dict[str, str]) -> None:
    for method, path in endpoints(api.running.app):
        if (method, path) in PUBLIC_EXPECTED or path.startswith("/static/"):
            continue
        assert _status(api.client, method, path, headers) == 401, f"{method} {path}"


def test_a_viewer_gets_403_on_every_admin_route(api: AuthStack) -> None:
    admin_only = admin_routes(api.running.app)
    assert ("POST", "/api/v1/alerts/silences") in admin_only
    assert ("DELETE", "/api/v1/keys/1") in admin_only
    assert ("GET", "/api/v1/audit") in admin_only
    viewer = api.bearer("victor")
    key = api.client.post(
        "/api/v1/keys", json={"name": "viewer-key", "role": "viewer"}, headers=api.bearer("alice")
    ).json()["key"]
    for method, path in admin_only:
        for headers in (viewer, {"X-API-Key": key}):
            response = api.client.request(method, path, headers=headers)
            assert response.status_code == 403, f"{method} {path} -> {response.status_code}"
            assert response.json() == {"detail": "admin role required"}


def test_every_state_changing_route_is_public_or_admin_only(api: AuthStack) -> None:
    """A viewer may read, never write: a new write route must depend on require_admin."""
    admin_only = set(admin_routes(api.running.app))
    for method, path in endpoints(api.running.app):
        if method in ("GET", "HEAD") or (method, path) in PUBLIC_EXPECTED:
            continue
        assert (method, path) in admin_only, f"{method} {path} is writable by viewers"


def test_valid_credentials_pass_on_every_route(api: AuthStack) -> None:
    """The other side of the coin: nothing above is 401 because everything is."""
    admin = api.bearer("alice")
    for method, path in endpoints(api.running.app):
        if (method, path) in PUBLIC_EXPECTED or path.startswith("/static/"):
            continue
        status = _status(api.client, method, path, admin)
        assert status not in (401, 403), f"{method} {path} -> {status}"


def test_cached_range_answers_are_refused_without_credentials(api: AuthStack) -> None:
    cache = api.running.app.state.range_cache
    viewer = api.bearer("victor")
    params = {**START_RANGE, "resolution": "1m"}  # the store's path (raw: the live head)
    first = api.client.get("/api/v1/metrics/cpu", params=params, headers=viewer)
    assert first.status_code == 200
    hits = cache.hits
    again = api.client.get("/api/v1/metrics/cpu", params=params, headers=viewer)
    assert again.status_code == 200 and cache.hits == hits + 1, "second answer from the cache"
    forged = bad_tokens(api.key, api.tokens("victor")["access_token"])["other key"]
    for headers in ({}, {"Authorization": f"Bearer {forged}"}):
        refused = api.client.get("/api/v1/metrics/cpu", params=params, headers=headers)
        assert refused.status_code == 401
        assert cache.hits == hits + 1, "a refused request never reaches the cache"


def test_live_head_answers_are_refused_without_credentials(api: AuthStack) -> None:
    head = api.running.app.state.live_head
    viewer = api.bearer("victor")
    params = {**START_RANGE, "resolution": "raw"}
    api.client.get("/api/v1/metrics/cpu", params=params, headers=viewer)  # learns the fields
    answers = head.answers
    allowed = api.client.get("/api/v1/metrics/cpu", params=params, headers=viewer)
    assert allowed.status_code == 200 and head.answers == answers + 1, "answered from memory"
    forged = bad_tokens(api.key, api.tokens("victor")["access_token"])["other key"]
    for headers in ({}, {"Authorization": f"Bearer {forged}"}):
        refused = api.client.get("/api/v1/metrics/cpu", params=params, headers=headers)
        assert refused.status_code == 401
        assert head.answers == answers + 1, "a refused request never reaches the head"
