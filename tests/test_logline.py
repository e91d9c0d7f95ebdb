"""``sysmon.logline``: the line the bare supervisor writes without ``logging`` is the line
``logging`` writes with sysmon's format (``sysmon.logs``)."""

from __future__ import annotations

import logging
import time

import pytest

from sysmon.logline import DATE_FORMAT, FORMAT, LEVELS, render


@pytest.mark.parametrize("name", sorted(LEVELS))
def test_render_is_the_logging_line(name: str) -> None:
    level = LEVELS[name]
    assert logging.getLevelName(level) == name, "logging's own numbers"
    created = time.time()
    record = logging.makeLogRecord(
        {"levelno": level, "levelname": name, "name": "sysmon.supervisor", "msg": "agent (pid 7)"}
    )
    record.created = created
    expected = logging.Formatter(FORMAT, DATE_FORMAT).format(record)
    assert render(level, "sysmon.supervisor", "agent (pid 7)", created) == expected
