from __future__ import annotations

from collections.abc import Iterator

import pytest

from sysmon.clock import FakeClock
from tests.alerts.receivers import HttpReceiver, SmtpReceiver, smtp_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_800_000_000.0)


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with smtp_server() as receiver:
        yield receiver


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver().running() as receiver:
        yield receiver
