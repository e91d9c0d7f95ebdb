"""The shared store contract (``tests/storage/contract.py``) on the SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sysmon.clock import FakeClock
from sysmon.storage.config import RetentionConfig
from sysmon.storage.sqlite import SQLiteStore
from tests.storage.contract import INTERVAL, Settle, StoreContract
from tests.storage.helpers import T0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "sysmon.db", RetentionConfig(), INTERVAL, clock)
    s.open()
    yield s
    s.close()


@pytest.fixture
def settle(store: SQLiteStore, clock: FakeClock) -> Settle:
    """Rollups are built by maintenance: run it until no bounded step is left."""

    def go(now: float) -> None:
        clock.set_wall(now)
        for _ in range(1000):
            store.maintain(now)
            if not store.maintenance_backlog:
                return
        raise AssertionError("maintenance did not settle")

    return go


class TestSQLiteContract(StoreContract):
    pass
