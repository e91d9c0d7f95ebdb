"""The metric catalog is derived from the collectors' declarations, and everything that
lists metrics agrees with it: alert-rule validation, the JSON writers and
docs/CONTRACTS.md. A throwaway plugin (``tests.contract.pond``) shows a new metric needs no
other file edited."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sysmon.api.routes.metrics import integral_fields
from sysmon.catalog import (
    TABLE_BEGIN,
    TABLE_END,
    contract_table,
    metric_catalog,
    replace_table,
)
from sysmon.collectors.registry import CollectorRegistry, discover, register
from sysmon.config import load_settings
from sysmon.errors import ConfigError
from sysmon.models import Collected, MetricInfo, Sample, Snapshot
from sysmon.serialize import snapshot_document, to_json_bytes
from tests.contract import pond

CONTRACTS = Path(__file__).resolve().parents[2] / "docs" / "CONTRACTS.md"
BUILT_IN = ("cpu", "memory", "disk", "network", "processes")


def _rule(metric: str, **extra: Any) -> dict[str, Any]:
    return {"rules": [{"name": "r", "metric": metric, "threshold": 1, **extra}]}


def test_catalog_document_has_the_shape_the_dashboard_reads() -> None:
    doc = metric_catalog(discover()).document()
    by_name = {m["name"]: m for m in doc["metrics"]}
    assert set(by_name) >= set(BUILT_IN)
    cpu = by_name["cpu"]
    assert cpu["labels"] == ["core"]
    assert cpu["fields"][0] == {
        "field": "percent",
        "unit": "%",
        "description": "Non-idle CPU time share (100 = all cores busy)",
        "kind": "gauge",
        "labels": ["core"],
        "integer": False,
    }
    assert by_name["disk"]["labels"] == ["device", "mount"]
    memory = {f["field"]: f for f in by_name["memory"]["fields"]}
    assert memory["total_bytes"]["integer"] is True
    assert memory["swap_in_bytes_per_sec"]["integer"] is False  # a rate is fractional
    assert [m["name"] for m in doc["metrics"]] == sorted(by_name)
    json.dumps(doc, allow_nan=False)  # plain JSON


def test_label_keys_are_the_union_of_the_declarations() -> None:
    catalog = metric_catalog(discover(plugins=[pond.MODULE]))
    assert {"core", "device", "mount", "interface", "buoy", "probe"} <= set(catalog.label_keys)
    assert list(catalog.label_keys) == sorted(catalog.label_keys)
    assert catalog.metrics["pond"].labels == ("buoy", "probe")
    assert catalog.integer_fields["pond"] == frozenset({"fish"})


@pytest.mark.parametrize("name", BUILT_IN)
def test_whole_numbers_of_the_built_in_collectors_are_declared_integer(name: str) -> None:
    """Bytes held (not bytes per second) and counts are integers; rates and percentages
    are not."""
    for info in discover().get(name).fields:
        whole = info.kind == "gauge" and info.unit in ("bytes", "processes", "threads")
        assert info.integer is whole, f"{name}.{info.field}"


# --- alert rules -------------------------------------------------------------------------


def test_a_rule_on_a_plugin_metric_validates_with_the_plugin_loaded() -> None:
    settings = load_settings(
        collection={"plugins": [pond.MODULE]},
        alerts=_rule("pond.depth_m", selector={"buoy": "north"}),
    )
    assert settings.alerts.rules[0].metric == "pond.depth_m"
    assert settings.alerts.rules[0].selector == {"buoy": "north"}


@pytest.mark.parametrize(
    ("plugins", "rule", "key", "message"),
    [
        ([], _rule("pond.depth_m"), "alerts.rules.0.metric", "rule 'r': unknown metric 'pond'"),
        (
            [pond.MODULE],
            _rule("pond.dpeth_m"),
            "alerts.rules.0.metric",
            "rule 'r': unknown field 'dpeth_m' of metric 'pond'; known: depth_m, fish, temp_c",
        ),
        (
            [pond.MODULE],
            _rule("pond.fish", selector={"buoy": "any"}),
            "alerts.rules.0.selector",
            "selector key 'buoy' does not exist for pond.fish (allowed: none, the field has "
            "totals only)",
        ),
        (
            [],
            _rule("disk.percent", selector={"device": "any"}),
            "alerts.rules.0.selector",
            "selector key 'device' does not exist for disk.percent (allowed: mount)",
        ),
    ],
)
def test_a_rule_naming_what_no_collector_declares_fails_naming_the_key(
    plugins: list[str], rule: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(collection={"plugins": plugins}, alerts=rule)
    assert info.value.key == key
    assert message in info.value.message


def test_every_declared_field_and_label_is_alertable() -> None:
    catalog = metric_catalog(discover(plugins=[pond.MODULE]))
    rules: list[dict[str, Any]] = []
    for name, entry in catalog.metrics.items():
        for info in entry.fields:
            for selector in ({}, *({key: "any"} for key in info.labels)):
                metric = f"{name}.{info.field}"
                rules.append({"name": f"r{len(rules)}", "metric": metric, "threshold": 1,
                              "selector": selector})  # fmt: skip
    settings = load_settings(collection={"plugins": [pond.MODULE]}, alerts={"rules": rules})
    assert len(settings.alerts.rules) == len(rules)


# --- catalog construction fails loudly ---------------------------------------------------


def _registry(*fields: MetricInfo) -> CollectorRegistry:
    @register("bad")
    class Bad:
        name: ClassVar[str]

    Bad.fields = fields  # type: ignore[attr-defined]
    registry = CollectorRegistry()
    registry.add(Bad)
    return registry


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((MetricInfo("x", "", "d"), MetricInfo("x", "", "d")), "field 'x' declared twice"),
        ((MetricInfo("x", "", "d", labels=("start",)),), "label key 'start' is not usable"),
        ((MetricInfo("x", "", "d", labels=("Core Id",)),), "label key 'Core Id' is not usable"),
    ],
)
def test_a_declaration_the_api_could_not_serve_is_refused(
    fields: tuple[MetricInfo, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        metric_catalog(_registry(*fields))
    assert info.value.key == "collectors.bad"
    assert message in info.value.message


# --- integers are integers ---------------------------------------------------------------


def test_current_body_writes_declared_integers_as_json_integers() -> None:
    catalog = metric_catalog(discover(plugins=[pond.MODULE]))
    snapshot = Snapshot(
        1.0,
        {
            "processes": Collected((Sample("processes", "count", 95.0),)),
            "memory": Collected(
                (Sample("memory", "total_bytes", 8.0e9), Sample("memory", "percent", 41.0))
            ),
            "disk": Collected((Sample("disk", "used_bytes", 5.0, (("mount", "/"),)),)),
            "pond": Collected(
                (Sample("pond", "fish", 96.0), Sample("pond", "temp_c", 12.0, (("buoy", "n"),)))
            ),
        },
    )
    body = to_json_bytes(snapshot_document(snapshot, 20, catalog.integer_fields))
    assert b'"count":95,' in body or b'"count":95}' in body
    assert b'"total_bytes":8000000000' in body
    assert b'"percent":41.0' in body  # not an integer field: stays a float
    metrics = json.loads(body)["metrics"]
    assert type(metrics["disk"]["mount"]["/"]["used_bytes"]) is int
    assert type(metrics["pond"]["total"]["fish"]) is int
    assert type(metrics["pond"]["buoy"]["n"]["temp_c"]) is float


def test_range_fields_round_integer_fields_only_and_keep_gaps() -> None:
    fields: dict[str, list[float | None]] = {
        "used_bytes": [1.0, None, 2.5, 3.5, 1e12 + 0.4],
        "percent": [1.5, None, 2.25, 3.0, 4.0],
    }
    out = integral_fields(fields, frozenset({"used_bytes"}))
    assert out["used_bytes"] == [1, None, 2, 4, 1_000_000_000_000]  # half to even
    assert all(type(v) is int for v in out["used_bytes"] if v is not None)
    assert out["percent"] is fields["percent"]  # untouched, not copied


# --- docs/CONTRACTS.md -------------------------------------------------------------------


def test_contracts_field_table_is_the_generated_one() -> None:
    """The table in docs/CONTRACTS.md is generated from the collectors' declarations; a
    new or changed field means regenerating it, never editing it by hand."""
    text = CONTRACTS.read_text(encoding="utf-8")
    assert TABLE_BEGIN in text and TABLE_END in text
    expected = replace_table(text, contract_table(metric_catalog(discover())))
    assert text == expected, (
        "docs/CONTRACTS.md's field table differs from the collectors' declarations: run "
        "`.venv/bin/python -m sysmon.catalog --write docs/CONTRACTS.md`"
    )


def test_replace_table_only_touches_the_marked_block() -> None:
    doc = f"intro\n{TABLE_BEGIN}\nold\n{TABLE_END}\noutro\n"
    assert replace_table(doc, "| new |\n") == f"intro\n{TABLE_BEGIN}\n| new |\n{TABLE_END}\noutro\n"
