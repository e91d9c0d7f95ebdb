"""``server.forwarded_allow_ips``: whose ``X-Forwarded-For`` the real ``sysmon server``
believes. The client address it settles on is what the access log writes and what the
rate limits count per client (the audit log reads the same ``scope["client"]``).

Every request here comes from 127.0.0.1: with the default (a proxy on this machine) the
forwarded address is the client; with a list that leaves 127.0.0.1 out, the header is
ignored and the peer itself is the client, in one worker and in several.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import SQLiteStore
from tests.support.process import ROOT, free_port, service_env, stop

FORWARDED = "203.0.113.7"
OTHER = "198.51.100.9"


@dataclass
class Server:
    base: str
    logs: Path
    """The JSON log files' directory: ``sysmon.server.jsonl``, one per worker with several
    (``sysmon.server-<pid>.jsonl``)."""
    console: Path

    def client_logged_for(self, forwarded_for: str) -> str | None:
        """The ``client`` of the access line of one request sent with that header."""
        rid = uuid.uuid4().hex
        r = httpx.get(
            f"{self.base}/api/v1/health",
            headers={"X-Forwarded-For": forwarded_for, "X-Request-ID": rid},
            timeout=5,
        )
        assert r.status_code == 200
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for path in self.logs.glob("sysmon.server*.jsonl"):
                for line in path.read_text().splitlines():
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line still being written
                    if entry.get("request_id") == rid:
                        client = entry["client"]
                        return None if client is None else str(client)
            time.sleep(0.05)
        raise AssertionError(f"no access line for {rid}: {self.console.read_text()[-2000:]}")

    def system_status(self, forwarded_for: str) -> int:
        """A rate-limited route (``default``: 2/minute per client and route)."""
        headers = {"X-Forwarded-For": forwarded_for}
        return httpx.get(f"{self.base}/api/v1/system", headers=headers, timeout=5).status_code


@contextmanager
def server(
    tmp_path: Path, server_config: dict[str, Any], env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``sysmon --config <tmp> server`` alone (no agent: nothing here needs ticks)."""
    port = free_port()
    db = tmp_path / "data" / "sysmon.db"
    store = SQLiteStore(db, retention=RetentionConfig(), interval_seconds=1)
    store.open()  # the server opens the store read-only: made here
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"path": str(db)},
                "logging": {"file": str(tmp_path / "logs" / "sysmon.jsonl")},
                "server": {
                    "port": port,
                    "start_agent": False,
                    "security": {"rate_limits": {"default": "2/minute"}},
                    **server_config,
                },
            }
        )
    )
    console = tmp_path / "console.log"
    process_env = service_env(db, **(env or {}))
    process_env.pop("SYSMON_DATABASE__PATH")
    process_env.pop("FORWARDED_ALLOW_IPS", None)  # uvicorn's own variable: not this test's
    with console.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysmon", "--config", str(config), "server"],
            cwd=ROOT,
            env=process_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(console.read_text(errors="replace")[-3000:])
            time.sleep(0.1)
        yield Server(base, tmp_path / "logs", console)
    finally:
        stop(proc)


def test_by_default_a_local_proxy_names_the_client(tmp_path: Path) -> None:
    with server(tmp_path, {}) as srv:
        assert srv.client_logged_for(FORWARDED) == FORWARDED
        # Rate limits count the forwarded client: its third request is refused, while
        # another client behind the same proxy still has its own allowance.
        assert [srv.system_status(FORWARDED) for _ in range(3)] == [200, 200, 429]
        assert srv.system_status(OTHER) == 200


@pytest.mark.parametrize(
    ("workers", "via_env"),
    [(1, False), (2, True)],
    ids=["one-worker-from-the-file", "two-workers-from-the-environment"],
)
def test_a_list_without_the_peer_ignores_its_header(
    tmp_path: Path, workers: int, via_env: bool
) -> None:
    trusted = ["10.0.0.1"]
    if via_env:
        config: dict[str, Any] = {"workers": workers}
        env = {"SYSMON_SERVER__FORWARDED_ALLOW_IPS": json.dumps(trusted)}
    else:
        config, env = {"workers": workers, "forwarded_allow_ips": trusted}, {}
    with server(tmp_path, config, env) as srv:
        for _ in range(3):  # several connections: with two workers, both answer some
            assert srv.client_logged_for(FORWARDED) == "127.0.0.1"
        if workers == 1:  # (each worker has its own in-memory limits)
            # One client (the peer) whatever the header says: one allowance for all.
            assert [srv.system_status(FORWARDED) for _ in range(2)] == [200, 200]
            assert srv.system_status(OTHER) == 429
