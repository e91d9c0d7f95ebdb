"""TLS end to end and the refusal of an open bind without authentication, through the
real command line (``python -m app --config X serve|server`` in a subprocess).

The certificate is made in the test (``openssl req``, self-signed for localhost and
127.0.0.1) and trusted by the client through an SSL context holding only it.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sysmon.cli import _check_bind, _Refused
from sysmon.config import load_settings
from tests.support.process import ROOT, free_port, service_env

OPENSSL = shutil.which("openssl")


@dataclass
class Cert:
    certfile: Path
    keyfile: Path

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.certfile))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    if OPENSSL is None:
        pytest.skip("openssl not found: `apt-get install -y openssl` to run the TLS tests")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(keyfile), "-out", str(certfile),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    keyfile.chmod(0o600)
    return Cert(certfile, keyfile)


def write_config(tmp_path: Path, port: int, **server: Any) -> Path:
    body = {"database": {"path": str(tmp_path / "data" / "sysmon.db")}, "server": {"port": port}}
    body["server"].update(server)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@contextmanager
def running(tmp_path: Path, config: Path, *argv: str) -> Iterator[subprocess.Popen[bytes]]:
    env = service_env(tmp_path / "data" / "sysmon.db")
    env.pop("SYSMON_DATABASE__PATH")
    log = (tmp_path / "sysmon.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysmon", "--config", str(config), *argv],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_answering(
    client: httpx.Client, url: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if client.get(url).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered:\n" + log.read_text(errors="replace")[-3000:])


def test_serve_over_tls_end_to_end(tmp_path: Path, cert: Cert) -> None:
    """``sysmon serve --ssl-certfile --ssl-keyfile``: the flags reach the server child,
    data flows from the agent, every answer carries HSTS."""
    port = free_port()
    config = write_config(tmp_path, port)
    argv = ["serve", "--ssl-certfile", str(cert.certfile), "--ssl-keyfile", str(cert.keyfile)]
    with (
        running(tmp_path, config, *argv) as proc,
        httpx.Client(verify=cert.context(), timeout=5) as client,
    ):
        base = f"https://localhost:{port}"
        wait_answering(client, f"{base}/api/v1/metrics/current", proc, tmp_path / "sysmon.log")
        r = client.get(f"{base}/api/v1/metrics/current")
        assert r.json()["timestamp"] > 0
        assert r.headers["strict-transport-security"] == "max-age=31536000"
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        page = client.get(f"https://127.0.0.1:{port}/")
        assert page.status_code == 200 and "strict-transport-security" in page.headers
        # Plain HTTP on the TLS port is not served.
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=3).raise_for_status()
        # A client that does not trust the certificate refuses it.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/api/v1/health", timeout=3)


def test_server_takes_tls_from_the_config(tmp_path: Path, cert: Cert) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        port,
        security={"ssl_certfile": str(cert.certfile), "ssl_keyfile": str(cert.keyfile)},
    )
    with (
        running(tmp_path, config, "server") as proc,
        httpx.Client(verify=cert.context(), timeout=5) as client,
    ):
        url = f"https://localhost:{port}/api/v1/health"
        wait_answering(client, url, proc, tmp_path / "sysmon.log")
        assert client.get(url).headers["strict-transport-security"] == "max-age=31536000"


def run_to_exit(tmp_path: Path, config: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = service_env(tmp_path / "data" / "sysmon.db")
    env.pop("SYSMON_DATABASE__PATH")
    return subprocess.run(
        [sys.executable, "-m", "sysmon", "--config", str(config), *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", ["serve", "server"])
def test_tls_needs_a_readable_pair(tmp_path: Path, cert: Cert, command: str) -> None:
    config = write_config(tmp_path, free_port())
    done = run_to_exit(tmp_path, config, command, "--ssl-certfile", str(cert.certfile))
    assert done.returncode == 2
    assert "TLS needs both a certificate and its key" in done.stderr
    missing = tmp_path / "nope.pem"
    done = run_to_exit(
        tmp_path, config, command, "--ssl-certfile", str(missing), "--ssl-keyfile", str(missing)
    )
    assert done.returncode == 2
    assert f"TLS certificate {missing} is not a readable file" in done.stderr


REFUSAL = (
    "auth.mode is none: the API would be open to the network; use auth.mode: jwt or pass --insecure"
)


@pytest.mark.parametrize("command", ["serve", "server"])
def test_open_bind_without_auth_is_refused(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path, free_port())
    started = time.monotonic()
    done = run_to_exit(tmp_path, config, command, "--host", "0.0.0.0")
    assert done.returncode == 2
    assert f"refusing to listen on 0.0.0.0: {REFUSAL}" in done.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "data" / "agent.lock").exists()  # nothing was started


def test_open_bind_from_the_config_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), host="::")
    done = run_to_exit(tmp_path, config, "serve")
    assert done.returncode == 2
    assert f"refusing to listen on ::: {REFUSAL}" in done.stderr


def test_insecure_allows_it_loudly(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    with running(tmp_path, config, "serve", "--host", "0.0.0.0", "--insecure") as proc:
        log = tmp_path / "sysmon.log"
        with httpx.Client(timeout=5) as client:
            wait_answering(client, f"http://127.0.0.1:{port}/api/v1/health", proc, log)
        text = log.read_text(errors="replace")
        assert "INSECURE: listening on 0.0.0.0 with auth.mode none (--insecure)" in text
        assert "WARNING" in text


@pytest.mark.parametrize(
    ("host", "mode", "insecure", "refused"),
    [
        ("127.0.0.1", "none", False, False),
        ("localhost", "none", False, False),
        ("::1", "none", False, False),
        ("127.0.0.2", "none", False, False),
        ("0.0.0.0", "none", False, True),
        ("192.168.1.10", "none", False, True),
        ("myhost.example", "none", False, True),  # a name could resolve anywhere
        ("0.0.0.0", "none", True, False),
        ("0.0.0.0", "jwt", False, False),
    ],
)
def test_bind_policy(host: str, mode: str, insecure: bool, refused: bool) -> None:
    settings = load_settings(None, auth={"mode": mode})
    if refused:
        with pytest.raises(_Refused, match=r"auth\.mode is none"):
            _check_bind(host, settings, insecure, warn=False)
    else:
        _check_bind(host, settings, insecure, warn=False)
