"""Start the service as a real subprocess (the way a user does) and wait for it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def python_json(code: str, *args: str, env: dict[str, str], timeout: float = 60) -> Any:
    """Run ``python -c code args`` here in a fresh interpreter and return the JSON its
    last line of output holds (raises if it fails)."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_env(db_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}
    env["SYSMON_DATABASE__PATH"] = str(db_path)
    env["SYSMON_COLLECTION__INTERVAL_SECONDS"] = "1"
    env.update(extra)
    return env


def wait_healthy(base_url: str, timeout: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base_url}/api/v1/health", timeout=2)
            body = r.json()
            if r.status_code == 200 and body.get("last_collection_age_seconds") is not None:
                return dict(body)
            last = body
        except (httpx.HTTPError, ValueError) as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"service not healthy at {base_url}: {last}")


def spawn_service(
    db: Path, port: int, log: IO[bytes] | int = subprocess.DEVNULL, **env: str
) -> subprocess.Popen[bytes]:
    """``sysmon serve`` on 127.0.0.1:``port`` storing in ``db``; output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "sysmon", "serve", "--port", str(port)],
        cwd=ROOT,
        env=service_env(db, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM ``proc`` if it still runs, wait, SIGKILL it after ``timeout``; reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def sysmon_process(
    argv: Sequence[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m sysmon <argv>`` from the repository, output appended to ``log``;
    stopped (``stop``) on exit."""
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysmon", *argv],
            cwd=ROOT,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        stop(proc)


class Service(subprocess.Popen[bytes]):
    """A service subprocess whose combined output goes to ``log_path``."""

    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_service(argv: Sequence[str], env: dict[str, str], port: int) -> Iterator[Service]:
    with tempfile.NamedTemporaryFile(prefix="sysmon-service-", suffix=".log") as log:
        proc = Service(
            [sys.executable, "-m", *argv], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        proc.log_path = Path(log.name)
        try:
            try:
                wait_healthy(f"http://127.0.0.1:{port}")
            except TimeoutError:
                raise TimeoutError(proc.log_text()[-3000:]) from None
            yield proc
        finally:
            stop(proc)
