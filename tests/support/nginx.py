"""Debian's nginx in front of a sysmon server, configured with the shipped
``deploy/nginx/sysmon.conf`` (only ports, certificate paths and the upstream address
substituted), a self-signed certificate for 127.0.0.1 made with ``openssl``."""

from __future__ import annotations

import getpass
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.daemons import Daemon, running, wait_until
from tests.support.process import ROOT, free_port

SHIPPED = ROOT / "deploy" / "nginx" / "sysmon.conf"
ACCESS_FORMAT = "$remote_addr $request_id $status $request"


@dataclass
class Nginx:
    https_url: str
    http_url: str
    cert: Path
    access_log: Path
    daemon: Daemon

    def tls_context(self) -> ssl.SSLContext:
        """Trusts the test certificate only (hostname checked: its SAN is 127.0.0.1)."""
        return ssl.create_default_context(cafile=str(self.cert))


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.skip("nginx not installed (apt-get install nginx)")
    return found


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A one-day certificate for 127.0.0.1 (SAN IP, so clients verify the name)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def render(text: str, substitutions: dict[str, str]) -> str:
    """The shipped file with each placeholder replaced; every one must be there once,
    so an edit of the shipped file cannot silently escape the test."""
    for old, new in substitutions.items():
        count = text.count(old)
        assert count == 1, f"{old!r} appears {count} times in {SHIPPED}"
        text = text.replace(old, new)
    return text


@contextmanager
def nginx_proxy(tmp: Path, upstream_port: int) -> Iterator[Nginx]:
    binary = nginx_binary()
    prefix = tmp / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    cert, key = self_signed(prefix)
    https_port, http_port = free_port(), free_port()
    site = render(
        SHIPPED.read_text(),
        {
            "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
            "/etc/ssl/certs/sysmon.example.com.pem": str(cert),
            "/etc/ssl/private/sysmon.example.com.key": str(key),
        },
    )
    (prefix / "sysmon.conf").write_text(site)
    access_log = prefix / "access.log"
    # As root, nginx's workers would switch to "nobody", who cannot use the test's
    # private temp directories: run them as the current user.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    temp_paths = "".join(
        f"{kind}_temp_path {prefix / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (prefix / "nginx.conf").write_text(
        f"""{user}
worker_processes 1;
events {{ worker_connections 128; }}
http {{
    log_format sysmon_test '{ACCESS_FORMAT}';
    access_log {access_log} sysmon_test;
    {temp_paths}
    include {prefix / "sysmon.conf"};
}}
"""
    )
    argv = [
        binary,
        "-c", str(prefix / "nginx.conf"),
        "-p", str(prefix),
        "-e", "stderr",
        "-g", f"daemon off; pid {prefix / 'nginx.pid'}; error_log stderr;",
    ]  # fmt: skip
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    https_url = f"https://127.0.0.1:{https_port}"
    with running(argv, prefix / "nginx.out") as daemon:

        def ready() -> bool:
            context = ssl.create_default_context(cafile=str(cert))
            return httpx.get(f"{https_url}/api/v1/health", verify=context, timeout=2).is_success

        wait_until(ready, daemon, "nginx")
        yield Nginx(https_url, f"http://127.0.0.1:{http_port}", cert, access_log, daemon)
