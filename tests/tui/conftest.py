from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.config import Settings, load_settings
from tests.support.stack import Stack, stack

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A rule that fires on the first memory sample, and a wide process table."""
    return load_settings(
        None,
        database={"path": str(tmp_path / "sysmon.db")},
        collectors={"processes": {"top_n": 30}},
        alerts={"rules": [{"name": "mem_any", "metric": "memory.percent", "threshold": 0}]},
    )


@pytest.fixture
def server(settings: Settings) -> Iterator[Stack]:
    """A real agent (real collectors, fake clock, ticks on demand) and a real server on
    127.0.0.1, two ticks in: CPU percentages and rates need a previous sample."""
    with stack(settings, FakeClock(start=START)) as running:
        running.tick(2)
        yield running
