"""``GET /api/v1/hosts/{host}/series``: one host's series, shaped like ``/current``'s
``metrics`` without values (what the dashboard plans another host's sections from)."""

from __future__ import annotations

import httpx

from sysmon.clock import FakeClock
from tests.api.conftest import tick
from tests.support.stack import Stack


def test_lists_the_hosts_devices_like_current(
    client: httpx.Client, server: Stack, clock: FakeClock
) -> None:
    tick(server, clock, 2)
    host = client.get("/api/v1/hosts").json()["default_host"]
    r = client.get(f"/api/v1/hosts/{host}/series")
    assert r.status_code == 200, r.text
    body = r.json()
    current = client.get("/api/v1/metrics/current").json()["metrics"]
    assert body["host"] == host
    assert "processes" not in body["metrics"]
    for metric in ("cpu", "disk", "network"):
        for key, group in current[metric].items():
            if key == "total":
                assert body["metrics"][metric]["total"] == {}
            else:  # every device, mount, interface and core the tick had
                assert set(body["metrics"][metric][key]) == set(group), (metric, key)


def test_unknown_host_is_422_naming_host(client: httpx.Client, server: Stack) -> None:
    r = client.get("/api/v1/hosts/nosuchhost/series")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "host"]
