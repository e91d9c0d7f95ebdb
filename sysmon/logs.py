"""Logging set-up shared by every way sysmon starts (``sysmon serve|agent|server``,
``uvicorn app.main:app``, uvicorn's worker processes).

What an operator sees by default:

* sysmon's own lines at ``logging.level`` (INFO): agent started and collecting, server
  listening, a collector failing and recovering, an alert firing and resolving, a
  notification sent or given up on. Those lines are the service's story; they must not
  depend on how it was started, so every entry point calls ``configure_logging``.
* Other libraries at WARNING only. httpx and httpcore log a line per request at INFO
  (webhook URLs are secrets), asyncio and multipart chat at DEBUG/INFO: none of that is
  the operator's business unless it is a warning.
* uvicorn's start-up lines ("Uvicorn running on http://...") through the same handler
  and format; its access log (one line per request, ~20 % of the throughput) only with
  ``server.access_log: true``.

One handler on the root logger, one format: ``2026-11-27 03:12:00 INFO    sysmon.agent.service:
...``. Calling ``configure_logging`` again (once the settings are known) adjusts levels
and never adds a second handler.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

OWN_LOGGER = __name__.partition(".")[0]
"""The package's top logger (``sysmon``)."""

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_MARK = "_sysmon_handler"


class _Formatter(logging.Formatter):
    """The shared format; ``uvicorn.error`` (uvicorn's general logger, not errors only)
    is shown as ``uvicorn`` so that "Uvicorn running on ..." does not read as an error."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "uvicorn.error":
            record = logging.makeLogRecord({**record.__dict__, "name": "uvicorn"})
        return super().format(record)


def configure_logging(level: str = "INFO", *, access_log: bool = False) -> None:
    """Install (once) the console handler and set the levels described above.

    ``level`` is ``logging.level`` (validated by the settings: DEBUG, INFO, WARNING,
    ERROR or CRITICAL); ``access_log`` is ``server.access_log``.
    """
    root = logging.getLogger()
    if not any(getattr(h, _MARK, False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter(FORMAT, DATE_FORMAT))
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    own = logging.getLevelName(level.upper())
    own_level = own if isinstance(own, int) else logging.INFO
    logging.getLogger(OWN_LOGGER).setLevel(own_level)
    # uvicorn configures its own handlers and format (its CLI does so before importing
    # sysmon.main): route its loggers through ours instead.
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    logging.getLogger("uvicorn").setLevel(own_level)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if access_log else logging.WARNING)
