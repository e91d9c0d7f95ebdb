"""Fan-out of each new snapshot to live (SSE) clients.

The live channel's reader calls ``publish`` with each tick's view (serialised once by
the agent); the hub hands it to every subscriber queue on the event loop. A slow client's
queue drops its oldest message instead of growing, so one stuck browser costs a bounded
amount of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)


T = TypeVar("T")


class LiveHub(Generic[T]):
    def __init__(self, queue_size: int = 4) -> None:
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[T]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> asyncio.Queue[T]:
        queue: asyncio.Queue[T] = asyncio.Queue(maxsize=self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[T]) -> None:
        self._subscribers.discard(queue)

    def publish(self, payload: T) -> None:
        """Thread-safe: may be called from the collection thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._subscribers:
            return
        with contextlib.suppress(RuntimeError):  # loop shutting down
            loop.call_soon_threadsafe(self._deliver, payload)

    def _deliver(self, payload: T) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(payload)
