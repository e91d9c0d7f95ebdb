"""Build the configured ``TimeSeriesStore``: ``database.backend`` name -> constructor.

The agent and the server call ``open_store`` instead of naming a class, so a backend is
one entry in ``BACKENDS`` and nothing else branches on its name. Backends other than
SQLite are imported lazily (``importlib``): their dependencies (httpx for
VictoriaMetrics) load only when configured, and an installation without the module
fails with a ``ConfigError`` for ``database.backend`` instead of an ImportError.

The store comes back *built, not opened*: the caller's lifespan calls ``open()`` (and
``close()``), as the ``TimeSeriesStore`` lifecycle says.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sysmon.clock import Clock
from sysmon.errors import ConfigError
from sysmon.storage.base import TimeSeriesStore

if TYPE_CHECKING:
    from sysmon.config import Settings

Builder = Callable[["Settings", Clock, bool], TimeSeriesStore]


def _sqlite(settings: Settings, clock: Clock, readonly: bool) -> TimeSeriesStore:
    from sysmon.storage.sqlite import SQLiteStore

    return SQLiteStore(
        settings.database.path,
        retention=settings.retention,
        interval_seconds=settings.collection.interval_seconds,
        clock=clock,
        readonly=readonly,
        host=settings.agent.host_name,
    )


def _victoriametrics(settings: Settings, clock: Clock, readonly: bool) -> TimeSeriesStore:
    """The server owns the data; ``readonly`` changes nothing (the server process only
    never calls ``write``)."""
    cls = _load("victoriametrics", "sysmon.storage.victoria", "VictoriaStore")
    url = settings.database.url
    if not url:
        raise ConfigError("database.url", "required with database.backend victoriametrics")
    store: TimeSeriesStore = cls(
        url,
        clock=clock,
        host=settings.agent.host_name,
        interval_seconds=settings.collection.interval_seconds,
    )
    return store


def _influxdb(settings: Settings, clock: Clock, readonly: bool) -> TimeSeriesStore:
    """Line protocol to InfluxDB (``sysmon.storage.influx``); like VictoriaMetrics the
    server owns the data and ``readonly`` changes nothing."""
    build = _load("influxdb", "sysmon.storage.influx", "from_settings")
    store: TimeSeriesStore = build(settings, clock)
    return store


BACKENDS: dict[str, Builder] = {
    "sqlite": _sqlite,
    "victoriametrics": _victoriametrics,
    "influxdb": _influxdb,
}
"""``database.backend`` -> builder ``(settings, clock, readonly) -> store``."""


def _load(backend: str, module: str, name: str) -> Any:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = module if exc.name == module else f"{exc.name} (needed by {module})"
        raise ConfigError(
            "database.backend",
            f"backend {backend!r} is not available in this installation: "
            f"{missing} is not installed",
        ) from exc
    found = getattr(mod, name, None)
    if found is None:
        raise ConfigError("database.backend", f"backend {backend!r}: {module} has no {name}")
    return found


def open_store(settings: Settings, clock: Clock, *, readonly: bool) -> TimeSeriesStore:
    """The store ``settings.database`` asks for, not yet opened.

    ``readonly``: this process only reads (the server); for SQLite the file is then
    neither created nor migrated (the agent does that). ``ConfigError`` naming
    ``database.backend`` for an unknown backend or one whose module is missing.
    """
    backend = settings.database.backend
    build = BACKENDS.get(backend)
    if build is None:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError("database.backend", f"unknown backend {backend!r} (known: {known})")
    return build(settings, clock, readonly)
