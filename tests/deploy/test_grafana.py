"""The Grafana provisioning: every metric name in the dashboard's PromQL is one the real
``/metrics`` of a running agent + server exports, every expression parses (promtool),
and the datasources and dashboard provider point where the compose files put things.

The metric names are pulled out by a small PromQL tokenizer: strings, label matchers,
range/offset brackets and ``by``/``without``/``on``/``ignoring`` label lists are removed,
then an identifier is a metric name unless it is called (a function), is a keyword or
aggregation operator, or a number. Histogram series (``_bucket``) count as their family.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from tests.support.process import ROOT
from tests.support.stack import stack

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sysmon.json"
PROMTOOL = shutil.which("promtool")

KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk",
    "bottomk", "quantile", "count_values", "group", "inf", "nan",
}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_HISTOGRAM_PARTS = ("_bucket", "_count", "_sum")


def metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (see the module docstring)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue
        before = text[: match.start()]
        if before.endswith(("$", ".")) or re.search(r"[0-9.]e?$", before):
            continue  # a Grafana variable, or part of a number like 1e3
        names.add(name)
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sysmon_cpu_usage_ratio{host=~"$host"}', {"sysmon_cpu_usage_ratio"}),
        (
            'sum by (host, mode) (sysmon_cpu_mode_ratio{host=~"$host", mode!="idle"})',
            {"sysmon_cpu_mode_ratio"},
        ),
        ("sysmon_memory_total_bytes - sysmon_memory_available_bytes", {
            "sysmon_memory_total_bytes", "sysmon_memory_available_bytes"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket{a=\"b(c)\"}[5m])))",
            {"x_seconds_bucket"},
        ),
        ("rate(a[5m] offset 1h) > bool 2e3 and on (host) b", {"a", "b"}),
        ("time() - sysmon_last_tick_timestamp_seconds > 120", {
            "sysmon_last_tick_timestamp_seconds"}),
    ],
)  # fmt: skip
def test_the_tokenizer_finds_metric_names_only(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def expressions() -> list[tuple[str, str]]:
    """(panel title, expr) of every query in the dashboard."""
    out = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def exported_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_every_dashboard_metric_is_exported_by_a_running_server(tmp_path: Path) -> None:
    settings = load_settings(None, database={"path": str(tmp_path / "sysmon.db")})
    with stack(settings, FakeClock(start=1_800_000_000.0)) as running:
        # Rates need two ticks, and real CPU time must pass between them: /proc/stat
        # counts in 10 ms jiffies, so back-to-back ticks can leave a core's delta at zero
        # (no per-core usage then). The fake clock moves the stamps; this only waits.
        for _ in range(3):
            running.tick(1)
            time.sleep(0.1)
        answer = httpx.get(f"{running.base_url}/metrics", timeout=10)
        assert answer.status_code == 200
        served = exported_names(answer.text)
    used: dict[str, set[str]] = {}
    for title, expr in expressions():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(title)
    host_var = next(v for v in dashboard()["templating"]["list"] if v["name"] == "host")
    variable_metric = re.fullmatch(r"label_values\((\w+), host\)", host_var["definition"])
    assert variable_metric is not None, host_var["definition"]
    used.setdefault(variable_metric.group(1), set()).add("$host variable")
    missing = {
        name: sorted(titles)
        for name, titles in used.items()
        if name not in served
        and not (name.endswith(_HISTOGRAM_PARTS) and name.rsplit("_", 1)[0] in served)
    }
    assert missing == {}
    # Every area the dashboard is for has panels, each selecting by the host variable.
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows[:5] == ["CPU", "Memory", "Disk", "Network", "Processes"]
    assert all('host=~"$host"' in expr for _, expr in expressions())
    assert len(used) >= 25


@pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian: prometheus)")
def test_every_dashboard_expression_parses_with_promtool(tmp_path: Path) -> None:
    """promtool has no bare query check; a rules file with one recording rule per
    expression (the Grafana variable replaced by a regex) makes ``check rules`` parse each."""
    assert PROMTOOL is not None
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": expr.replace("$host", ".*")}
        for i, (_, expr) in enumerate(expressions())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_datasources_and_the_dashboard_provider_match_the_compose_files() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/sysmon.yaml").read_text())
    by_name = {d["name"]: d for d in sources["datasources"]}
    assert {n: (d["type"], d["url"]) for n, d in by_name.items()} == {
        "VictoriaMetrics": ("prometheus", "http://victoriametrics:8428"),
        "Prometheus": ("prometheus", "http://prometheus:9090"),
    }
    assert [d["name"] for d in sources["datasources"] if d.get("isDefault")] == ["VictoriaMetrics"]
    level3 = yaml.safe_load((ROOT / "docker-compose-level3.yml").read_text())["services"]
    assert {"victoriametrics", "prometheus", "grafana"} <= set(level3)
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/sysmon.yaml").read_text())
    (prov,) = provider["providers"]
    mounts = level3["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{prov['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
    # The panels use the datasource variable, whose choices are those datasources' type.
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard()["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
