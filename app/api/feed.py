"""The server's view of the agent: the latest tick frame from the live channel.

``TickFeed.on_frame`` runs on the event loop for each frame ``TickSubscriber`` reads: it
swaps in the new ``LatestView`` (``/current`` serves its body as is, no database read)
and fans the body out to the SSE clients through the ``LiveHub``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from app.clock import Clock
from app.live import LiveHub


@dataclass(frozen=True, slots=True)
class LatestView:
    timestamp: float
    body: bytes
    processes: list[dict[str, Any]]
    status: dict[str, Any]
    generation: int
    received: float
    """Monotonic time (server clock) the frame arrived."""


class TickFeed:
    def __init__(self, hub: LiveHub, clock: Clock) -> None:
        self._hub = hub
        self._clock = clock
        self._view: LatestView | None = None
        self.started = clock.monotonic()
        self.status: dict[str, Any] = {}
        """The agent's status from its latest frame (a tick's, or its hello)."""
        self._cond = threading.Condition()

    def on_frame(self, meta: dict[str, Any], body: bytes) -> None:
        self.status = dict(meta.get("status") or {})
        if meta.get("type") != "tick":
            return  # "hello": the agent's status before its first tick
        view = LatestView(
            timestamp=float(meta.get("timestamp", 0.0)),
            body=body,
            processes=list(meta.get("processes") or []),
            status=dict(meta.get("status") or {}),
            generation=int(meta.get("generation", 0)),
            received=self._clock.monotonic(),
        )
        with self._cond:
            self._view = view
            self._cond.notify_all()
        self._hub.publish(body)

    def get(self) -> LatestView | None:
        return self._view

    @property
    def generation(self) -> int:
        view = self._view
        return -1 if view is None else view.generation

    def wait_for(self, timestamp: float, timeout: float = 10.0) -> bool:
        """Block (a test's thread, never the loop) until a tick at ``timestamp`` or later
        has arrived."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._view is not None and self._view.timestamp >= timestamp, timeout
            )
