"""A real VictoriaMetrics single-node server on a free loopback port, for tests.

``victoria_server(data_path)`` starts Debian's ``victoria-metrics`` binary and stops it
on exit; ``require_binary()`` skips the calling test (with the install command) when the
binary is absent, and only then.

Flags and why:

* ``-retentionPeriod 100y``: tests write at fixed past timestamps (2023); the default
  retention (1 month) would drop them at once.
* ``-search.latencyOffset=0s``: by default the server hides the newest 30 s of every
  range query (``end`` is clipped to ``now - 30s``); tests that read "now" need them.
* ``-loggerLevel WARN``: its INFO start-up chatter is noise in a failure message.

Ingested rows sit in an in-memory buffer for up to a second or two before searches see
them. ``VictoriaServer.flush()`` calls ``/internal/force_flush``, which makes every row
accepted so far searchable, so tests never poll or sleep for visibility.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import daemons
from tests.support.process import free_port

BINARY_NAME = "victoria-metrics"
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


def require_binary() -> str:
    """The binary's path, or skip the test naming the package (``daemons.require_binary``)."""
    return daemons.require_binary(BINARY_NAME, "victoria-metrics")


def server_args(binary: str, port: int, data_path: Path) -> list[str]:
    return [
        binary,
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={data_path}",
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
        "-loggerLevel=WARN",
    ]


@dataclass
class VictoriaServer:
    """One running server; ``stop()``/``start()`` take it down and bring it back on the
    same port and data directory (what a restart of a real server looks like)."""

    binary: str
    port: int
    data_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                server_args(self.binary, self.port, self.data_path),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            code = self.process.poll()
            if code is not None:
                self.process = None
                raise RuntimeError(f"{BINARY_NAME} exited with {code}:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).text.strip() == "OK":
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{BINARY_NAME} not healthy on {self.url}:\n{self.log_text()}")
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

    def flush(self) -> None:
        """Make every row ingested so far visible to searches (``/internal/force_flush``)."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def counter(self, name: str, **labels: str) -> float:
        """The server's own ``/metrics`` value of ``name`` with (at least) these labels
        (0 if absent), e.g. ``counter("vm_rows_inserted_total", type="promremotewrite")``."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if series.split("{", 1)[0] == name and all(w in series for w in wanted):
                return float(value)
        return 0.0

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextmanager
def victoria_server(data_path: Path) -> Iterator[VictoriaServer]:
    """A started server storing under ``data_path``; stopped on exit. Skips the test
    when the binary is not installed."""
    binary = require_binary()
    data_path.mkdir(parents=True, exist_ok=True)
    server = VictoriaServer(binary, free_port(), data_path / "data", data_path / "vm.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
