"""``/api/v1/health`` and ``/api/v1/system``.

Health always answers 200; ``status`` is ``degraded`` while anything is wrong, and
``problems`` says what, in words: the agent is unreachable or silent, a collector missed
samples in the last minute (per collector: missed in the last minute and hour, and the
last reason), the database is unreachable, damaged or replaced, or writes are pending,
a forwarding remote (``forward:``) has failed for more than its
``degraded_after_ticks`` or dropped unsent ticks in the last hour, or the agent cannot
publish its ticks to Redis (``redis.url``; ``agent.live_redis`` has the details).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from sysmon import __version__
from sysmon.api.deps import (
    ClockDep,
    FeedDep,
    HubDep,
    SettingsDep,
    StoreDep,
    StoreReadsDep,
    SubscriberDep,
    ThresholdsDep,
)
from sysmon.api.head import LiveHead
from sysmon.api.schemas import HealthResponse, SystemResponse

router = APIRouter(prefix="/api/v1", tags=["health"])


def _problems(
    *,
    connected: bool,
    channel_error: str | None,
    age: float | None,
    stale_after: float,
    warming_up: bool,
    reachable: bool,
    status: dict[str, Any],
) -> list[str]:
    problems: list[str] = []
    if not connected and not warming_up:
        problems.append(f"agent not reachable: {channel_error or 'no connection'}")
    elif age is not None and age > stale_after:
        problems.append(f"no tick from the agent for {age:.0f}s")
    elif age is None and not warming_up:
        problems.append("no tick received from the agent yet")
    if not reachable:
        problems.append("database not reachable from the server")
    db = status.get("database") or {}
    integrity = db.get("integrity") or {}
    if integrity.get("problem"):
        problems.append(f"database integrity: {integrity['problem']}")
    if db.get("pending_writes"):
        problems.append(
            f"{db['pending_writes']} ticks waiting to be written: {db.get('last_error')}"
        )
    problems.extend(forward_problems(status.get("forward") or {}))
    redis_problem = live_redis_problem((status.get("agent") or {}).get("live_redis"))
    if redis_problem:
        problems.append(redis_problem)
    for name, report in sorted((status.get("collectors") or {}).items()):
        if report.get("missed_last_minute"):
            problems.append(
                f"collector {name} missed {report['missed_last_minute']} samples in the last "
                f"minute: {report.get('last_reason')}"
            )
    return problems


def live_redis_problem(live_redis: dict[str, Any] | None) -> str | None:
    """The agent's Redis publishing (``sysmon.fanout.RedisTickPublisher.status``) while
    it fails: servers that read ticks from Redis, on this machine or others, get none
    (this server may still get them over the agent's socket); or while Redis takes the
    ticks but refuses to store the latest one (out of memory). None while it works, has
    not tried yet, or is off (no ``redis.url``)."""
    if not live_redis:
        return None
    if live_redis.get("connected"):
        if live_redis.get("latest_error"):
            return (
                f"agent publishes live ticks to redis {live_redis.get('url')} but cannot "
                f"store the latest one (a server starting now waits for the next tick): "
                f"{live_redis['latest_error']}"
            )
        return None
    if not live_redis.get("last_error"):
        return None
    return (
        f"agent cannot publish live ticks to redis {live_redis.get('url')}: "
        f"{live_redis['last_error']}"
    )


def forward_problems(forward: dict[str, Any]) -> list[str]:
    """One line per remote that is failing for too long or dropped ticks lately (the
    agent's ``sysmon.agent.forward.Forwarder.status``)."""
    out: list[str] = []
    for name, remote in sorted(forward.items()):
        failing = remote.get("failing_ticks") or 0
        if failing > (remote.get("degraded_after_ticks") or 0):
            age = remote.get("oldest_queued_age_seconds")
            out.append(
                f"forward {name} failing for {failing} ticks, {remote.get('queued_ticks')} "
                f"queued (oldest {age if age is None else round(age)}s): "
                f"{remote.get('last_error')}"
            )
        if remote.get("dropped_recently"):
            recent = remote.get("dropped_last_hour") or 0
            count = f"{recent} " if recent else ""
            out.append(
                f"forward {name} dropped {count}unsent ticks in the last hour over its "
                f"buffer bound ({remote.get('dropped_ticks')} in all)"
            )
    return out


@router.get(
    "/health",
    response_model=HealthResponse,
    summary="Service health (always 200; status says ok or degraded, problems says why)",
)
async def health(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    reads: StoreReadsDep,
    feed: FeedDep,
    subscriber: SubscriberDep,
    clock: ClockDep,
    hub: HubDep,
) -> Response:
    reachable = await reads.run(store.ping)
    view = feed.get()
    status = feed.status
    interval = settings.collection.interval_seconds
    now = clock.monotonic()
    age = None if view is None else max(0.0, now - view.received)
    stale_after = 3 * interval + settings.collection.deadline_seconds
    uptime = now - feed.started
    warming_up = view is None and uptime <= stale_after + 10
    problems = _problems(
        connected=subscriber.connected,
        channel_error=subscriber.last_error,
        age=age,
        stale_after=stale_after,
        warming_up=warming_up,
        reachable=reachable,
        status=status,
    )
    db = status.get("database") or {}
    agent = status.get("agent") or {}
    body = {
        "status": "degraded" if problems else "ok",
        "problems": problems,
        "version": __version__,
        "uptime_seconds": round(uptime, 3),
        "server": {"pid": os.getpid()},
        "agent": {
            "connected": subscriber.connected,
            "pid": agent.get("pid"),
            "version": agent.get("version"),
            "error": subscriber.last_error,
            "tick_lateness_ms": agent.get("tick_lateness_ms"),
            "overruns": agent.get("overruns"),
            "live_redis": agent.get("live_redis"),
        },
        "database": {
            "reachable": reachable,
            "backend": settings.database.backend,
            "size_bytes": db.get("size_bytes"),
            "pending_writes": db.get("pending_writes", 0),
            "dropped_ticks": db.get("dropped_ticks", 0),
            "last_error": db.get("last_error"),
            "integrity": db.get("integrity"),
        },
        "last_collection_age_seconds": None if age is None else round(age, 3),
        "collection_interval_seconds": interval,
        "collectors": status.get("collectors", {}),
        "collector_errors": status.get("errors", {}),
        "forward": status.get("forward", {}),
        "live_clients": hub.subscriber_count,
        "live_head": _head_status(request),
    }
    return JSONResponse(content=body)


def _head_status(request: Request) -> dict[str, Any] | None:
    head: LiveHead | None = getattr(request.app.state, "live_head", None)
    return None if head is None else head.status()


@router.get("/system", response_model=SystemResponse, summary="Host facts and alert thresholds")
async def system(
    feed: FeedDep, clock: ClockDep, settings: SettingsDep, levels: ThresholdsDep
) -> Response:
    host: dict[str, Any] = feed.status.get("host") or {}
    boot = host.get("boot_time")
    return JSONResponse(
        {
            "hostname": host.get("hostname", ""),
            "os": host.get("os", ""),
            "boot_time": boot,
            "uptime_seconds": None if boot is None else round(clock.time() - boot, 1),
            "cpu_count": host.get("cpu_count"),
            "cpu_count_physical": host.get("cpu_count_physical"),
            "collection_interval_seconds": settings.collection.interval_seconds,
            "collectors": host.get("collectors", []),
            "thresholds": levels,
        }
    )
