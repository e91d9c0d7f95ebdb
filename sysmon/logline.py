"""The console log line, written once: ``sysmon.logs`` gives it to ``logging``'s
formatter, and the supervisor, a bare process without ``logging``
(``sysmon.supervisor``), renders it with ``render``."""

from __future__ import annotations

import time

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
LEVELS = {"DEBUG": DEBUG, "INFO": INFO, "WARNING": WARNING, "ERROR": ERROR, "CRITICAL": CRITICAL}
"""``logging``'s level numbers by name."""


def render(level: int, name: str, message: str, created: float | None = None) -> str:
    """The line ``logging`` would format for this record (no trailing newline)."""
    levelname = next((k for k, v in LEVELS.items() if v == level), f"Level {level}")
    asctime = time.strftime(DATE_FORMAT, time.localtime(created))
    return FORMAT % {"asctime": asctime, "levelname": levelname, "name": name, "message": message}
