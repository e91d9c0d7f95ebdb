"""OpenTelemetry traces of API requests and collection ticks, exported over OTLP/HTTP.

Off by default, and free when off: with ``telemetry.otlp_endpoint`` unset nothing here
imports the OpenTelemetry SDK or the exporter, no middleware is added and the agent's
tick tracer is a shared no-op context. With it set (extra ``otel``: ``pip install
'sysmon[otel]'``)::

    telemetry:
      otlp_endpoint: http://collector:4318      # /v1/traces is added when no path is given
      headers_env: SYSMON_OTLP_HEADERS          # "api-key=...,x-tenant=..." (secrets: env only)
      service_name: sysmon
      sample_ratio: 1.0

* the server traces each HTTP request as one ``SERVER`` span named ``GET
  /api/v1/metrics/{metric}``: ``http.route`` is the route *template* (as the Prometheus
  histogram uses, so a scanner's random URLs do not make new span names),
  ``http.request.method``, ``http.response.status_code``, status ERROR on a 5xx or an
  exception. The SSE stream's span ends with its headers (a dashboard left open for a
  day is not a day-long span).
* the agent traces each tick as a ``sysmon.tick`` span with one child per collector
  (``collect cpu``, attributes ``sysmon.collector``, ``sysmon.samples``; status ERROR
  with ``sysmon.error`` when it failed or missed its deadline). Collectors run in
  parallel from the tick's start, so each child spans from the tick's start to the end
  of that collector's own run.

Spans leave through a ``BatchSpanProcessor`` (its own thread): a request or a tick only
appends to a queue, and a collector that is down costs dropped spans, never latency.
The tracer provider belongs to the app or the agent (no global provider is set), and is
shut down (flushed) with it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sysmon import __version__
from sysmon.models import Snapshot

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from sysmon.config import Settings
    from sysmon.security.ratelimit import RouteTemplates

logger = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"


class TelemetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP (protobuf) collector for traces of API requests and ticks, "
        "e.g. http://127.0.0.1:4318 (/v1/traces added when the URL has no path). "
        "Default: no tracing (nothing imported)",
    )
    headers_env: str | None = Field(
        default="SYSMON_OTLP_HEADERS",
        description="Environment variable with export headers, 'key=value,key2=value2' "
        "(API keys are secrets: never in the file)",
    )
    service_name: str = Field(default="sysmon", min_length=1, description="service.name")
    sample_ratio: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Share of traces kept (parent-based)"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="Export timeout")

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) URL such as http://127.0.0.1:4318: {value!r}")
        if parts.password is not None:
            raise ValueError("no credentials in the URL: put headers in telemetry.headers_env")
        return parts.geturl()

    def traces_url(self) -> str | None:
        if self.otlp_endpoint is None:
            return None
        parts = urlsplit(self.otlp_endpoint)
        if parts.path in ("", "/"):
            return parts._replace(path=TRACES_PATH).geturl()
        return self.otlp_endpoint

    def headers(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        env = os.environ if environ is None else environ
        raw = env.get(self.headers_env, "") if self.headers_env else ""
        out: dict[str, str] = {}
        for item in raw.split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                out[key.strip().lower()] = value.strip()
        return out


def tracer_provider(config: TelemetryConfig, role: str) -> TracerProvider | None:
    """The SDK provider exporting to ``config``'s endpoint; None (nothing imported) when
    tracing is off."""
    url = config.traces_url()
    if url is None:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create(
        {
            "service.name": config.service_name,
            "service.version": __version__,
            "service.instance.id": f"{socket.gethostname()}:{role}:{os.getpid()}",
            "host.name": socket.gethostname(),
            "process.pid": os.getpid(),
            "sysmon.role": role,
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio))
    )
    exporter = OTLPSpanExporter(
        endpoint=url, headers=config.headers(), timeout=config.timeout_seconds
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
    logger.info("tracing %s to %s (sample ratio %g)", role, url, config.sample_ratio)
    return provider


# --- the server ------------------------------------------------------------------------


def install_tracing(app: FastAPI, settings: Settings) -> None:
    """Add ``TracingMiddleware`` when ``telemetry.otlp_endpoint`` is set. Call it last
    (outermost): refused requests and cache hits are traced too. ``shutdown_tracing``
    (the lifespan's end) flushes."""
    provider = tracer_provider(settings.telemetry, "server")
    if provider is None:
        return
    from sysmon.security.ratelimit import RouteTemplates

    app.state.tracer_provider = provider
    app.add_middleware(
        TracingMiddleware,
        tracer=provider.get_tracer("sysmon.api", __version__),
        templates=RouteTemplates(app),
    )


def shutdown_tracing(app: FastAPI) -> None:
    provider = getattr(app.state, "tracer_provider", None)
    if provider is not None:
        provider.shutdown()


class TracingMiddleware:
    """One ``SERVER`` span per HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, tracer: Tracer, templates: RouteTemplates) -> None:
        from opentelemetry import trace

        self.app = app
        self.tracer = tracer
        self.templates = templates
        self._trace = trace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette._utils import get_route_path

        trace = self._trace
        method = str(scope.get("method", "GET"))
        path = get_route_path(scope)  # before a mount moves its prefix into root_path
        span = self.tracer.start_span(
            method,
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": path,
                "url.scheme": str(scope.get("scheme", "http")),
            },
        )
        status: list[int] = []
        ended = False

        def finish(error: BaseException | None = None) -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self._finish(span, scope, path, method, status[0] if status else 500, error)

        async def traced_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                status.append(int(message["status"]))
                if _is_stream(message):
                    finish()
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                finish()

        try:
            with trace.use_span(span, end_on_exit=False):
                await self.app(scope, receive, traced_send)
        except BaseException as exc:
            finish(exc)
            raise
        finally:
            finish()

    def _finish(
        self,
        span: Span,
        scope: Scope,
        path: str,
        method: str,
        status: int,
        error: BaseException | None,
    ) -> None:
        from opentelemetry.trace import Status, StatusCode

        from sysmon.api.http_metrics import template_of

        route = template_of(scope.get("route")) or self.templates.template(path)
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if error is not None:
            span.record_exception(error)
        if status >= 500 or error is not None:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__ if error else None))
        span.end()


def _is_stream(message: Message) -> bool:
    for key, value in message.get("headers") or ():
        if key.lower() == b"content-type":
            return bytes(value).startswith(b"text/event-stream")
    return False


# --- the agent -------------------------------------------------------------------------


class TickTrace(Protocol):
    def collected(self, snapshot: Snapshot, durations: Mapping[str, float | None]) -> None:
        """Record the tick's collectors (called once, inside the tick)."""


class TickTracer(Protocol):
    """What the agent calls around each tick. ``tick`` is entered on the tick thread;
    ``shutdown`` runs once, after the last tick (it flushes queued spans)."""

    def tick(self, stamp: float) -> AbstractContextManager[TickTrace]: ...

    def shutdown(self) -> None: ...


class _NoTrace:
    def collected(self, snapshot: Snapshot, durations: Mapping[str, float | None]) -> None:
        return None


class NoTickTracing:
    """Tracing off: one shared ``nullcontext`` per tick, nothing else."""

    _context: AbstractContextManager[TickTrace] = nullcontext(_NoTrace())

    def tick(self, stamp: float) -> AbstractContextManager[TickTrace]:
        return self._context

    def shutdown(self) -> None:
        return None


def tick_tracer(settings: Settings) -> TickTracer:
    provider = tracer_provider(settings.telemetry, "agent")
    return NoTickTracing() if provider is None else OtelTickTracing(provider)


class _OtelTickTrace:
    def __init__(self, tracer: Tracer, root: Span, start_ns: int) -> None:
        self._tracer = tracer
        self._root = root
        self._start_ns = start_ns

    def collected(self, snapshot: Snapshot, durations: Mapping[str, float | None]) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        context = trace.set_span_in_context(self._root)
        now = time.time_ns()
        for name, result in sorted(snapshot.results.items()):
            seconds = durations.get(name)
            end = now if seconds is None else self._start_ns + int(seconds * 1e9)
            child = self._tracer.start_span(
                f"collect {name}",
                context=context,
                start_time=self._start_ns,
                attributes={
                    "sysmon.collector": name,
                    "sysmon.samples": len(result.samples),
                    "sysmon.rows": len(result.rows),
                },
            )
            child.end(end_time=min(end, now))
        for name, error in sorted(snapshot.errors.items()):
            child = self._tracer.start_span(
                f"collect {name}",
                context=context,
                start_time=self._start_ns,
                attributes={"sysmon.collector": name, "sysmon.error": error},
            )
            child.set_status(Status(StatusCode.ERROR, error))
            child.end(end_time=now)
        self._root.set_attribute("sysmon.collectors_ok", len(snapshot.results))
        self._root.set_attribute("sysmon.collectors_failed", len(snapshot.errors))


class OtelTickTracing:
    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("sysmon.agent", __version__)

    @contextmanager
    def _tick(self, stamp: float) -> Iterator[TickTrace]:
        from opentelemetry import trace

        start = time.time_ns()
        root = self._tracer.start_span(
            "sysmon.tick", start_time=start, attributes={"sysmon.tick.timestamp": stamp}
        )
        with trace.use_span(root, end_on_exit=True):
            yield _OtelTickTrace(self._tracer, root, start)

    def tick(self, stamp: float) -> AbstractContextManager[TickTrace]:
        return self._tick(stamp)

    def shutdown(self) -> None:
        self._provider.shutdown()


__all__ = [
    "NoTickTracing",
    "OtelTickTracing",
    "TelemetryConfig",
    "TickTracer",
    "TracingMiddleware",
    "install_tracing",
    "shutdown_tracing",
    "tick_tracer",
    "tracer_provider",
]
