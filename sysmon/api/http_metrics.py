"""HTTP request latency as a Prometheus histogram: ``RequestLatencyMiddleware``.

``sysmon_http_request_duration_seconds{method, route}``. ``route`` is the route
*template* (``/api/v1/metrics/{metric}``, ``/static/*``), never the raw path: a raw
path label would make a new series of every URL a client or a scanner invents.
``method`` is one of the standard methods or ``other``, for the same reason. Requests
that match no route share ``route="<unmatched>"``.

The middleware is the outermost layer, so refused requests (413, 401, 429) and range
cache hits are timed too. Those never reach the router, so their template comes from the
rate limiter's ``RouteTemplates`` (the same names its per-route budgets use); routed
requests use the route the router recorded in the scope.

Time is measured until the last body byte is handed to the server, except for a
``text/event-stream`` answer (``/api/v1/stream``), which lasts as long as the client
stays: there it is the time to the response headers, so a dashboard left open for a day
does not count as a day-long request.

With ``server.workers`` > 1 each worker process has its own histogram (and answers the
scrapes that reach it): sum them per worker (``instance``), or run one worker.
"""

from __future__ import annotations

import time

from prometheus_client import Histogram
from prometheus_client.registry import CollectorRegistry
from starlette._utils import get_route_path
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sysmon.security.ratelimit import RouteTemplates

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""From 1 ms: most answers come from memory (``current``, cache hits) in about a ms."""


def request_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "sysmon_http_request_duration_seconds",
        "HTTP request latency by route template and method (see sysmon.api.http_metrics).",
        labelnames=("method", "route"),
        buckets=BUCKETS,
        registry=registry,
    )


def template_of(route: object) -> str | None:
    """The template of the route the router chose (a mount: ``/static/*``, as
    ``RouteTemplates`` names it, so routed and unrouted requests share one label)."""
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    return f"{path}/*" if isinstance(route, Mount) else path


class RequestLatencyMiddleware:
    def __init__(self, app: ASGIApp, histogram: Histogram, templates: RouteTemplates) -> None:
        self.app = app
        self.histogram = histogram
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = get_route_path(scope)  # before a mount moves its prefix into root_path
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                method = scope.get("method", "GET")
                self.histogram.labels(
                    method if method in METHODS else "other", self._route(scope, path)
                ).observe(time.perf_counter() - start)

        async def timed_send(message: Message) -> None:
            # Observed before the last byte goes out: once a client has its answer, the
            # observation is in (a scrape right after a request sees it).
            kind = message["type"]
            if (kind == "http.response.start" and _is_stream(message)) or (
                kind == "http.response.body" and not message.get("more_body", False)
            ):
                observe()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            observe()  # no complete answer: an error, or the client went away

    def _route(self, scope: Scope, path: str) -> str:
        template = template_of(scope.get("route"))
        if template is not None:
            return template
        return self.templates.template(path)


def _is_stream(message: Message) -> bool:
    for key, value in message.get("headers") or ():
        if key.lower() == b"content-type":
            return bytes(value).startswith(b"text/event-stream")
    return False
