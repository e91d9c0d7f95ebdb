"""``/api/v1/metrics/processes``: the process table, live or at a past instant.

A module of its own (not part of ``metrics.py``) because the process table is not a
time series of the catalog: its routes answer rows, and its router is included before
the metrics router so ``/processes`` is matched before ``/{metric}``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from sysmon.api.deps import FeedDep, StoreDep, StoreReadsDep
from sysmon.api.errors import unprocessable
from sysmon.api.feed import sees_command_lines
from sysmon.api.schemas import ProcessesResponse
from sysmon.timeparse import parse_instant

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"])

NOT_YET = {"detail": "no collection yet"}


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


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else -1.0
