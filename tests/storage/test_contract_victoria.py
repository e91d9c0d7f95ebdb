"""The shared store contract (``tests/storage/contract.py``) on ``VictoriaStore`` against
a real VictoriaMetrics server (one per module; each test writes under its own ``host``
label, which every read filters by, so tests do not see each other's data)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from sysmon.clock import FakeClock
from sysmon.storage.victoria import VictoriaStore
from tests.storage.contract import INTERVAL, Settle, StoreContract
from tests.storage.helpers import T0
from tests.support.victoria import VictoriaServer, victoria_server


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaServer]:
    with victoria_server(tmp_path_factory.mktemp("victoria-contract")) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(
    vm: VictoriaServer, clock: FakeClock, request: pytest.FixtureRequest
) -> Iterator[VictoriaStore]:
    host = "contract-" + re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)
    s = VictoriaStore(vm.url, clock=clock, host=host, interval_seconds=INTERVAL)
    s.open()
    yield s
    s.close()


@pytest.fixture
def peer(
    vm: VictoriaServer, clock: FakeClock, request: pytest.FixtureRequest
) -> Iterator[VictoriaStore]:
    """Another agent on the same server (its own host label)."""
    host = "peer-" + re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)
    s = VictoriaStore(vm.url, clock=clock, host=host, interval_seconds=INTERVAL)
    s.open()
    yield s
    s.close()


@pytest.fixture
def settle(vm: VictoriaServer, clock: FakeClock) -> Settle:
    """Nothing to compute (the server aggregates at query time): make what it buffered
    searchable now (``/internal/force_flush``) instead of within a second or two."""

    def go(now: float) -> None:
        clock.set_wall(now)
        vm.flush()

    return go


class TestVictoriaContract(StoreContract):
    pass
