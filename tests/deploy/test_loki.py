"""Shipping sysmon's JSON log file to Grafana Loki.

``deploy/promtail.yaml`` is the shipped way. Neither Promtail nor Grafana Loki is
packaged in Debian (Debian's ``loki`` package is an unrelated genetics program, MCMC
linkage analysis), so:

* the Promtail file is checked against real lines the server writes: every field its
  ``json`` stage extracts is in them, its timestamp format parses theirs, and its path
  glob matches the per-process file names (and not the rotated ones);
* the round trip runs against a real Grafana Loki when one is installed (``loki`` on
  the PATH or ``$SYSMON_LOKI_BINARY``, recognised by its ``-version`` banner): the
  server's real lines are pushed with Promtail's labels through ``/loki/api/v1/push``
  and read back with ``/loki/api/v1/query_range``. Otherwise it is skipped, saying so.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.logs import ACCESS_LOGGER, file_log_path
from tests.support.daemons import http_ok, running, wait_until
from tests.support.process import ROOT, free_port
from tests.support.stack import stack

PROMTAIL = ROOT / "deploy" / "promtail.yaml"


def _job() -> dict[str, Any]:
    config = yaml.safe_load(PROMTAIL.read_text())
    (job,) = config["scrape_configs"]
    assert isinstance(job, dict)
    return job


def _stage(job: dict[str, Any], name: str) -> dict[str, Any]:
    (stage,) = [s[name] for s in job["pipeline_stages"] if name in s]
    assert isinstance(stage, dict)
    return stage


@pytest.fixture(scope="module")
def server_lines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Lines a real server (in-process agent + server, HTTP) wrote to its JSON file."""
    tmp = tmp_path_factory.mktemp("lokilines")
    settings = load_settings(
        None,
        database={"path": str(tmp / "sysmon.db")},
        logging={"file": str(tmp / "logs" / "sysmon.jsonl")},
    )
    access = logging.getLogger(ACCESS_LOGGER)
    saved = access.level
    access.setLevel(logging.INFO)  # what configure_logging's default level gives
    try:
        with stack(settings, FakeClock(start=time.time())) as running_stack:
            running_stack.tick()
            for route in ("/api/v1/health", "/api/v1/metrics/current", "/missing"):
                httpx.get(running_stack.base_url + route, headers={"X-Request-ID": "loki-1"})
    finally:
        access.setLevel(saved)
    path = file_log_path(tmp / "logs" / "sysmon.jsonl", "server")
    yield [line for line in path.read_text().splitlines() if line]


def test_promtail_extracts_fields_the_server_writes(server_lines: list[str]) -> None:
    job = _job()
    expressions = _stage(job, "json")["expressions"]
    entries = [json.loads(line) for line in server_lines]
    assert any(e.get("logger") == ACCESS_LOGGER for e in entries)
    for entry in entries:
        for source in expressions.values():
            assert source in entry, (source, entry)
        # RFC3339Nano accepts the millisecond UTC form the file uses.
        assert datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00")).tzinfo
    assert _stage(job, "timestamp") == {"source": "timestamp", "format": "RFC3339Nano"}
    # Labels are the few low-cardinality fields only; per-request values stay in the line.
    assert set(_stage(job, "labels")) == {"level", "process"}


def test_promtail_path_matches_each_process_file_not_the_rotated_ones() -> None:
    (static,) = _job()["static_configs"]
    glob = static["labels"]["__path__"]
    configured = "/var/log/sysmon/sysmon.jsonl"
    for process in ("server", "agent", "server-1234"):
        assert fnmatch.fnmatch(str(file_log_path(configured, process)), glob)
    assert not fnmatch.fnmatch(str(file_log_path(configured, "server")) + ".1", glob)


# --- a real Grafana Loki, where one is installed ---------------------------------------


def grafana_loki() -> str:
    candidate = os.environ.get("SYSMON_LOKI_BINARY") or shutil.which("loki")
    reason = (
        "Grafana Loki is not installed: it is not packaged in Debian (Debian's `loki` is "
        "an unrelated genetics program); set SYSMON_LOKI_BINARY to a Grafana Loki binary"
    )
    if candidate is None:
        pytest.skip(reason)
    try:
        banner = subprocess.run(
            [candidate, "-version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip(reason)
    if not banner.startswith("loki, version"):
        pytest.skip(reason)
    return candidate


def loki_config(tmp: Path, port: int, grpc_port: int) -> dict[str, Any]:
    """Single process, in-memory ring, filesystem storage in ``tmp``, no auth."""
    return {
        "auth_enabled": False,
        "server": {
            "http_listen_address": "127.0.0.1",
            "http_listen_port": port,
            "grpc_listen_address": "127.0.0.1",
            "grpc_listen_port": grpc_port,
            "log_level": "warn",
        },
        "common": {
            "path_prefix": str(tmp),
            "replication_factor": 1,
            "ring": {"instance_addr": "127.0.0.1", "kvstore": {"store": "inmemory"}},
            "storage": {
                "filesystem": {
                    "chunks_directory": str(tmp / "chunks"),
                    "rules_directory": str(tmp / "rules"),
                }
            },
        },
        "schema_config": {
            "configs": [
                {
                    "from": "2024-01-01",
                    "store": "tsdb",
                    "object_store": "filesystem",
                    "schema": "v13",
                    "index": {"prefix": "index_", "period": "24h"},
                }
            ]
        },
        "analytics": {"reporting_enabled": False},
    }


def _ns(timestamp: str) -> str:
    seconds = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    return str(round(seconds * 1e9))


def test_server_lines_round_trip_through_a_real_loki(
    tmp_path: Path, server_lines: list[str]
) -> None:
    binary = grafana_loki()
    port, grpc_port = free_port(), free_port()
    conf = tmp_path / "loki.yaml"
    conf.write_text(yaml.safe_dump(loki_config(tmp_path / "loki", port, grpc_port)))
    base = f"http://127.0.0.1:{port}"
    with running([binary, f"-config.file={conf}"], tmp_path / "loki.log") as daemon:
        wait_until(http_ok(f"{base}/ready"), daemon, "loki", timeout=60)
        # Promtail's labels: the static ones plus the `labels` stage's fields.
        (static,) = _job()["static_configs"]
        fixed = {k: v for k, v in static["labels"].items() if not k.startswith("__")}
        streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        for line in server_lines:
            entry = json.loads(line)
            labels = {**fixed, **{k: str(entry[k]) for k in _stage(_job(), "labels")}}
            key = tuple(sorted(labels.items()))
            streams.setdefault(key, []).append([_ns(entry["timestamp"]), line])
        push = httpx.post(
            f"{base}/loki/api/v1/push",
            json={"streams": [{"stream": dict(k), "values": v} for k, v in streams.items()]},
            timeout=10,
        )
        assert push.status_code == 204, push.text
        query = '{job="sysmon", process="server"} | json | logger="sysmon.access"'
        start = min(int(v[0]) for values in streams.values() for v in values) - 10**9
        deadline = time.monotonic() + 20
        results: list[dict[str, Any]] = []
        while not results and time.monotonic() < deadline:
            answer = httpx.get(
                f"{base}/loki/api/v1/query_range",
                params={"query": query, "start": str(start), "limit": "100"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
            results = answer.json()["data"]["result"]
            time.sleep(0.2)
    by_path = {r["stream"]["path"]: r["stream"] for r in results}
    health = by_path["/api/v1/health"]
    assert health["request_id"] == "loki-1" and health["status"] == "200"
    assert health["route"] == "/api/v1/health" and health["method"] == "GET"
    assert float(health["latency_ms"]) >= 0
    assert by_path["/missing"]["status"] == "404"
