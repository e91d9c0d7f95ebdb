"""A real agent and a real server in this process, joined by the real live channel.

The agent runs unscheduled (``start(schedule=False)``): the test drives ``tick()`` with a
fake clock, the agent writes inline, publishes the frame over the Unix socket, and
``tick`` returns once the server has received it. Everything between is real: the
socket, the server's read-only store, uvicorn, HTTP.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from sysmon.agent.service import Agent
from sysmon.api.limits import uvicorn_options
from sysmon.clock import FakeClock
from sysmon.config import Settings
from sysmon.main import create_app
from sysmon.models import Snapshot
from sysmon.storage.base import TimeSeriesStore
from tests.support.server import serve


@dataclass
class Stack:
    agent: Agent
    app: FastAPI
    base_url: str
    clock: FakeClock

    def tick(self, n: int = 1, step: float = 1.0) -> list[Snapshot]:
        """``n`` ticks ``step`` seconds apart, each seen by the server before returning."""
        out = []
        for _ in range(n):
            snapshot = self.agent.tick(self.clock.time())
            assert self.app.state.feed.wait_for(snapshot.timestamp, 10), "tick not delivered"
            out.append(snapshot)
            self.clock.advance(step)
        return out


def short_socket() -> Path:
    """A socket path short enough for ``sun_path`` whatever pytest's tmp_path is."""
    return Path(tempfile.mkdtemp(prefix="sysmon-t")) / "agent.sock"


@contextmanager
def stack(
    settings: Settings,
    clock: FakeClock,
    *,
    source: Any = None,
    store: TimeSeriesStore | None = None,
    **serve_kwargs: Any,
) -> Iterator[Stack]:
    sock = short_socket()
    agent = Agent(settings, source=source, clock=clock, store=store, channel=sock)
    agent.start(schedule=False)
    try:
        app = create_app(settings, clock=clock, channel=sock, start_agent=False)
        # The HTTP protocol and limits ``sysmon server`` runs with, unless a test says.
        options = {
            **uvicorn_options(settings.server.limits, settings.server.event_loop),
            **serve_kwargs,
        }
        with serve(app, **options) as running:
            deadline = time.monotonic() + 10
            while not app.state.subscriber.connected:
                assert time.monotonic() < deadline, "server never connected to the agent"
                time.sleep(0.01)
            yield Stack(agent, app, running.base_url, clock)
    finally:
        agent.stop()
        shutil.rmtree(sock.parent, ignore_errors=True)


@contextmanager
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as c:
        yield c
