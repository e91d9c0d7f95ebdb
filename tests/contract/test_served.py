"""Over HTTP, against the real agent and server (tests/support/stack.py): a throwaway
plugin collector (``tests.contract.pond``, metric ``pond``, label keys ``buoy`` and
``probe`` that no built-in has) is served, selectable, listed in the catalog and in the
OpenAPI document, with no file of sysmon edited. Built-in integer fields come back as
JSON integers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from tests.contract import pond
from tests.support.stack import Stack, stack

START = 1_800_000_000.0
TICKS = 3
RAW = {"start": START, "end": START + TICKS - 1, "resolution": "raw"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, httpx.Client]]:
    """One stack for the module: its three ticks are all the tests read (nothing writes)."""
    tmp: Path = tmp_path_factory.mktemp("contract")
    settings = load_settings(
        None,
        database={"path": str(tmp / "sysmon.db")},
        collection={"plugins": [pond.MODULE]},
        alerts={"rules": [{"name": "deep", "metric": "pond.depth_m", "threshold": 3.5,
                           "for": "0s", "selector": {"buoy": "any"}}]},
    )  # fmt: skip
    clock = FakeClock(start=START)
    with stack(settings, clock) as running:
        running.tick(TICKS)
        with httpx.Client(base_url=running.base_url, timeout=10) as client:
            yield running, client


def _get(client: httpx.Client, path: str, **params: Any) -> Any:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def _error(client: httpx.Client, path: str, **params: Any) -> tuple[list[str], str]:
    r = client.get(path, params=params)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    return [str(p) for p in detail["loc"]], detail["msg"]


def test_the_plugin_metric_is_served_per_buoy(served: tuple[Stack, httpx.Client]) -> None:
    _, client = served
    body = _get(client, "/api/v1/metrics/pond", buoy="south", **RAW)
    assert body["labels"] == {"buoy": "south"}
    assert body["timestamps"] == [START + i for i in range(TICKS)]
    assert body["fields"] == {"depth_m": [pond.depth(i, "south") for i in range(TICKS)]}
    assert body["units"] == {"depth_m": "m"}


def test_the_plugin_totals_have_integer_counts(served: tuple[Stack, httpx.Client]) -> None:
    _, client = served
    body = _get(client, "/api/v1/metrics/pond", **RAW)
    assert body["fields"]["fish"] == [95, 96, 97]
    assert all(type(v) is int for v in body["fields"]["fish"])
    assert all(type(v) is float for v in body["fields"]["depth_m"])


def test_a_series_with_two_labels_is_selected_by_both(served: tuple[Stack, httpx.Client]) -> None:
    _, client = served
    body = _get(client, "/api/v1/metrics/pond", buoy="north", probe="top", **RAW)
    assert body["labels"] == {"buoy": "north", "probe": "top"}
    assert body["fields"] == {"temp_c": [12.5] * TICKS}
    loc, msg = _error(client, "/api/v1/metrics/pond", probe="top", **RAW)
    assert loc == ["query", "probe"]
    assert msg == (
        "no pond series is labelled exactly probe; give one selector per label of a series: "
        "['buoy', 'buoy+probe']"
    )


@pytest.mark.parametrize(
    ("path", "params", "loc", "message"),
    [
        (
            "/api/v1/metrics/pond",
            {"buoy": "east"},
            ["query", "buoy"],
            "unknown buoy 'east'; known: ['north', 'south']",
        ),
        ("/api/v1/metrics/cpu", {"buoy": "north"}, ["query", "buoy"], "cpu has no buoy series"),
        (
            "/api/v1/metrics/pond",
            {"bouy": "north"},
            ["query", "bouy"],
            "unknown query parameter 'bouy'; accepted: start, end, resolution, agg, max_points, ",
        ),
        ("/api/v1/metrics/lake", {}, ["path", "metric"], "unknown metric 'lake'; known: "),
        ("/api/v1/metrics/disk", {"mount": "/", "device": "sda"}, ["query", "device"], ""),
    ],
)
def test_bad_selectors_are_422_naming_the_parameter(
    served: tuple[Stack, httpx.Client],
    path: str,
    params: dict[str, str],
    loc: list[str],
    message: str,
) -> None:
    _, client = served
    got_loc, msg = _error(client, path, **params, **RAW)
    assert got_loc == loc
    assert msg.startswith(message)


def test_the_catalog_lists_the_plugin(served: tuple[Stack, httpx.Client]) -> None:
    _, client = served
    metrics = {m["name"]: m for m in _get(client, "/api/v1/metrics")["metrics"]}
    assert {"cpu", "memory", "disk", "network", "processes", "pond"} <= set(metrics)
    assert metrics["pond"] == {
        "name": "pond",
        "fields": [
            {"field": "depth_m", "unit": "m", "kind": "gauge", "labels": ["buoy"],
             "integer": False, "description": "Water depth at a buoy (total: mean)"},
            {"field": "fish", "unit": "fish", "kind": "gauge", "labels": [], "integer": True,
             "description": "Fish counted in the pond"},
            {"field": "temp_c", "unit": "°C", "kind": "gauge", "labels": ["buoy", "probe"],
             "integer": False, "description": "Temperature of one probe of a buoy"},
        ],
        "labels": ["buoy", "probe"],
    }  # fmt: skip


def test_openapi_lists_the_metrics_and_every_selector(served: tuple[Stack, httpx.Client]) -> None:
    _, client = served
    schema = _get(client, "/openapi.json")
    operation = schema["paths"]["/api/v1/metrics/{metric}"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    enum = params["metric"]["schema"]["enum"]
    assert {"cpu", "memory", "disk", "network", "pond"} <= set(enum)
    assert "processes" not in enum  # that path is the process table
    for key in ("device", "mount", "interface", "core", "buoy", "probe"):
        assert params[key]["in"] == "query", key
        assert params[key]["required"] is False
    assert "pond" in params["buoy"]["description"]
    assert "/api/v1/metrics" in schema["paths"]  # the catalog endpoint itself


def test_current_has_the_plugin_and_integer_fields(served: tuple[Stack, httpx.Client]) -> None:
    _, client = served
    doc = _get(client, "/api/v1/metrics/current")
    assert doc["metrics"]["pond"]["total"]["fish"] == 97
    assert type(doc["metrics"]["pond"]["total"]["fish"]) is int
    assert doc["metrics"]["pond"]["buoy"]["north/top"] == {"temp_c": 12.5}
    assert type(doc["metrics"]["processes"]["total"]["count"]) is int
    assert type(doc["metrics"]["memory"]["total"]["total_bytes"]) is int
    assert type(doc["metrics"]["memory"]["total"]["percent"]) is float
    for mount in doc["metrics"]["disk"].get("mount", {}).values():
        assert type(mount["used_bytes"]) is int


def test_range_of_built_in_integer_fields_is_integers(served: tuple[Stack, httpx.Client]) -> None:
    _, client = served
    memory = _get(client, "/api/v1/metrics/memory", **RAW)["fields"]
    assert all(type(v) is int for v in memory["total_bytes"] if v is not None)
    assert any(v is not None for v in memory["total_bytes"])
    assert all(type(v) is float for v in memory["percent"] if v is not None)


def test_a_rule_on_the_plugin_metric_fires(served: tuple[Stack, httpx.Client]) -> None:
    """The rule validated against the plugin's declarations when the settings loaded, and
    the engine evaluates it like any other: only the south buoy got past 3.5 m (3.75 m on
    the third tick)."""
    _, client = served
    alerts = _get(client, "/api/v1/alerts")["alerts"]
    assert [(a["rule"], a["state"], a["metric"], a["value"]) for a in alerts] == [
        ("deep", "firing", "pond.depth_m", pond.depth(2, "south"))
    ]
    assert alerts[0]["labels"]["buoy"] == "south"
