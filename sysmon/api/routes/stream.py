"""``/api/v1/stream``: Server-Sent Events, one ``snapshot`` event per collection tick.

Each event carries the same JSON as ``/api/v1/metrics/current``. The current snapshot is
sent right away on connect; ``retry: 2000`` makes browsers reconnect within two seconds
after a restart; a comment every 15 s keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from sysmon.api.deps import FeedDep, HubDep
from sysmon.api.feed import sees_command_lines

router = APIRouter(prefix="/api/v1", tags=["stream"])

KEEPALIVE_SECONDS = 15.0


def _event(body: bytes) -> bytes:
    return b"event: snapshot\ndata: " + body + b"\n\n"


@router.get(
    "/stream",
    summary="Live snapshots as Server-Sent Events (event: snapshot)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(request: Request, hub: HubDep, feed: FeedDep) -> StreamingResponse:
    queue = hub.subscribe()
    full = sees_command_lines(request.scope, feed.roles_apply)

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            view = feed.get()
            if view is not None:
                yield _event(view.for_role(full)[0])
            while True:
                try:
                    view = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keepalive\n\n"
                    continue
                yield _event(view.for_role(full)[0])
        finally:
            hub.unsubscribe(queue)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
