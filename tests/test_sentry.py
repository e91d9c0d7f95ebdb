"""Sentry: unhandled errors of the server and of the agent reach a Sentry-speaking HTTP
receiver in this process (DSN ``http://public@127.0.0.1:PORT/1``; no real Sentry is
ever contacted), and no secret is in what arrives.

Each reporting process is a child (the SDK is process-global): the server is the real
app with one test-only route that raises; the agent is ``sysmon agent`` with a plugin
collector (this module) whose value breaks the tick *after* the per-collector isolation
(serialising the live frame), so the agent's loop logs ``tick ... failed``.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.registry import register
from sysmon.config import load_settings
from sysmon.models import Collected, MetricInfo, Sample
from sysmon.sentry import FILTERED, Scrubber, install_sentry, secret_values
from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import SQLiteStore
from tests.support.process import ROOT, free_port

JWT_SECRET = "jwt-signing-secret-0042"
REDIS_PASSWORD = "redis-password-0043"
SMTP_PASSWORD = "smtp-password-0044"
SECRETS = (
    JWT_SECRET,
    REDIS_PASSWORD,
    SMTP_PASSWORD,
    "cmdline-secret-0001",
    "query-secret-0002",
    "header-secret-0003",
    "cookie-secret-0004",
    "apikey-secret-0005",
    "url-secret-0006",
)
LEAKY = (
    "probe failed: mysql --password=cmdline-secret-0001 "
    "https://u:url-secret-0006@db.example/x?token=query-secret-0002 "
    f"key {JWT_SECRET} redis {REDIS_PASSWORD} smtp {SMTP_PASSWORD}"
)


class _Explodes:
    """A sample value that raises when the agent serialises the tick."""

    def __float__(self) -> float:
        raise RuntimeError(LEAKY)


@register("sentry_probe")
class SentryProbe:
    """Test plugin (``collection.plugins: [tests.test_sentry]``)."""

    Options = CollectorOptions
    fields: ClassVar[tuple[MetricInfo, ...]] = (MetricInfo("value", "-", "test probe"),)

    def __init__(self, source: object, options: CollectorOptions) -> None:
        return None

    def collect(self, monotonic: float) -> Collected:
        return Collected(samples=(Sample("sentry_probe", "value", _Explodes()),))  # type: ignore[arg-type]

    def close(self) -> None:
        return None


class SentryReceiver:
    """Accepts the SDK's envelope POSTs (``/api/<project>/envelope/``), decompressed."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    raw = gzip.decompress(raw)
                elif encoding == "deflate":
                    raw = zlib.decompress(raw)
                if self.path.startswith("/api/1/envelope"):
                    receiver.envelopes.append(raw)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://public@127.0.0.1:{self.server.server_address[1]}/1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        """The ``event`` items of every envelope (header line, item header, payload)."""
        out = []
        for envelope in self.envelopes:
            lines = envelope.split(b"\n")
            for i in range(1, len(lines) - 1):
                try:
                    header = json.loads(lines[i])
                except ValueError:
                    continue
                if isinstance(header, dict) and header.get("type") == "event":
                    out.append(json.loads(lines[i + 1]))
        return out

    def wait_for(self, predicate: Any, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = [e for e in self.events() if predicate(e)]
            if events:
                return events
            time.sleep(0.1)
        raise AssertionError(f"no matching event; got {self.events()}")


@pytest.fixture
def receiver() -> Iterator[SentryReceiver]:
    running = SentryReceiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


def _env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSMON_")}
    env.update(
        SYSMON_SENTRY_DSN=dsn,
        SYSMON_JWT_SECRET=JWT_SECRET,
        SYSMON_REDIS_PASSWORD=REDIS_PASSWORD,
        SYSMON_SMTP_PASSWORD=SMTP_PASSWORD,
    )
    return env


def _exception_text(event: dict[str, Any]) -> str:
    return " ".join(v.get("value", "") for v in (event.get("exception") or {}).get("values", []))


def _assert_no_secret(receiver: SentryReceiver) -> None:
    everything = b"\n".join(receiver.envelopes)
    for secret in SECRETS:
        assert secret.encode() not in everything, f"{secret} leaked to Sentry"


SERVER_CHILD = """
import os, sys
from pathlib import Path
from starlette.testclient import TestClient
from sysmon.config import load_settings
from sysmon.main import create_app
import sentry_sdk
settings = load_settings(
    None, database={"path": sys.argv[1]}, redis={"url": "redis://127.0.0.1:1/0", "live": False}
)
app = create_app(settings, channel=Path(sys.argv[2]), start_agent=False)
LEAKY = sys.argv[3]

@app.get("/api/v1/test-boom")
def boom() -> None:
    raise RuntimeError(LEAKY)

with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
    answer = client.get(
        "/api/v1/test-boom?token=query-secret-0002&page=2",
        headers={
            "Authorization": "Bearer header-secret-0003",
            "Cookie": "sysmon_session=cookie-secret-0004",
            "X-API-Key": "sysmon_apikey-secret-0005",
        },
    )
print(answer.status_code, answer.json())
sentry_sdk.flush(10)
"""


def test_server_route_error_is_reported_without_secrets(
    receiver: SentryReceiver, tmp_path: Path
) -> None:
    db = tmp_path / "sysmon.db"
    store = SQLiteStore(db, retention=RetentionConfig(), interval_seconds=1)
    store.open()
    store.close()
    out = subprocess.run(
        [sys.executable, "-c", SERVER_CHILD, str(db), str(tmp_path / "a.sock"), LEAKY],
        cwd=ROOT,
        env=_env(receiver.dsn),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("500 "), out.stdout
    events = receiver.wait_for(lambda e: "probe failed" in _exception_text(e))
    event = events[0]
    assert event["tags"]["sysmon.role"] == "server"
    text = _exception_text(event)
    assert "--password=***" in text and "token=***" in text and FILTERED in text
    request = event.get("request") or {}
    if request:  # the Starlette integration's request context, scrubbed
        assert "query-secret-0002" not in json.dumps(request)
        assert request.get("url", "").endswith("/api/v1/test-boom")
    _assert_no_secret(receiver)


def test_agent_tick_error_is_reported_without_secrets(
    receiver: SentryReceiver, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"path": str(tmp_path / "data" / "sysmon.db")},
                "server": {"port": port},
                "agent": {"socket": str(tmp_path / "agent.sock")[:90]},
                "collection": {"plugins": ["tests.test_sentry"]},
                "collectors": {name: {"enabled": False} for name in ("processes", "sockets")},
            }
        )
    )
    log = tmp_path / "agent.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sysmon", "--config", str(config), "agent"],
            cwd=ROOT,
            env=_env(receiver.dsn),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        try:
            events = receiver.wait_for(lambda e: "probe failed" in _exception_text(e), 40)
        except AssertionError:
            raise AssertionError(log.read_text(errors="replace")[-3000:]) from None
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    event = events[0]
    assert event["tags"]["sysmon.role"] == "agent"
    assert "tick" in json.dumps(event.get("logentry") or event.get("message") or "")
    assert "--password=***" in _exception_text(event)
    argv = json.dumps((event.get("extra") or {}).get("sys.argv", ""))
    assert "agent" in argv
    _assert_no_secret(receiver)
    # The agent's own log is scrubbed by the same rules (sysmon.logs.scrub): the
    # command-line patterns and the bare values its configuration knows (the JWT secret,
    # the Redis and SMTP passwords quoted alone in LEAKY).
    local = log.read_text(errors="replace")
    assert "live tick publishing failing" in local and "--password=***" in local
    assert "key *** redis *** smtp ***" in local
    for secret in SECRETS:
        assert secret not in local, secret


def test_scrubber_rules() -> None:
    scrub = Scrubber([JWT_SECRET, "abc"])  # too short to look for everywhere
    event = {
        "request": {
            "headers": {"Authorization": "Bearer x", "Accept": "text/html", "X-Api-Key": "k"},
            "cookies": {"sysmon_session": "c"},
            "query_string": "token=query-secret-0002&page=2",
        },
        "extra": {"sys.argv": ["tool", "--db-password", "cmdline-secret-0001", "run"]},
        "breadcrumbs": {"values": [{"message": f"signed with {JWT_SECRET} abc"}]},
        "tags": {"count": 3},
    }
    out = scrub.event(event, {})
    assert out["request"]["headers"] == {
        "Authorization": FILTERED,
        "Accept": "text/html",
        "X-Api-Key": FILTERED,
    }
    assert out["request"]["cookies"] == FILTERED
    assert out["request"]["query_string"] == "token=***&page=2"
    assert out["extra"]["sys.argv"] == "tool --db-password *** run"
    assert out["breadcrumbs"]["values"][0]["message"] == f"signed with {FILTERED} abc"
    assert out["tags"] == {"count": 3}


def test_secret_values_come_from_the_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "SYSMON_JWT_SECRET": JWT_SECRET,
        "SYSMON_SMTP_PASSWORD": SMTP_PASSWORD,
        "MY_HOOK": "https://hooks.example/T000/secret-path",
        "SYSMON_REDIS_PASSWORD": REDIS_PASSWORD,
        "SYSMON_OTLP_HEADERS": "api-key=otlp-key-0007",
        "SYSMON_COLLECTION__INTERVAL_SECONDS": "1",
        "UNRELATED": "not-a-secret-value",
    }
    settings = load_settings(
        None,
        redis={"url": "redis://127.0.0.1:6379/0"},
        alerts={"channels": {"hook": {"type": "webhook", "url_env": "MY_HOOK"}}},
    )
    found = secret_values(settings, env)
    assert {
        JWT_SECRET,
        SMTP_PASSWORD,
        "https://hooks.example/T000/secret-path",
        REDIS_PASSWORD,
        "otlp-key-0007",
    } <= found
    assert "not-a-secret-value" not in found and "1" not in found
    assert install_sentry("server", settings, environ={}) is False  # no DSN: nothing starts
