"""``/api/v1/metrics``: the live snapshot, time series from the store, top processes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route

from sysmon.api.cache import ResponseCache, cache_key
from sysmon.api.deps import (
    ClockDep,
    FeedDep,
    RegistryDep,
    SettingsDep,
    StoreDep,
    StoreReadsDep,
)
from sysmon.api.errors import query_instant, unprocessable
from sysmon.api.feed import TickFeed, sees_command_lines
from sysmon.api.schemas import CurrentResponse, ProcessesResponse, SeriesResponse
from sysmon.models import Labels
from sysmon.storage.base import RangeQuery
from sysmon.timeparse import parse_instant

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

NOT_YET = {"detail": "no collection yet"}
SELECTORS = ("device", "mount", "interface", "core")


@router.get(
    "/current",
    response_model=CurrentResponse,
    responses={503: {"description": "No collection has completed yet"}},
    summary="Latest snapshot of every metric (from memory)",
)
async def current(request: Request) -> Response:
    """Also mounted as a plain Starlette route ahead of FastAPI's (see ``FAST_ROUTES``):
    it only returns bytes serialised once per tick, so the framework's per-request
    dependency machinery would be most of its cost."""
    feed: TickFeed = request.app.state.feed
    view = feed.get()
    if view is None:
        return JSONResponse(status_code=503, content=NOT_YET)
    body, _ = view.for_role(sees_command_lines(request.scope, feed.roles_apply))
    return Response(content=body, media_type="application/json")


@router.get(
    "/processes",
    response_model=ProcessesResponse,
    summary="Top processes by CPU or memory, live or at a past instant",
)
async def processes(
    request: Request,
    feed: FeedDep,
    store: StoreDep,
    reads: StoreReadsDep,
    limit: Annotated[int, Query(ge=1, le=100, description="How many processes (1-100)")] = 10,
    sort: Annotated[Literal["cpu", "memory"], Query(description="Sort key")] = "cpu",
    at: Annotated[
        str | None, Query(description="Epoch seconds or ISO 8601: the table stored at that time")
    ] = None,
) -> Response:
    key = "cpu_percent" if sort == "cpu" else "memory_percent"
    if at is not None:
        try:
            instant = parse_instant(at)
        except ValueError as exc:
            raise unprocessable("query", "at", str(exc)) from None
        found = await reads.run(store.query_processes, instant)
        if found is None:
            return JSONResponse(
                status_code=404, content={"detail": "no process table stored near that time"}
            )
        timestamp, stored = found
        rows = [dict(r) for r in stored]
        if not sees_command_lines(request.scope, feed.roles_apply):
            rows = [{k: v for k, v in r.items() if k != "cmdline"} for r in rows]
    else:
        view = feed.get()
        if view is None:
            return JSONResponse(status_code=503, content=NOT_YET)
        timestamp = view.timestamp
        _, rows = view.for_role(sees_command_lines(request.scope, feed.roles_apply))
    ordered = sorted(rows, key=lambda r: _number(r.get(key)), reverse=True)[:limit]
    return JSONResponse(
        {"timestamp": timestamp, "sort": sort, "limit": limit, "processes": ordered}
    )


FAST_ROUTES = [Route("/api/v1/metrics/current", current, methods=["GET"])]


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else -1.0


@router.get(
    "/{metric}",
    response_model=SeriesResponse,
    responses={404: {"description": "Unknown device, mount, interface or core"}},
    summary="Time series of one metric (totals, or one device/mount/interface/core)",
)
async def metric_range(
    request: Request,
    metric: str,
    store: StoreDep,
    reads: StoreReadsDep,
    settings: SettingsDep,
    registry: RegistryDep,
    clock: ClockDep,
    start: Annotated[
        str | None, Query(description="Epoch seconds or ISO 8601; default end - 1 h")
    ] = None,
    end: Annotated[str | None, Query(description="Epoch seconds or ISO 8601; default now")] = None,
    resolution: Annotated[
        Literal["auto", "raw", "1m", "5m", "1h"], Query(description="Tier; auto picks one")
    ] = "auto",
    agg: Annotated[Literal["mean", "min", "max"], Query(description="Bucket aggregate")] = "mean",
    max_points: Annotated[
        int | None, Query(ge=10, le=10_000, description="Upper bound on returned points")
    ] = None,
    device: Annotated[str | None, Query(description="Disk device, e.g. sda")] = None,
    mount: Annotated[str | None, Query(description="Mount point, e.g. /")] = None,
    interface: Annotated[str | None, Query(description="Network interface, e.g. eth0")] = None,
    core: Annotated[str | None, Query(description="CPU core number")] = None,
) -> Response:
    if metric not in registry or not registry.get(metric).fields or metric == "processes":
        known = [n for n in registry.names() if n != "processes" and registry.get(n).fields]
        raise unprocessable("path", "metric", f"unknown metric {metric!r}; known: {known}")
    now = clock.time()
    t_end = query_instant("end", end, now)
    t_start = query_instant("start", start, t_end - settings.api.default_range_seconds)
    if t_start > t_end:
        raise unprocessable("query", "start", "start must not be after end")
    given = {k: v for k, v in zip(SELECTORS, (device, mount, interface, core), strict=True) if v}
    if len(given) > 1:
        raise unprocessable("query", next(iter(given)), "give at most one series selector")
    labels: Labels = tuple(sorted(given.items()))
    cache: ResponseCache = request.app.state.range_cache
    key = cache_key(request.url.path, request.scope["query_string"])
    generation = cache.generation()
    if labels:
        await _check_series(store, reads, metric, labels[0])
    result = await reads.run(
        store.query,
        RangeQuery(
            metric=metric,
            start=t_start,
            end=t_end,
            labels=labels,
            resolution=resolution,
            agg=agg,
            max_points=max_points or settings.api.max_points,
        ),
    )
    units = {info.field: info.unit for info in registry.get(metric).fields}
    response = JSONResponse(
        {
            "metric": metric,
            "labels": dict(labels),
            "start": t_start,
            "end": t_end,
            "resolution": result.resolution,
            "agg": result.agg,
            "step_seconds": result.step_seconds,
            "timestamps": result.timestamps,
            "fields": result.fields,
            "units": {f: units.get(f, "") for f in result.fields},
        }
    )
    if key is not None:
        cache.remember(key, generation, bytes(response.body))
    return response


async def _check_series(
    store: StoreDep, reads: StoreReadsDep, metric: str, selector: tuple[str, str]
) -> None:
    key, value = selector
    stored = await reads.run(store.series, metric)
    names = sorted({v for labels in stored for k, v in labels if k == key})
    if value in names:
        return
    if not names:
        raise unprocessable("query", key, f"{metric} has no {key} series")
    raise unprocessable("query", key, f"unknown {key} {value!r}; known: {names}")
