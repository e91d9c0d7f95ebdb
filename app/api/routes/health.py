"""``/api/v1/health`` and ``/api/v1/system``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from app import __version__
from app.api.deps import (
    ClockDep,
    HostDep,
    HubDep,
    LatestDep,
    SettingsDep,
    StoreDep,
    StoreReadsDep,
    WriterDep,
)
from app.api.schemas import HealthResponse, SystemResponse

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Service health (always 200; status says ok or degraded)",
)
async def health(
    settings: SettingsDep,
    store: StoreDep,
    reads: StoreReadsDep,
    writer: WriterDep,
    latest: LatestDep,
    clock: ClockDep,
    hub: HubDep,
    host: HostDep,
) -> Response:
    reachable = await reads.run(store.ping)
    stats = await reads.run(store.stats) if reachable else None
    view = latest.get()
    interval = settings.collection.interval_seconds
    now = clock.monotonic()
    age = None if view is None else max(0.0, now - view.monotonic)
    stale_after = 3 * interval + settings.collection.collector_timeout_seconds
    started = float(host["started_monotonic"])
    fresh = age is not None and age <= stale_after
    warming_up = view is None and now - started <= stale_after
    ok = reachable and writer.pending == 0 and (fresh or warming_up)
    body = {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "uptime_seconds": round(now - started, 3),
        "database": {
            "reachable": reachable,
            "backend": settings.database.backend,
            "size_bytes": stats.size_bytes if stats else None,
            "pending_writes": writer.pending,
            "last_error": writer.last_error,
        },
        "last_collection_age_seconds": None if age is None else round(age, 3),
        "collection_interval_seconds": interval,
        "collector_errors": dict(view.snapshot.errors) if view else {},
        "live_clients": hub.subscriber_count,
    }
    return JSONResponse(content=body)


@router.get("/system", response_model=SystemResponse, summary="Host facts and alert thresholds")
async def system(host: HostDep, clock: ClockDep, settings: SettingsDep) -> Response:
    boot = host.get("boot_time")
    return JSONResponse(
        {
            "hostname": host["hostname"],
            "os": host["os"],
            "boot_time": boot,
            "uptime_seconds": None if boot is None else round(clock.time() - boot, 1),
            "cpu_count": host.get("cpu_count"),
            "cpu_count_physical": host.get("cpu_count_physical"),
            "collection_interval_seconds": settings.collection.interval_seconds,
            "collectors": host["collectors"],
            "thresholds": host["thresholds"],
        }
    )
