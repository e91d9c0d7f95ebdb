"""Command lines can hold secrets: with roles on, only admins see them; the viewer copy
of each tick is made once when the frame arrives, not per request."""

from __future__ import annotations

import json
from typing import Any

from sysmon.api.feed import LatestView, TickFeed, sees_command_lines
from sysmon.clock import FakeClock
from sysmon.live import LiveHub
from sysmon.security.principal import Principal


def frame(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"timestamp": 5.0, "metrics": {}, "processes": rows, "errors": {}})
    return {"type": "tick", "timestamp": 5.0, "processes": rows, "status": {}}, body.encode()


ROWS = [{"pid": 1, "name": "psql", "cmdline": "psql postgres://u:***@db"}]


def test_viewers_get_no_cmdline_admins_do() -> None:
    hub: LiveHub[LatestView] = LiveHub()
    feed = TickFeed(hub, FakeClock(), roles_apply=True)
    feed.on_frame(*frame(ROWS))
    view = feed.get()
    assert view is not None
    body, rows = view.for_role(full=False)
    assert "cmdline" not in json.loads(body)["processes"][0] and "cmdline" not in rows[0]
    assert json.loads(body)["processes"][0]["name"] == "psql"
    body, rows = view.for_role(full=True)
    assert json.loads(body)["processes"][0]["cmdline"] == ROWS[0]["cmdline"]


def test_who_sees_command_lines() -> None:
    admin = {"state": {"principal": Principal(name="a", role="admin", via="jwt")}}
    viewer = {"state": {"principal": Principal(name="v", role="viewer", via="session")}}
    assert sees_command_lines(admin, roles_apply=True)
    assert not sees_command_lines(viewer, roles_apply=True)
    assert not sees_command_lines({}, roles_apply=True), "no principal: no command lines"
    assert sees_command_lines({}, roles_apply=False), "auth.mode none: the local admin"
