"""The shared store contract (``tests/storage/contract.py``) on ``InfluxStore`` against a
real InfluxDB 1.x server (Debian's ``influxdb``, ``api: v1``; one server per module,
each test in a database of its own, created by the store's ``open``)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

import pytest

from sysmon.clock import FakeClock
from sysmon.storage.influx import InfluxStore
from tests.storage.contract import INTERVAL, Settle, StoreContract
from tests.storage.helpers import T0
from tests.support.influx import InfluxServer, influx_server

_databases = count()


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxServer]:
    with influx_server(tmp_path_factory.mktemp("influx-contract")) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(influx: InfluxServer, clock: FakeClock) -> Iterator[InfluxStore]:
    s = InfluxStore(
        influx.url,
        clock=clock,
        host="contract",
        bucket=f"contract_{next(_databases)}",
        api="v1",
        interval_seconds=INTERVAL,
    )
    s.open()
    yield s
    s.close()


@pytest.fixture
def peer(store: InfluxStore, influx: InfluxServer, clock: FakeClock) -> Iterator[InfluxStore]:
    """Another agent writing to the same database under its own host tag."""
    s = InfluxStore(
        influx.url,
        clock=clock,
        host="peer",
        bucket=store.bucket,
        api="v1",
        interval_seconds=INTERVAL,
    )
    s.open()
    yield s
    s.close()


@pytest.fixture
def settle(clock: FakeClock) -> Settle:
    """Nothing to flush: InfluxDB answers a write (204) once a query can see it."""

    def go(now: float) -> None:
        clock.set_wall(now)

    return go


class TestInfluxContract(StoreContract):
    pass
