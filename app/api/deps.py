"""FastAPI dependencies: everything a route needs comes from ``request.app.state``.

Tests pass real parts into ``create_app`` or override these with
``app.dependency_overrides``; routes never import psutil or module-level singletons.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from app.clock import Clock
from app.collectors.registry import CollectorRegistry
from app.config import Settings
from app.live import LiveHub
from app.scheduler import BufferedWriter, Latest
from app.storage.base import TimeSeriesStore


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> TimeSeriesStore:
    store: TimeSeriesStore = request.app.state.store
    return store


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_latest(request: Request) -> Latest:
    latest: Latest = request.app.state.latest
    return latest


async def get_hub(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.hub
    return hub


async def get_registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.registry
    return registry


async def get_writer(request: Request) -> BufferedWriter:
    writer: BufferedWriter = request.app.state.writer
    return writer


async def get_host(request: Request) -> dict[str, Any]:
    host: dict[str, Any] = request.app.state.host
    return host


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]
LatestDep = Annotated[Latest, Depends(get_latest)]
HubDep = Annotated[LiveHub, Depends(get_hub)]
RegistryDep = Annotated[CollectorRegistry, Depends(get_registry)]
WriterDep = Annotated[BufferedWriter, Depends(get_writer)]
HostDep = Annotated[dict[str, Any], Depends(get_host)]
