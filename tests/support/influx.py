"""A real InfluxDB 1.x server (Debian's ``influxdb``, ``influxd``) on free loopback ports.

``influx_server(tmp)`` writes a config file under ``tmp`` (meta, data and WAL
directories there too), starts ``influxd run -config`` and stops it on exit;
``require_binary()`` skips the calling test (with the install command) when the binary
is absent, and only then.

Config and why:

* ``reporting-disabled``: no phone-home to usage.influxdata.com from a test.
* ``bind-address`` (the RPC/backup port, 8088 by default) and ``[http] bind-address``:
  both on free 127.0.0.1 ports, so parallel runs and a real server do not collide.
* ``[monitor] store-enabled = false``, ``[continuous_queries] enabled = false``: no
  background writers of their own (no ``_internal`` database).
* ``[logging] level = "warn"``, HTTP and query logs off: their chatter is noise in a
  failure message.

The default retention policy (``autogen``) keeps data forever, so tests can write at
fixed past timestamps. A write that answered 204 is visible to the next query (WAL +
cache), so nothing here polls for visibility.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import daemons
from tests.support.process import free_port

BINARY_NAME = "influxd"
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


def require_binary() -> str:
    """The binary's path, or skip the test naming the package (``daemons.require_binary``)."""
    return daemons.require_binary(BINARY_NAME, "influxdb")


def config_text(root: Path, http_port: int, rpc_port: int) -> str:
    return f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root / "meta"}"

[data]
  dir = "{root / "data"}"
  wal-dir = "{root / "wal"}"
  query-log-enabled = false

[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false

[monitor]
  store-enabled = false

[continuous_queries]
  enabled = false

[logging]
  level = "warn"
"""


@dataclass
class InfluxServer:
    """One running ``influxd``; ``version`` is what its ``/ping`` says."""

    binary: str
    root: Path
    http_port: int
    rpc_port: int
    process: subprocess.Popen[bytes] | None = None
    version: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.root / "influxd.log"

    def start(self) -> None:
        assert self.process is None, "already running"
        config = self.root / "influxdb.conf"
        config.write_text(config_text(self.root, self.http_port, self.rpc_port))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "run", "-config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise RuntimeError(f"{BINARY_NAME} exited with {code}:\n{self.log_text()}")
            try:
                response = httpx.get(f"{self.url}/ping", timeout=1)
                if response.status_code == 204:
                    self.version = response.headers.get("X-Influxdb-Version", "")
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{BINARY_NAME} not ready on {self.url}:\n{self.log_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def query(self, db: str, statement: str) -> list[dict[str, Any]]:
        """The ``series`` of one InfluxQL statement (``epoch=ns``), straight from the
        server; a statement error fails the test with the server's message."""
        response = httpx.post(
            f"{self.url}/query",
            params={"db": db, "epoch": "ns"},
            data={"q": statement},
            timeout=10,
        )
        response.raise_for_status()
        result = response.json()["results"][0]
        assert "error" not in result, result["error"]
        return list(result.get("series", []))

    def write(self, db: str, body: str) -> httpx.Response:
        """POST raw line protocol to ``/write?db=&precision=ns``."""
        return httpx.post(
            f"{self.url}/write", params={"db": db, "precision": "ns"}, content=body, timeout=10
        )

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextmanager
def influx_server(root: Path) -> Iterator[InfluxServer]:
    """A started ``influxd`` keeping everything under ``root``; stopped on exit. Skips
    the test when the binary is not installed."""
    binary = require_binary()
    root.mkdir(parents=True, exist_ok=True)
    http_port = free_port()
    rpc_port = free_port()
    while rpc_port == http_port:
        rpc_port = free_port()
    server = InfluxServer(binary, root, http_port, rpc_port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
