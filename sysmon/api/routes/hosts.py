"""``GET /api/v1/hosts``: every host the store holds, when each last reported, up or down.

Several agents (``agent.host`` = ``web1``, ``db1``...) can write to one store
(VictoriaMetrics, InfluxDB: directly or through ``forward:``); a server reading that store
serves all of them. This route lists them from the store itself (``TimeSeriesStore.hosts``,
the newest sample of each), so a host shows up with its first forwarded tick and needs no
registration. A SQLite file holds one host.

``up`` is false once a host's newest sample is older than ``down_after_seconds``:
``DOWN_AFTER_INTERVALS`` collection intervals (this server's ``collection.interval_seconds``)
plus ``DOWN_GRACE_SECONDS``. The grace covers what delays a healthy host's newest point
on its way to a query: the forwarder's hand-off, the HTTP write, and VictoriaMetrics'
in-memory buffer (rows become searchable within a second or two). Three intervals: one
missed tick is a hiccup (a collector over its deadline), three in a row are not.

A down host's range answers (``/api/v1/metrics/{metric}?host=``) have ``null`` after its
last point: every backend aggregates each bucket from the samples inside it only.

``host_names`` is what the range route validates ``host=`` against: the store's host
names, remembered for ``NAMES_TTL_SECONDS`` and re-read at once when a name is not among
them (a host that just appeared is not refused).

Live data (``/api/v1/metrics/current``, ``/api/v1/stream``) is not per host: it is the
tick of the agent this server follows. History is per host.

``default_host`` names the host a range request without ``host=`` reads (this server's
``agent.host``): the dashboard's host picker marks it "this server" and sends no
``host=`` for it. ``/api/v1/system``'s ``hostname`` is the machine's name, which differs
once ``agent.host`` is set.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sysmon.api.deps import ClockDep, SettingsDep, StoreDep, StoreReadsDep
from sysmon.api.errors import unprocessable
from sysmon.storage.base import HostSeen

router = APIRouter(prefix="/api/v1", tags=["hosts"])

DOWN_AFTER_INTERVALS = 3
DOWN_GRACE_SECONDS = 5.0
NAMES_TTL_SECONDS = 10.0


class HostEntry(BaseModel):
    name: str = Field(description="The host's agent.host (default its hostname)")
    last_seen: float | None = Field(
        description="Epoch seconds of its newest stored sample; null when unknown"
    )
    up: bool = Field(description="The newest sample is at most down_after_seconds old")
    age_seconds: float | None = Field(description="Seconds since last_seen (server clock)")


class HostsResponse(BaseModel):
    hosts: list[HostEntry] = Field(description="Every host in the store, by name")
    down_after_seconds: float = Field(
        description="A host whose newest sample is older than this is down"
    )
    default_host: str = Field(
        description="The host a range request without host= reads (this server's agent.host)"
    )


def down_after_seconds(interval_seconds: float) -> float:
    return DOWN_AFTER_INTERVALS * interval_seconds + DOWN_GRACE_SECONDS


def host_entries(seen: Sequence[HostSeen], now: float, down_after: float) -> list[HostEntry]:
    out = []
    for host in sorted(seen, key=lambda h: h.name):
        age = None if host.last_seen is None else round(max(0.0, now - host.last_seen), 3)
        out.append(
            HostEntry(
                name=host.name,
                last_seen=host.last_seen,
                up=age is not None and age <= down_after,
                age_seconds=age,
            )
        )
    return out


@router.get(
    "/hosts",
    response_model=HostsResponse,
    summary="Every host in the store: last seen, and whether it still reports",
)
async def hosts(
    store: StoreDep, reads: StoreReadsDep, settings: SettingsDep, clock: ClockDep
) -> HostsResponse:
    seen = await reads.run(store.hosts)
    limit = down_after_seconds(settings.collection.interval_seconds)
    return HostsResponse(
        hosts=host_entries(seen, clock.time(), limit),
        down_after_seconds=limit,
        default_host=settings.agent.host_name,
    )


async def host_names(request: Request, store: StoreDep, reads: StoreReadsDep) -> list[str]:
    """The store's host names, at most ``NAMES_TTL_SECONDS`` old (see the module doc)."""
    cached: tuple[float, list[str]] | None = getattr(request.app.state, "host_names", None)
    if cached is not None and time.monotonic() - cached[0] < NAMES_TTL_SECONDS:
        return cached[1]
    names = sorted(h.name for h in await reads.run(store.hosts))
    request.app.state.host_names = (time.monotonic(), names)
    return names


async def check_host(
    request: Request, store: StoreDep, reads: StoreReadsDep, host: str, where: str = "query"
) -> None:
    """422 naming ``host`` (in ``where``: query or path; listing the known ones) unless
    the store holds it."""
    names = await host_names(request, store, reads)
    if host in names:
        return
    request.app.state.host_names = None  # maybe new since: ask the store itself
    names = await host_names(request, store, reads)
    if host not in names:
        raise unprocessable(where, "host", f"unknown host {host!r}; known: {names}")


@router.get(
    "/hosts/{host}/series",
    summary="Which series one host has: per metric, its label values (devices, mounts, ...)",
    responses={422: {"description": "Unknown host"}},
)
async def host_series(
    request: Request, host: str, store: StoreDep, reads: StoreReadsDep
) -> dict[str, object]:
    """Shaped like ``/metrics/current``'s ``metrics`` without values (``{"disk": {"total":
    {}, "device": {"sda": {}}, "mount": {"/": {}}}}``), so the dashboard plans another
    host's per-device sections from that host's own devices, not this server's."""
    await check_host(request, store, reads, host, "path")
    catalog = request.app.state.catalog
    metrics: dict[str, dict[str, dict[str, object]]] = {}
    for name in catalog.names():
        if name == "processes":
            continue
        labelled = await reads.run(store.series, name, host)
        if not labelled:
            continue
        groups: dict[str, dict[str, object]] = {}
        for labels in labelled:
            if not labels:
                groups.setdefault("total", {})
            for key, value in labels:
                groups.setdefault(key, {})[value] = {}
        metrics[name] = groups
    return {"host": host, "metrics": metrics}
