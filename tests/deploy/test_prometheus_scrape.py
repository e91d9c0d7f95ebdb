"""A real Prometheus (Debian's ``prometheus`` binary) scrapes ``/metrics`` of a real
agent + server with ``auth.mode: jwt``, authenticating with an API key as its bearer
token (``authorization.credentials_file``), and stores what we served.

The agent's schedule is off (the stack's fake clock drives two ticks), so every scrape
serves the same tick and the values Prometheus stores must equal, to the bit, what
``/metrics`` answered us. Prometheus runs on a free loopback port with a temporary
configuration and TSDB; the test waits at most 20 s for the samples to arrive.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_prometheus import parse
from tests.security.auth_support import accounts, auth_stack
from tests.support.process import free_port

PROMETHEUS = shutil.which("prometheus")
WAIT_SECONDS = 20.0

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus not installed (Debian: apt-get install -y prometheus)"
)

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: sysmon
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {key_file}
    static_configs:
      - targets: ["{target}"]
"""


def _query(client: httpx.Client, promql: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/query", params={"query": promql})
    answer.raise_for_status()
    body = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _wait_for(client: httpx.Client, promql: str, deadline: float, log: Path) -> float:
    """The value of a single-series query once Prometheus has it."""
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = _query(client, promql)
        except httpx.HTTPError as exc:  # still starting
            last = exc
        else:
            if result:
                assert len(result) == 1, result
                return float(result[0]["value"][1])
            last = result
        time.sleep(0.2)
    raise AssertionError(
        f"{promql}: nothing after {WAIT_SECONDS}s ({last}); log:\n{log.read_text()}"
    )


def test_prometheus_scrapes_with_an_api_key_and_stores_the_served_values(tmp_path: Path) -> None:
    assert PROMETHEUS is not None
    with auth_stack(tmp_path) as s:
        s.running.tick(2)
        with accounts(s.settings) as acc:
            _, key = acc.create_key("prometheus", "viewer", by=None, source=None)
        key_file = tmp_path / "scrape.key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        served = parse(s.client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text)
        target = s.running.base_url.removeprefix("http://")
        config = tmp_path / "prometheus.yml"
        config.write_text(CONFIG.format(key_file=json.dumps(str(key_file)), target=target))
        port = free_port()
        log = tmp_path / "prometheus.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as prom:
                assert _wait_for(prom, 'up{job="sysmon"}', deadline, log) == 1.0
                checks = {
                    "node_load1": ("node_load1", ()),
                    "sysmon_memory_available_bytes": ("sysmon_memory_available_bytes", ()),
                    'node_filesystem_size_bytes{mountpoint="/"}': (
                        "node_filesystem_size_bytes",
                        (("mountpoint", "/"),),
                    ),
                    "sysmon_agent_ticks_total": ("sysmon_agent_ticks_total", ()),
                }
                for promql, series in checks.items():
                    assert _wait_for(prom, promql, deadline, log) == served[series], promql
                scrapes = _wait_for(
                    prom,
                    'sum(sysmon_http_request_duration_seconds_count{route="/metrics"})',
                    deadline,
                    log,
                )
                assert scrapes >= 1  # Prometheus's own scrapes are in our latency histogram
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
