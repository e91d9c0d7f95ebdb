from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from tests.support.stack import Stack, stack

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
def server(settings: Settings, clock: FakeClock) -> Iterator[Stack]:
    """The real agent (real collectors on this machine, real SQLite file) and the real
    server on 127.0.0.1, joined by the live channel.

    The agent's schedule is off: tests call ``tick()`` and move the fake clock, so stored
    timestamps are exact and nothing sleeps.
    """
    with stack(settings, clock) as running:
        yield running


@pytest.fixture
def client(server: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        yield c


def tick(server: Stack, clock: FakeClock, n: int = 1, step: float = 1.0) -> None:
    server.tick(n, step)
