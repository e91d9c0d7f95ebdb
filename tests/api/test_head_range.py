"""The live head against the real store: the real agent ticks (real collectors, real
SQLite file), the real server answers over HTTP, and every recent raw window the head
answers must be, field for field, the answer the store gives for the same URL (read
through the route with the head switched off)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sysmon.api.head import LiveHead
from sysmon.api.limits import uvicorn_options
from sysmon.clock import FakeClock
from sysmon.config import Settings
from sysmon.main import create_app
from tests.api.conftest import START
from tests.support.server import serve
from tests.support.stack import Stack

STEPS = [1.0] * 12 + [3.0] + [1.0] * 8 + [2.0] + [1.0] * 10  # two overruns: empty slots
SERIES: list[tuple[str, dict[str, str]]] = [
    ("cpu", {}),
    ("cpu", {"core": "0"}),
    ("memory", {}),  # integer fields
    ("network", {"interface": "lo"}),
    ("disk", {}),
    ("disk", {"mount": "/"}),  # two label keys (mount, device): never the head's
]


def tick_irregularly(server: Stack) -> float:
    """Tick with ``STEPS`` between ticks; the last tick's timestamp."""
    last = server.clock.time()
    for step in STEPS:
        last = server.tick(1, step)[0].timestamp
    return last


def answers(
    client: httpx.Client, server: Stack, path: str, params: dict[str, Any]
) -> tuple[httpx.Response, httpx.Response, int]:
    """(the head's try, the store's answer, how many of them the head gave: 0 or 1)."""
    head: LiveHead = server.app.state.live_head
    before = head.answers
    first = client.get(path, params=params)
    given = head.answers - before
    kept, server.app.state.range_head = server.app.state.range_head, None
    try:
        stored = client.get(path, params=params)
    finally:
        server.app.state.range_head = kept
    return first, stored, given


def windows(last: float, count: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        start = rng.uniform(START - 5, last + 3)
        params: dict[str, Any] = {
            "start": f"{start:.3f}",
            "end": f"{start + rng.uniform(0, 40):.3f}",
            "resolution": rng.choice(["raw", "auto", "auto"]),
        }
        if rng.random() < 0.3:
            params["max_points"] = rng.choice([10, 30, 100, 1000])
        if rng.random() < 0.2:
            params["agg"] = rng.choice(["min", "max"])
        yield params


def test_every_head_answer_is_the_stores(client: httpx.Client, server: Stack) -> None:
    last = tick_irregularly(server)
    given = asked = filled = 0
    for metric, labels in SERIES:
        path = f"/api/v1/metrics/{metric}"
        for params in windows(last, 40, seed=len(path) + len(labels)):
            first, stored, by_head = answers(client, server, path, {**params, **labels})
            assert first.status_code == stored.status_code == 200, (params, first.text)
            assert first.json() == stored.json(), (metric, labels, params)
            if by_head:
                fields = first.json()["fields"].values()
                filled += sum(v is not None for values in fields for v in values)
            given += by_head
            asked += 1
            if metric == "disk" and labels:
                assert by_head == 0, "a series with two label keys is the store's"
    assert given > asked // 3, f"the head answered only {given} of {asked}"
    assert filled > 1000, "values compared, not only gaps"
    # The window the dashboard's live view asks: no start or end, the last minute.
    head: LiveHead = server.app.state.live_head
    before = head.answers
    latest = client.get("/api/v1/metrics/memory", params={"start": f"{last - 60}"})
    assert latest.status_code == 200 and head.answers == before + 1
    body = latest.json()
    by_time = dict(zip(body["timestamps"], body["fields"]["used_bytes"], strict=True))
    assert by_time[last] is not None and by_time[last + 1] is None  # the clock's next slot
    assert list(by_time.values()).count(None) >= 4  # and the overruns' empty slots


@pytest.mark.parametrize(
    "params",
    [
        {"start": "x"},
        {"end": "-5", "start": "10"},
        {"max_points": "5"},
        {"max_points": "1e3"},
        {"resolution": "2m"},
        {"agg": "median"},
        {"mountt": "/"},
        {"core": "99"},
        {"host": "elsewhere"},
    ],
)
def test_what_the_route_refuses_is_still_refused(
    client: httpx.Client, server: Stack, params: dict[str, str]
) -> None:
    server.tick(5)
    head: LiveHead = server.app.state.live_head
    before = head.answers
    window = {"start": f"{START}", "end": f"{START + 4}"}
    refused = client.get("/api/v1/metrics/cpu", params={**window, **params})
    assert refused.status_code == 422, refused.text
    assert head.answers == before
    name = next(iter(params)) if "mountt" not in params else "mountt"
    assert name in refused.text or params[name] in refused.text


def test_a_restarted_server_answers_recent_windows_from_memory_at_once(
    client: httpx.Client, server: Stack, settings: Settings, clock: FakeClock
) -> None:
    """The new server's head starts with its first tick; it copies the store's window
    before it (``backfill``), so the ticks of before its start are answered from memory."""
    last = tick_irregularly(server)
    app = create_app(settings, clock=clock, channel=server.agent.publisher.path, start_agent=False)
    with serve(
        app, **uvicorn_options(settings.server.limits, settings.server.event_loop)
    ) as second:
        deadline = time.monotonic() + 10
        while not app.state.subscriber.connected:
            assert time.monotonic() < deadline, "second server never connected"
            time.sleep(0.01)
        server.tick(1)
        head: LiveHead = app.state.live_head
        while head.covered is None or head.covered[0] > START:
            assert time.monotonic() < deadline, f"no backfill: {head.status()}"
            time.sleep(0.02)
        window = {"start": f"{START}", "end": f"{last + 1}", "resolution": "raw"}
        with httpx.Client(base_url=second.base_url, timeout=10) as fresh:
            for metric, labels in SERIES[:4]:
                before = head.answers
                got = fresh.get(f"/api/v1/metrics/{metric}", params={**window, **labels})
                assert got.status_code == 200 and head.answers == before + 1, (metric, labels)
                _, stored, _ = answers(
                    client, server, f"/api/v1/metrics/{metric}", {**window, **labels}
                )
                assert got.json() == stored.json(), (metric, labels)
