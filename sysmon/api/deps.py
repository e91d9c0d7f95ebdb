"""FastAPI dependencies: everything a route needs comes from ``request.app.state``.

Tests pass real parts into ``create_app`` or override these with
``app.dependency_overrides``; routes never import psutil or module-level singletons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request

from sysmon.api.feed import LatestView, TickFeed
from sysmon.channel import TickSubscriber
from sysmon.clock import Clock
from sysmon.collectors.registry import CollectorRegistry
from sysmon.config import Settings
from sysmon.live import LiveHub
from sysmon.storage.base import TimeSeriesStore


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> TimeSeriesStore:
    store: TimeSeriesStore = request.app.state.store
    return store


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_feed(request: Request) -> TickFeed:
    feed: TickFeed = request.app.state.feed
    return feed


async def get_subscriber(request: Request) -> TickSubscriber:
    subscriber: TickSubscriber = request.app.state.subscriber
    return subscriber


async def get_hub(request: Request) -> LiveHub[LatestView]:
    hub: LiveHub[LatestView] = request.app.state.hub
    return hub


async def get_registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.registry
    return registry


async def get_thresholds(request: Request) -> dict[str, dict[str, float]]:
    """From the alert rules in force (the agent's, which a reload may change)."""
    found: dict[str, dict[str, float]] = request.app.state.alerts.thresholds()
    return found


T = TypeVar("T")


class StoreReads:
    """Runs blocking store reads in worker threads, at most ``limit`` at a time.

    Under 100 concurrent range queries an unbounded pool of threads fighting for the GIL
    (and for SQLite's reader connections) is slower than a few threads taking turns: the
    limit keeps throughput up and the event loop responsive for ``current`` and SSE.
    """

    def __init__(self, limit: int) -> None:
        self._limiter = anyio.CapacityLimiter(limit)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)


async def get_store_reads(request: Request) -> StoreReads:
    reads: StoreReads = request.app.state.store_reads
    return reads


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[TimeSeriesStore, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]
FeedDep = Annotated[TickFeed, Depends(get_feed)]
SubscriberDep = Annotated[TickSubscriber, Depends(get_subscriber)]
HubDep = Annotated[LiveHub[LatestView], Depends(get_hub)]
RegistryDep = Annotated[CollectorRegistry, Depends(get_registry)]
ThresholdsDep = Annotated[dict[str, dict[str, float]], Depends(get_thresholds)]
StoreReadsDep = Annotated[StoreReads, Depends(get_store_reads)]
