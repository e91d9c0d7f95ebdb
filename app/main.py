"""Application factory and lifespan.

``create_app(settings)`` builds nothing stateful by itself: the lifespan creates the store,
collectors, live hub and scheduler, and closes them on shutdown, so each app (and each
test) owns its own parts. ``app = create_app()`` is the uvicorn entry point
(``uvicorn app.main:app``); it reads ``config/config.yaml`` (or ``$SYSMON_CONFIG``).
"""

from __future__ import annotations

import logging
import platform
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.alerts.service import AlertService
from app.api.cache import RangeCacheMiddleware, ResponseCache
from app.api.deps import StoreReads
from app.api.errors import install_handlers
from app.api.main import api_router
from app.api.routes import metrics as metrics_routes
from app.clock import Clock, SystemClock
from app.collectors.registry import CollectorRegistry, discover
from app.config import Settings, config_path_from_env, load_settings
from app.errors import ConfigError
from app.live import LiveHub
from app.models import Snapshot
from app.scheduler import (
    BufferedWriter,
    CollectionLoop,
    Consumer,
    Latest,
    LatestView,
    start_scheduler,
)
from app.serialize import snapshot_document, to_json_bytes
from app.storage.base import TimeSeriesStore

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = Path(__file__).resolve().parent / "web" / "static"
VENDOR_DIRS = {"uplot": ROOT / "node_modules" / "uplot" / "dist"}


def validate_settings(settings: Settings, registry: CollectorRegistry | None = None) -> None:
    """Everything ``sysmon config check`` checks beyond the pydantic models: collector
    options, and that every enabled alert channel finds its secret in the environment."""
    from app.alerts.config import resolve_environ
    from app.alerts.service import build_notifier
    from app.collectors.source import PsutilSource

    source = PsutilSource()
    try:
        (registry or discover()).build(settings.collectors, source)
    finally:
        source.close()
    environ = resolve_environ(None)
    for name, channel in settings.alerts.channels.items():
        if channel.enabled:
            build_notifier(name, channel, environ)


def _thresholds(settings: Settings) -> dict[str, dict[str, float]]:
    """Warning/critical levels per ``metric.field`` from upper-bound alert rules (UI colours)."""
    out: dict[str, dict[str, float]] = {}
    for rule in settings.alerts.rules:
        if rule.operator not in (">", ">="):
            continue
        level = out.setdefault(rule.metric, {})
        level[rule.severity] = min(rule.threshold, level.get(rule.severity, float("inf")))
    return out


def _host_info(
    settings: Settings, source: Any, collectors: list[str], clock: Clock
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "collectors": collectors,
        "thresholds": _thresholds(settings),
        "started_monotonic": clock.monotonic(),
    }
    getters: dict[str, Callable[[], Any]] = {
        "boot_time": source.boot_time,
        "cpu_count": lambda: source.cpu_count(logical=True),
        "cpu_count_physical": lambda: source.cpu_count(logical=False),
    }
    for key, getter in getters.items():
        try:
            info[key] = getter()
        except Exception:  # a missing sensor is not a reason to refuse to start
            info[key] = None
    return info


def create_app(
    settings: Settings | None = None,
    *,
    source: Any = None,
    clock: Clock | None = None,
    store: TimeSeriesStore | None = None,
    registry: CollectorRegistry | None = None,
    run_scheduler: bool = True,
) -> FastAPI:
    """Build the FastAPI app. Parts not given are built from ``settings`` in the lifespan.

    ``run_scheduler=False`` leaves collection to the caller (tests call
    ``app.state.loop.tick()`` to collect deterministically).
    """
    the_settings = settings if settings is not None else load_settings(config_path_from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.collectors.source import PsutilSource

        the_clock = clock or SystemClock()
        the_registry = registry or discover()
        the_source = source if source is not None else PsutilSource()
        collectors = the_registry.build(the_settings.collectors, the_source)
        the_store = store or _build_store(the_settings, the_clock)
        await anyio.to_thread.run_sync(the_store.open)
        hub = LiveHub()
        import asyncio

        hub.bind(asyncio.get_running_loop())
        latest = Latest()
        writer = BufferedWriter(the_store, the_settings.database.write_buffer_max_ticks, the_clock)
        rows = the_settings.api.current_process_rows

        def on_snapshot(snapshot: Snapshot, mono: float) -> None:
            body = to_json_bytes(snapshot_document(snapshot, rows))
            latest.set(LatestView(snapshot=snapshot, body=body, monotonic=mono))
            hub.publish(body)

        consumers: list[tuple[str, Consumer]] = [("store", writer)]
        alerts = _build_alerts(the_settings, the_clock)
        await anyio.to_thread.run_sync(alerts.start)
        consumers.append(("alerts", alerts))
        loop = CollectionLoop(
            collectors,
            the_clock,
            consumers,
            on_snapshot,
            the_settings.collection.collector_timeout_seconds,
        )
        app.state.settings = the_settings
        app.state.clock = the_clock
        app.state.registry = the_registry
        app.state.store = the_store
        app.state.store_reads = StoreReads(the_settings.api.store_threads)
        app.state.hub = hub
        app.state.latest = latest
        app.state.writer = writer
        app.state.range_cache = ResponseCache(lambda: writer.generation)
        app.state.loop = loop
        app.state.alerts = alerts
        app.state.host = _host_info(the_settings, the_source, sorted(collectors), the_clock)
        scheduler = None
        if run_scheduler:
            scheduler = start_scheduler(
                loop.tick_unless_busy, the_settings.collection.interval_seconds, the_clock
            )
        logger.info(
            "sysmon %s collecting %s every %ss into %s",
            __version__,
            ",".join(sorted(collectors)),
            the_settings.collection.interval_seconds,
            the_settings.database.path,
        )
        try:
            yield
        finally:
            if scheduler is not None:
                await anyio.to_thread.run_sync(lambda: scheduler.shutdown(wait=True))
            loop.close()
            close_source = getattr(the_source, "close", None)
            if callable(close_source):
                close_source()
            await anyio.to_thread.run_sync(writer.flush)
            await anyio.to_thread.run_sync(alerts.stop)
            await anyio.to_thread.run_sync(the_store.close)

    app = FastAPI(
        title="sysmon",
        version=__version__,
        description="Single-server system resource monitor: metrics, history, alerts.",
        lifespan=lifespan,
    )
    install_handlers(app)
    app.add_middleware(RangeCacheMiddleware, cache=lambda: getattr(app.state, "range_cache", None))
    app.include_router(api_router)
    # Hot read-only endpoints also answer through plain Starlette routes matched first;
    # the FastAPI routes above stay for validation-free documentation in /docs.
    app.router.routes[0:0] = metrics_routes.FAST_ROUTES
    if STATIC_DIR.exists():
        for name, folder in VENDOR_DIRS.items():
            if folder.exists():
                app.mount(f"/static/vendor/{name}", StaticFiles(directory=folder), name=name)
            else:
                logger.warning("%s not installed (run `npm ci`): dashboard charts disabled", name)
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _build_store(settings: Settings, clock: Clock) -> TimeSeriesStore:
    from app.storage.sqlite import SQLiteStore

    return SQLiteStore(
        settings.database.path,
        retention=settings.retention,
        interval_seconds=settings.collection.interval_seconds,
        clock=clock,
    )


def _build_alerts(settings: Settings, clock: Clock) -> AlertService:
    server = settings.server
    dashboard = server.dashboard_url or f"http://{server.host}:{server.port}/"
    return AlertService.from_settings(
        settings.alerts,
        settings.database.path,
        clock,
        dashboard_url=dashboard,
        hostname=socket.gethostname(),
    )


def _app_from_environment() -> FastAPI:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return create_app()
    except ConfigError as exc:
        logger.error("invalid configuration: %s", exc)
        sys.exit(2)


app = _app_from_environment()
