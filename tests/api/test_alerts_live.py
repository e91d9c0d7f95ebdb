"""The alert API in the server process works from what the agent shares."""

from __future__ import annotations

from pathlib import Path

import httpx

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from tests.support.stack import stack

START = 1_800_000_000.0


def test_a_silence_made_through_the_api_reaches_the_agent_within_one_tick(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        alerts={"rules": [{"name": "mem_any", "metric": "memory.percent", "threshold": 0}]},
    )
    clock = FakeClock(start=START)
    with stack(settings, clock) as running, httpx.Client(base_url=running.base_url) as client:
        running.tick(2)
        (alert,) = client.get("/api/v1/alerts").json()["alerts"]
        assert (alert["rule"], alert["state"], alert["silenced"]) == ("mem_any", "firing", False)
        created = client.post(
            "/api/v1/alerts/silences",
            json={"matchers": {"rule": "mem_any"}, "until": START + 3600, "comment": "deploy"},
        )
        assert created.status_code == 201
        running.tick(1)
        (alert,) = client.get("/api/v1/alerts").json()["alerts"]
        assert alert["silenced"] is True, "the agent applied the silence at its next tick"
        listed = client.get("/api/v1/alerts/silences").json()["silences"]
        assert [s["comment"] for s in listed] == ["deploy"]
        # And lifting it reaches the agent just as fast.
        assert client.delete(f"/api/v1/alerts/silences/{listed[0]['id']}").status_code == 204
        running.tick(1)
        (alert,) = client.get("/api/v1/alerts").json()["alerts"]
        assert alert["silenced"] is False
