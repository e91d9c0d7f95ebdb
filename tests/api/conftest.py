from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.clock import FakeClock
from app.config import Settings, load_settings
from app.main import create_app
from tests.support.server import RunningServer, serve

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        collectors={"processes": {"top_n": 30}},
    )


@pytest.fixture
def server(settings: Settings, clock: FakeClock) -> Iterator[RunningServer]:
    """The real app (real collectors on this machine, real SQLite file) on 127.0.0.1.

    The scheduler is off: tests call ``tick()`` and move the fake clock, so stored
    timestamps are exact and nothing sleeps.
    """
    app = create_app(settings, clock=clock, run_scheduler=False)
    with serve(app) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def tick(server: RunningServer, clock: FakeClock, n: int = 1, step: float = 1.0) -> None:
    for _ in range(n):
        server.app.state.loop.tick()
        clock.advance(step)
