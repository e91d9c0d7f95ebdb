"""Real third-party servers for integration tests (Debian's Alertmanager and nginx; a
Grafana Loki binary where one exists), each started by the test on a free loopback port
with its own temporary config and data directory, and stopped afterwards.

Nothing here imitates a server: a test that needs one whose binary is absent is skipped
with a message saying which package provides it.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest


def require_binary(name: str, package: str) -> str:
    """The binary's path, or skip the test naming the package that installs it."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return path


class Daemon:
    """A server subprocess whose combined output goes to ``log_path``."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until(ready: Callable[[], bool], daemon: Daemon, what: str, timeout: float = 20.0) -> None:
    """Poll ``ready`` until true; fail with the server's own output if it died or hung."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited {daemon.proc.returncode}:\n{daemon.log_text()[-3000:]}"
            )
        try:
            if ready():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:g}s:\n{daemon.log_text()[-3000:]}")


def http_ok(url: str, **kwargs: object) -> Callable[[], bool]:
    def ready() -> bool:
        return httpx.get(url, timeout=1, **kwargs).status_code == 200  # type: ignore[arg-type]

    return ready


@contextmanager
def running(argv: Sequence[str], log_path: Path, cwd: Path | None = None) -> Iterator[Daemon]:
    """Run ``argv`` until the block ends; SIGTERM, then SIGKILL after 10 s."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    daemon = Daemon(proc, log_path)
    try:
        yield daemon
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
