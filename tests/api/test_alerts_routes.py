"""The alert routes over real HTTP: a minimal FastAPI app with only the alerts router and
``app.state.alerts`` set to a real ``AlertService`` (SQLite in tmp_path, fake clock,
webhook receiver on 127.0.0.1). The app factory wires the same router later."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from sysmon.alerts.service import AlertService
from sysmon.api.routes import alerts as alerts_routes
from sysmon.clock import FakeClock
from tests.alerts.helpers import Ticker, alerts_config, make_service, url_channel
from tests.alerts.receivers import HttpReceiver
from tests.support.server import serve

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@dataclass
class Api:
    client: httpx.Client
    service: AlertService
    clock: FakeClock
    hooks: HttpReceiver
    app: FastAPI

    def ticks(self) -> Ticker:
        return Ticker(self.service, self.clock)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    clock = FakeClock(start=START)
    with HttpReceiver().running() as hooks:
        config = alerts_config(
            rules=[
                {"name": "cpu_high", "metric": "cpu.percent", "threshold": 80, "for": "1m"},
                {
                    "name": "disk_high",
                    "metric": "disk.percent",
                    "threshold": 85,
                    "selector": {"mount": "any"},
                    "severity": "critical",
                    "channels": ["hook"],
                },
            ],
            channels={
                "hook": url_channel("webhook", "HOOK_URL"),
                "broken": url_channel("webhook", "BROKEN_URL", retries=0),
                "off": url_channel("slack", "OFF_URL", enabled=False),
            },
        )
        env = {
            "HOOK_URL": hooks.url("/ok/hook"),
            "BROKEN_URL": hooks.url("/fail/hook"),
            "OFF_URL": hooks.url("/ok/off"),
        }
        service = make_service(config, str(tmp_path / "sysmon.db"), clock, env)
        app = FastAPI()
        app.include_router(alerts_routes.router)
        app.state.alerts = service
        try:
            with serve(app) as running, httpx.Client(base_url=running.base_url) as client:
                yield Api(client, service, clock, hooks, app)
        finally:
            service.stop()


def test_active_alerts_with_state_since_and_value(api: Api) -> None:
    api.ticks().run(30, cpu=90.0, mounts={"/": 95.0, "/home": 10.0})
    response = api.client.get("/api/v1/alerts")
    assert response.status_code == 200
    alerts = response.json()["alerts"]
    assert [(a["rule"], a["state"], a["labels"], a["value"]) for a in alerts] == [
        ("cpu_high", "pending", {}, 90.0),
        ("disk_high", "firing", {"mount": "/"}, 95.0),
    ]
    assert alerts[0]["since"] == START + 1
    assert alerts[1]["firing_since"] == START + 1
    assert alerts[1]["severity"] == "critical" and alerts[1]["silenced"] is False


def test_history_between_epoch_and_iso_bounds(api: Api) -> None:
    ticks = api.ticks()
    ticks.run(61, cpu=90.0)
    ticks.run(61, cpu=10.0)
    assert api.service.flush()  # the last tick's event is written by the writer thread
    response = api.client.get(
        "/api/v1/alerts/history",
        params={"start": "2027-01-15T08:00:00Z", "end": str(START + 3600)},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["start"] == START and body["end"] == START + 3600
    assert [(e["kind"], e["rule"], e["timestamp"], e["value"]) for e in body["events"]] == [
        ("firing", "cpu_high", START + 61, 90.0),
        ("resolved", "cpu_high", START + 122, 10.0),
    ]
    # Default window: the last 7 days up to now.
    assert len(api.client.get("/api/v1/alerts/history").json()["events"]) == 2
    later = api.client.get("/api/v1/alerts/history", params={"start": START + 100})
    assert [e["kind"] for e in later.json()["events"]] == ["resolved"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2027-13-45"}, "end"),
        ({"start": "-5"}, "start"),
        ({"start": str(START + 10), "end": str(START)}, "start"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_history_parameters_are_422_naming_the_param(
    api: Api, params: dict[str, str], param: str
) -> None:
    response = api.client.get("/api/v1/alerts/history", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", param]


def test_rules_and_channels_without_secrets(api: Api) -> None:
    body = api.client.get("/api/v1/alerts/rules").json()
    cpu, disk = body["rules"]
    assert cpu == {
        "name": "cpu_high",
        "metric": "cpu.percent",
        "operator": ">",
        "threshold": 80.0,
        "for": "1m",
        "for_seconds": 60.0,
        "severity": "warning",
        "selector": {},
        "recovery_threshold": 80.0,
        "recovery_for": "1m",
        "repeat_interval": "4h",
        "labels": {},
        "channels": ["hook", "broken"],
        "description": "",
    }
    assert disk["selector"] == {"mount": "any"} and disk["channels"] == ["hook"]
    assert body["channels"] == [
        {"name": "hook", "type": "webhook", "enabled": True},
        {"name": "broken", "type": "webhook", "enabled": True},
        {"name": "off", "type": "slack", "enabled": False},
    ]
    assert api.hooks.base_url not in str(body)


def test_silence_lifecycle(api: Api) -> None:
    created = api.client.post(
        "/api/v1/alerts/silences",
        json={"matchers": {"rule": "disk_high", "mount": "/"}, "until": "2027-01-15T09:00:00Z",
              "comment": "resizing"},
    )  # fmt: skip
    assert created.status_code == 201
    silence = created.json()
    assert silence["until"] == START + 3600 and silence["matchers"]["mount"] == "/"

    api.ticks().run(2, mounts={"/": 95.0, "/data": 95.0})
    states = {
        a["labels"]["mount"]: a["silenced"]
        for a in api.client.get("/api/v1/alerts").json()["alerts"]
    }
    assert states == {"/": True, "/data": False}
    listed = api.client.get("/api/v1/alerts/silences").json()["silences"]
    assert [s["id"] for s in listed] == [silence["id"]]

    assert api.client.delete(f"/api/v1/alerts/silences/{silence['id']}").status_code == 204
    assert api.client.get("/api/v1/alerts/silences").json()["silences"] == []
    missing = api.client.delete(f"/api/v1/alerts/silences/{silence['id']}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"silence {silence['id']} not found"}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"matchers": {}, "until": START + 60}, ["body", "matchers"]),
        ({"matchers": {"rule": "x"}, "until": START - 1}, ["body", "until"]),
        ({"matchers": {"rule": "x"}, "until": "soon"}, ["body", "until"]),
        ({"matchers": {"rule": "x"}}, ["body", "until"]),
    ],
)
def test_bad_silences_are_422(api: Api, body: dict[str, object], loc: list[str]) -> None:
    response = api.client.post("/api/v1/alerts/silences", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc


def test_test_message(api: Api) -> None:
    ok = api.client.post("/api/v1/alerts/test", json={"channel": "hook"})
    assert ok.status_code == 200 and ok.json() == {"channel": "hook", "status": "sent"}
    (sent,) = api.hooks.bodies("/ok/hook")
    assert sent["kind"] == "test"

    unknown = api.client.post("/api/v1/alerts/test", json={"channel": "pager"})
    assert unknown.status_code == 404
    assert api.client.post("/api/v1/alerts/test", json={}).status_code == 422
    disabled = api.client.post("/api/v1/alerts/test", json={"channel": "off"})
    assert disabled.status_code == 422
    assert disabled.json()["detail"][0]["loc"] == ["body", "channel"]
    failing = api.client.post("/api/v1/alerts/test", json={"channel": "broken"})
    assert failing.status_code == 502
    assert failing.json() == {"detail": "channel 'broken': HTTP 500"}


def test_writes_go_through_require_admin(api: Api) -> None:
    def deny() -> None:
        raise HTTPException(status_code=403, detail="admin role required")

    api.app.dependency_overrides[alerts_routes.require_admin] = deny
    assert api.client.post("/api/v1/alerts/test", json={"channel": "hook"}).status_code == 403
    assert api.client.delete("/api/v1/alerts/silences/1").status_code == 403
    assert (
        api.client.post(
            "/api/v1/alerts/silences", json={"matchers": {"rule": "x"}, "until": START + 60}
        ).status_code
        == 403
    )
    assert api.client.get("/api/v1/alerts").status_code == 200  # reads stay open


def test_503_when_the_app_runs_without_alerting() -> None:
    app = FastAPI()
    app.include_router(alerts_routes.router)
    with serve(app) as running:
        response = httpx.get(running.base_url + "/api/v1/alerts")
    assert response.status_code == 503
    assert response.json() == {"detail": "alerting is not enabled"}
