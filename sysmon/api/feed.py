"""The server's view of the agent: the latest tick frame from the live channel.

``TickFeed.on_frame`` runs on the event loop for each frame a ``FrameSource`` reads (the
agent's Unix socket, ``sysmon.channel.TickSubscriber``, or Redis,
``sysmon.fanout.RedisTickSubscriber``): it swaps in the new ``LatestView`` (``/current``
serves its body as is, no database read) and fans the body out to the SSE clients
through the ``LiveHub``. The feed does not know or care where frames come from.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from sysmon.clock import Clock
from sysmon.live import LiveHub
from sysmon.security.principal import principal_of
from sysmon.serialize import from_json, to_json_bytes

logger = logging.getLogger(__name__)


class FrameSource(Protocol):
    """Delivers the agent's frames (``sysmon.channel`` wire format, decoded) to a callback.

    Guarantees: ``run`` is one long-lived coroutine on the server's event loop, cancelled
    at shutdown; it calls ``on_frame(meta, body)`` on that loop, in the order the agent
    published, and never raises (a lost connection is retried, with a pause, forever).
    ``connected`` says whether frames can arrive right now and ``last_error`` why not
    (``/api/v1/health`` shows both); ``frames`` counts the frames delivered.
    """

    connected: bool
    last_error: str | None
    frames: int

    async def run(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LatestView:
    timestamp: float
    body: bytes
    processes: list[dict[str, Any]]
    status: dict[str, Any]
    generation: int
    received: float
    """Monotonic time (server clock) the frame arrived."""
    viewer_body: bytes
    """``body`` without command lines (what a ``viewer`` is shown; admins see them)."""
    viewer_processes: list[dict[str, Any]]

    def for_role(self, full: bool) -> tuple[bytes, list[dict[str, Any]]]:
        return (self.body, self.processes) if full else (self.viewer_body, self.viewer_processes)


def _without_cmdlines(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "cmdline"} for row in rows]


def sees_command_lines(scope: MutableMapping[str, Any], roles_apply: bool) -> bool:
    """Whether the caller may see full command lines (they can hold secrets).

    With ``auth.mode: none`` (``roles_apply`` False) the local user is the admin.
    Otherwise only a principal whose role is ``admin``; no principal means no.
    """
    if not roles_apply:
        return True
    principal = principal_of(scope)
    return principal is not None and principal.is_admin


FrameListener = Callable[[dict[str, Any], bytes], None]


class TickFeed:
    def __init__(
        self,
        hub: LiveHub[LatestView],
        clock: Clock,
        roles_apply: bool = False,
        listener: FrameListener | None = None,
    ) -> None:
        self._hub = hub
        self._listener = listener
        """Also given every frame (the ``LiveHead``); its failure is logged, not raised."""
        self._clock = clock
        self.roles_apply = roles_apply
        """True with ``auth.mode: jwt``: a command-line-free copy of each tick is made
        once (not per client) for viewers."""
        self._view: LatestView | None = None
        self.started = clock.monotonic()
        self.status: dict[str, Any] = {}
        """The agent's status from its latest frame (a tick's, or its hello)."""
        self._cond = threading.Condition()

    def on_frame(self, meta: dict[str, Any], body: bytes) -> None:
        if self._listener is not None:
            try:
                self._listener(meta, body)
            except Exception:
                logger.exception("live frame listener failed")
        self.status = dict(meta.get("status") or {})
        if meta.get("type") != "tick":
            return  # "hello": the agent's status before its first tick
        processes = list(meta.get("processes") or [])
        viewer_body, viewer_processes = body, processes
        if self.roles_apply:
            document = from_json(body)
            document["processes"] = _without_cmdlines(document.get("processes") or [])
            viewer_body = to_json_bytes(document)
            viewer_processes = _without_cmdlines(processes)
        view = LatestView(
            timestamp=float(meta.get("timestamp", 0.0)),
            body=body,
            processes=processes,
            status=dict(meta.get("status") or {}),
            generation=int(meta.get("generation", 0)),
            received=self._clock.monotonic(),
            viewer_body=viewer_body,
            viewer_processes=viewer_processes,
        )
        with self._cond:
            self._view = view
            self._cond.notify_all()
        self._hub.publish(view)

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
