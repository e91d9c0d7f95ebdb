"""The server process: API, dashboard and live stream (``create_app``).

The server never collects. It reads history from the store (opened read-only) and gets
each tick from the agent over the live channel (``sysmon.channel``). Unless told otherwise
(``server.start_agent: false``, as ``sysmon serve`` and ``sysmon server`` do), it also
starts an agent for the data directory when none holds it and supervises it, so the
spec's ``uvicorn app.main:app`` (``app/main.py``, a checkout shim) alone gives a working monitor.

``app`` is built on first access (module ``__getattr__``), from ``config/config.yaml``
or ``$SYSMON_CONFIG``: importing this module does no work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from sysmon import __version__
from sysmon.alerts.store import AlertStore
from sysmon.api.alerts_view import AlertsView
from sysmon.api.cache import RangeCacheMiddleware, ResponseCache
from sysmon.api.deps import StoreReads
from sysmon.api.errors import install_handlers
from sysmon.api.exposition import install_metrics
from sysmon.api.feed import LatestView, TickFeed
from sysmon.api.head import LiveHead
from sysmon.api.limits import install_limits
from sysmon.api.main import api_router
from sysmon.api.range_head import HeadRange, HeadRangeMiddleware, backfill
from sysmon.api.requestlog import install_request_log
from sysmon.api.responses import JSONBody
from sysmon.api.routes import docs as docs_routes
from sysmon.api.routes import metrics as metrics_routes
from sysmon.catalog import MetricCatalog, metric_catalog
from sysmon.channel import data_dir, socket_path
from sysmon.clock import Clock, SystemClock
from sysmon.collectors.registry import CollectorRegistry, discover
from sysmon.config import Settings, config_path_from_env, load_settings, public_url
from sysmon.errors import ConfigError
from sysmon.fanout import describe_source, live_host, server_source
from sysmon.live import LiveHub
from sysmon.security.auth import install_auth
from sysmon.security.http import install_http_security
from sysmon.security.ratelimit import install_rate_limits
from sysmon.sentry import install_sentry
from sysmon.storage.base import RawGridQuery, TimeSeriesStore
from sysmon.telemetry import install_tracing, shutdown_tracing
from sysmon.web import vendor

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"


def validate_settings(settings: Settings, registry: CollectorRegistry | None = None) -> None:
    """What ``sysmon config check`` checks beyond the pydantic models (``sysmon.preflight``;
    kept here for its callers). Raises ``ConfigError`` naming the key."""
    from sysmon.preflight import check_settings

    check_settings(settings, registry)


def _agent_supervisor(settings: Settings, config_path: Path | None) -> Any:
    """A supervisor that keeps one agent running for this data directory."""
    from sysmon.supervisor import Supervisor, agent_spec, sysmon_argv

    args = ["--config", str(config_path)] if config_path else []
    return Supervisor([agent_spec(sysmon_argv(*args, "agent"), data_dir(settings.database.path))])


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    store: TimeSeriesStore | None = None,
    channel: Path | None = None,
    start_agent: bool | None = None,
    config_path: Path | None = None,
) -> FastAPI:
    """Build the server app. Parts not given are built from ``settings`` in the lifespan.

    ``channel`` overrides the live-channel socket path; ``start_agent`` overrides
    ``server.start_agent`` (tests run the agent in-process and pass ``False``).
    """
    the_settings = settings if settings is not None else load_settings(config_path_from_env())
    supervise = the_settings.server.start_agent if start_agent is None else start_agent

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        the_clock = clock or SystemClock()
        the_store = store or _build_store(the_settings, the_clock)
        await anyio.to_thread.run_sync(the_store.open)
        hub: LiveHub[LatestView] = LiveHub()
        hub.bind(asyncio.get_running_loop())
        head = _live_head(the_settings, the_store, app.state.catalog)
        feed = TickFeed(
            hub,
            the_clock,
            roles_apply=the_settings.auth.mode == "jwt",
            listener=None if head is None else head.on_frame,
        )
        path = channel or socket_path(the_settings.database.path, the_settings.agent.socket)
        # Redis when redis.url is set (sysmon.fanout), else the agent's Unix socket.
        subscriber = server_source(
            the_settings, feed.on_frame, path, force_socket=channel is not None
        )
        task = asyncio.create_task(subscriber.run(), name="live-channel")
        server_cfg = the_settings.server
        alerts = AlertsView(
            the_settings.alerts,
            AlertStore(
                str(the_settings.database.path),
                create=False,
                url=the_settings.relational.resolved_url(),
            ),
            feed,
            the_clock,
            hostname=socket.gethostname,
            dashboard_url=public_url(server_cfg),
        )
        supervisor = None
        if supervise:
            supervisor = _agent_supervisor(the_settings, config_path or config_path_from_env())
            supervisor.start()
        app.state.settings = the_settings
        app.state.clock = the_clock
        app.state.registry = registry
        app.state.store = the_store
        app.state.store_reads = StoreReads(the_settings.api.store_threads)
        app.state.hub = hub
        app.state.feed = feed
        app.state.subscriber = subscriber
        app.state.supervisor = supervisor
        # The agent's write generation says when SQLite changed; a remote backend is also
        # written by other agents and by replays, which no generation here sees: no cache.
        own_writer = the_settings.database.backend == "sqlite"
        app.state.range_cache = ResponseCache(
            lambda: feed.generation,
            max_bytes=the_settings.server.limits.cache_max_bytes if own_writer else 0,
        )
        app.state.live_head = head
        app.state.range_head = None
        tasks = [task]
        if head is not None and isinstance(the_store, RawGridQuery):
            app.state.range_head = HeadRange(
                head, the_store, app.state.catalog, the_settings.api, the_clock
            )
            reads = app.state.store_reads
            filling = backfill(head, the_store, reads, app.state.catalog)
            tasks.append(asyncio.create_task(filling, name="live-head-backfill"))
        app.state.alerts = alerts
        app.state.started = the_clock.monotonic()
        logger.info(
            "sysmon server %s reading %s; live ticks from %s%s",
            __version__,
            the_settings.database.path,
            describe_source(subscriber),
            "; supervising the agent" if supervisor is not None else "",
        )
        try:
            yield
        finally:
            for running in tasks:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            if supervisor is not None:
                await anyio.to_thread.run_sync(supervisor.stop)
            await anyio.to_thread.run_sync(alerts.close)
            await anyio.to_thread.run_sync(the_store.close)
            await anyio.to_thread.run_sync(shutdown_tracing, app)

    install_sentry("server", the_settings)  # only with $SYSMON_SENTRY_DSN
    app = FastAPI(
        title="sysmon",
        version=__version__,
        description="Single-server system resource monitor: metrics, history, alerts.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: sysmon.api.routes.docs (assets from our origin)
        redoc_url=None,
        default_response_class=JSONBody,  # orjson (sysmon.api.responses)
    )
    registry = discover(plugins=the_settings.collection.plugins)
    metrics_routes.install_catalog(app, metric_catalog(registry))  # the API's metric list
    install_handlers(app)
    # Middleware runs outermost-last-added: body limit, Host check and headers, rate
    # limits, authentication, then the live head and the range cache (whose answers skip
    # routing, so every check above them applies to their answers too).
    app.add_middleware(RangeCacheMiddleware, cache=lambda: getattr(app.state, "range_cache", None))
    app.add_middleware(HeadRangeMiddleware, source=lambda: getattr(app.state, "range_head", None))
    install_auth(app, the_settings)
    install_rate_limits(app, the_settings)
    install_http_security(app, the_settings)
    install_limits(app, the_settings.server.limits)  # outermost: bodies checked first
    install_request_log(app, the_settings)  # around everything: times and ids all answers
    install_metrics(app)  # around everything: times refused requests and cache hits too
    install_tracing(app, the_settings)  # outermost; only with telemetry.otlp_endpoint
    app.include_router(api_router)
    app.include_router(docs_routes.router)
    # Hot read-only endpoints also answer through plain Starlette routes matched first;
    # the FastAPI routes above stay for validation-free documentation in /docs.
    app.router.routes[0:0] = metrics_routes.FAST_ROUTES
    if STATIC_DIR.exists():
        for name in vendor.SOURCES:
            folder = vendor.vendor_dir(name)
            if folder.exists():
                app.mount(f"/static/vendor/{name}", StaticFiles(directory=folder), name=name)
            else:
                logger.warning("%s not installed (run `npm ci`): served without it", name)
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _live_head(
    settings: Settings, store: TimeSeriesStore, catalog: MetricCatalog
) -> LiveHead | None:
    """The server's copy of the newest raw slots (``api.live_window_seconds``), for a
    SQLite store that says when its answers are plain raw slots; else ``None``."""
    window = settings.api.live_window_seconds
    if window <= 0 or settings.database.backend != "sqlite" or not isinstance(store, RawGridQuery):
        return None
    if live_host(settings) != settings.agent.host_name:
        return None  # the ticks are another host's (redis.live_host), the file this one's
    interval = settings.collection.interval_seconds
    labels = {name: entry.labels for name, entry in catalog.metrics.items()}
    return LiveHead(interval, max(1, window // interval), labels)


def _build_store(settings: Settings, clock: Clock) -> TimeSeriesStore:
    from sysmon.storage.factory import open_store

    return open_store(settings, clock, readonly=True)  # the agent creates and writes it


def _app_from_environment() -> FastAPI:
    """``uvicorn app.main:app``: the same logging and the same refusal of a bad
    configuration (``config error: <key>: <message>``, exit 2) as the ``sysmon`` command."""
    from sysmon.logs import configure_logging, configure_logging_for

    configure_logging()
    try:
        settings = load_settings(config_path_from_env())
        configure_logging_for(settings)
        return create_app(settings)
    except ConfigError as exc:
        logger.error("config error: %s", exc)
        sys.exit(2)


_built: dict[str, FastAPI] = {}


def __getattr__(name: str) -> FastAPI:
    """``sysmon.main:app`` for uvicorn, built on first access (not at import)."""
    if name != "app":
        raise AttributeError(name)
    if "app" not in _built:
        _built["app"] = _app_from_environment()
    return _built["app"]
