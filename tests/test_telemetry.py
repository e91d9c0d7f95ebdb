"""OpenTelemetry: spans of API requests and agent ticks reach a real OTLP/HTTP receiver
(an HTTP server in this process decoding ``ExportTraceServiceRequest``), and with
``telemetry.otlp_endpoint`` unset the SDK is never imported."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from sysmon.clock import FakeClock
from sysmon.config import load_settings
from sysmon.telemetry import TelemetryConfig
from tests.support.process import python_json
from tests.support.stack import stack


@dataclass
class ReceivedSpan:
    name: str
    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    kind: int
    status: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    duration_ns: int


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class Receiver:
    """``POST /v1/traces`` (protobuf) on 127.0.0.1; every span kept, decoded."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.add(ExportTraceServiceRequest.FromString(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id,
                            span_id=span.span_id,
                            parent_id=span.parent_span_id,
                            kind=span.kind,
                            status=span.status.code,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            resource=resource,
                            duration_ns=span.end_time_unix_nano - span.start_time_unix_nano,
                        )
                    )

    def named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


SERVER_KIND = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER
STATUS_ERROR = 2


def test_api_requests_and_ticks_arrive_as_spans(
    receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYSMON_OTLP_HEADERS", "x-tenant=ops, api-key=k1")
    settings = load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        telemetry={"otlp_endpoint": receiver.url, "service_name": "sysmon-test"},
    )
    clock = FakeClock(start=1_800_000_000.0)
    with stack(settings, clock) as running:
        running.tick(2)
        with httpx.Client(base_url=running.base_url, timeout=10) as client:
            assert client.get("/api/v1/metrics/current").status_code == 200
            assert client.get("/api/v1/metrics/memory", params={"bogus": 1}).status_code == 422
            assert client.get("/api/v1/metrics/memory").status_code == 200
            assert client.get("/no/such/page").status_code == 404
    # Leaving the stack stopped the agent and the server: both flushed their spans.

    current = receiver.named("GET /api/v1/metrics/current")
    assert len(current) == 1
    span = current[0]
    assert span.kind == SERVER_KIND
    assert span.attributes["http.route"] == "/api/v1/metrics/current"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.resource["service.name"] == "sysmon-test"
    assert span.resource["sysmon.role"] == "server"
    by_template = receiver.named("GET /api/v1/metrics/{metric}")
    assert sorted(s.attributes["http.response.status_code"] for s in by_template) == [200, 422]
    assert {s.attributes["url.path"] for s in by_template} == {"/api/v1/metrics/memory"}
    unmatched = receiver.named("GET <unmatched>")
    assert [s.attributes["http.response.status_code"] for s in unmatched] == [404]

    ticks = receiver.named("sysmon.tick")
    assert [t.attributes["sysmon.tick.timestamp"] for t in ticks] == [
        1_800_000_000.0,
        1_800_000_001.0,
    ]
    tick = ticks[0]
    assert tick.resource["sysmon.role"] == "agent"
    children = [s for s in receiver.spans if s.parent_id == tick.span_id]
    names = {c.attributes["sysmon.collector"] for c in children}
    assert {"cpu", "memory", "disk", "network", "processes"} <= names
    assert all(c.trace_id == tick.trace_id for c in children)
    assert all(c.name == f"collect {c.attributes['sysmon.collector']}" for c in children)
    memory = next(c for c in children if c.attributes["sysmon.collector"] == "memory")
    assert memory.attributes["sysmon.samples"] > 0
    assert 0 < memory.duration_ns <= tick.duration_ns
    assert tick.attributes["sysmon.collectors_ok"] == len(
        [c for c in children if c.status != STATUS_ERROR]
    )
    # The export carried the configured headers (from the environment).
    assert {r.get("x-tenant") for r in receiver.requests} == {"ops"}
    assert {r.get("content-type") for r in receiver.requests} == {"application/x-protobuf"}


def test_endpoint_forms() -> None:
    assert TelemetryConfig().traces_url() is None
    assert TelemetryConfig(otlp_endpoint="http://c:4318").traces_url() == "http://c:4318/v1/traces"
    assert TelemetryConfig(otlp_endpoint="https://c/otlp/v1/traces").traces_url() == (
        "https://c/otlp/v1/traces"
    )
    with pytest.raises(ValueError, match="http"):
        TelemetryConfig(otlp_endpoint="grpc://c:4317")
    with pytest.raises(ValueError, match="no credentials"):
        TelemetryConfig(otlp_endpoint="http://u:pw@c:4318")
    headers = TelemetryConfig().headers({"SYSMON_OTLP_HEADERS": "A=1, b = two ,bad"})
    assert headers == {"a": "1", "b": "two"}


OFF_PROBE = """
import json, sys
from pathlib import Path
from starlette.testclient import TestClient
from sysmon.agent.service import Agent
from sysmon.config import load_settings
from sysmon.main import create_app
settings = load_settings(None, database={"path": sys.argv[1]})
agent = Agent(settings, channel=Path(sys.argv[2]))
agent.start(schedule=False)
agent.tick()
app = create_app(settings, channel=Path(sys.argv[2]), start_agent=False)
with TestClient(app, base_url="http://127.0.0.1") as client:
    status = client.get("/api/v1/health").status_code
agent.stop()
print(json.dumps({"status": status, "modules": sorted(
    m for m in sys.modules
    if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter", "sentry_sdk"))
)}))
"""


def test_off_by_default_imports_no_sdk(tmp_path: Path) -> None:
    """A fresh process runs an agent tick and a server request with the defaults: no
    OpenTelemetry SDK or exporter (and no Sentry SDK) module is ever imported."""
    sock = Path(tempfile.mkdtemp(prefix="sysmon-o")) / "agent.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYSMON_", "OTEL_"))}
    result = python_json(OFF_PROBE, str(tmp_path / "sysmon.db"), str(sock), env=env)
    assert result == {"status": 200, "modules": []}
