"""Debian's ``prometheus-alertmanager`` on a free loopback port, clustering off, with a
temporary config and storage directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.daemons import http_ok, require_binary, running, wait_until
from tests.support.process import free_port

BINARY = "prometheus-alertmanager"


@dataclass
class Alertmanager:
    base_url: str
    version: str

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` (Alertmanager lists active, unresolved alerts only)."""
        r = httpx.get(f"{self.base_url}/api/v2/alerts", params=params, timeout=5)
        r.raise_for_status()
        body: list[dict[str, Any]] = r.json()
        return body


def webhook_config(receiver_url: str) -> dict[str, Any]:
    """Everything routed to one webhook receiver, at once, resolved messages included."""
    return {
        "route": {
            "receiver": "hook",
            "group_by": ["alertname", "host"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "hook",
                "webhook_configs": [{"url": receiver_url, "send_resolved": True}],
            }
        ],
    }


@contextmanager
def alertmanager(tmp: Path, config: dict[str, Any]) -> Iterator[Alertmanager]:
    binary = require_binary(BINARY, "prometheus-alertmanager")
    conf = tmp / "alertmanager.yml"
    conf.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    argv = [
        binary,
        f"--config.file={conf}",
        f"--storage.path={tmp / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    base = f"http://127.0.0.1:{port}"
    with running(argv, tmp / "alertmanager.log") as daemon:
        wait_until(http_ok(f"{base}/-/ready"), daemon, "alertmanager")
        status = httpx.get(f"{base}/api/v2/status", timeout=5).json()
        yield Alertmanager(base, str(status["versionInfo"]["version"]))
