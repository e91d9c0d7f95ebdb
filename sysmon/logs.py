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

**JSON file** (``logging.file``): the same records, one JSON object a line, to a size-
rotated file for log shippers (Promtail/Loki, Vector, Filebeat): ``timestamp`` (UTC, ISO
8601 with ms), ``level``, ``logger``, ``message``, ``process`` (server, agent, ...),
``pid``, the record's structured extras (the access log's ``request_id``, ``method``,
``route``, ``path``, ``status``, ``latency_ms``, ``client``) and ``exception`` when there
is one. Each process writes its own file, its role inserted before the extension
(``sysmon.jsonl`` -> ``sysmon.server.jsonl``), because ``RotatingFileHandler`` is not
safe with several writers: two processes rotating one file lose lines. The console never
shows ``sysmon.access`` (uvicorn's own access line stays there with
``server.access_log``), and the file never shows ``uvicorn.access`` (ours has more).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysmon.logline import DATE_FORMAT, FORMAT

if TYPE_CHECKING:
    from sysmon.config import Settings
    from sysmon.known_secrets import SecretMask


OWN_LOGGER = __name__.partition(".")[0]
"""The package's top logger (``sysmon``)."""

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_MARK = "_sysmon_handler"
_FILE_MARK = "_sysmon_file_handler"

ACCESS_LOGGER = f"{OWN_LOGGER}.access"
"""One INFO line per HTTP request (``sysmon.api.requestlog``), for the JSON file."""

# Attributes every LogRecord has: the rest are a call's ``extra={...}`` fields.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


SCRUB_FROM = logging.WARNING
"""Warnings and errors quote what failed (an exception's message, a command line, a URL):
their text goes through ``scrub``, in the console and in the JSON file alike."""


class _Known:
    """The secret values of this process's configuration (``configure_logging``'s
    ``secrets``): one per process, like the logging set-up it belongs to. Their mask and
    the redaction rules are loaded at the first line to scrub: a process that logs no
    warning (the supervisor, at rest) never holds them."""

    secrets: tuple[str, ...] = ()
    mask: SecretMask | None = None


def scrub(text: str) -> str:
    """``text`` with secrets masked: by the command-line rules of
    ``sysmon.collectors.redact`` (``--password=***``, ``user:***@host``, ``?token=***``,
    ``*_TOKEN=***``, ...), whole (no length cap), then every known secret value quoted
    alone (``sysmon.known_secrets``)."""
    if not text:
        return text
    from sysmon.collectors.redact import redact_cmdline
    from sysmon.known_secrets import SecretMask

    if _Known.mask is None:
        _Known.mask = SecretMask(_Known.secrets)
    return _Known.mask(redact_cmdline([text], max_chars=len(text) + 1))


class _Formatter(logging.Formatter):
    """The shared format; ``uvicorn.error`` (uvicorn's general logger, not errors only)
    is shown as ``uvicorn`` so that "Uvicorn running on ..." does not read as an error.
    Warnings and errors are scrubbed (``scrub``), tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "uvicorn.error":
            record = logging.makeLogRecord({**record.__dict__, "name": "uvicorn"})
        text = super().format(record)
        return scrub(text) if record.levelno >= SCRUB_FROM else text


def configure_logging(
    level: str = "INFO", *, access_log: bool = False, secrets: Iterable[str] | None = None
) -> None:
    """Install (once) the console handler and set the levels described above.

    ``level`` is ``logging.level`` (validated by the settings: DEBUG, INFO, WARNING,
    ERROR or CRITICAL); ``access_log`` is ``server.access_log``; ``secrets`` are the
    values ``scrub`` masks wherever they appear (``known_secrets.secret_values``; None
    keeps the ones given before).
    """
    if secrets is not None:
        _Known.secrets, _Known.mask = tuple(secrets), None
    root = logging.getLogger()
    if not any(getattr(h, _MARK, False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Formatter(FORMAT, DATE_FORMAT))
        handler.addFilter(_Drop(ACCESS_LOGGER))
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


def configure_logging_for(settings: Settings) -> None:
    """``configure_logging`` with what the settings say: ``logging.level``,
    ``server.access_log``, and the secret values they know of (masked in the logs)."""
    from sysmon.known_secrets import secret_values

    configure_logging(
        settings.logging.level,
        access_log=settings.server.access_log,
        secrets=secret_values(settings, os.environ),
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written, not when the handler
    was made: a replaced stream (a test runner's capture, a daemon's redirect) that was
    later closed would otherwise fail every line ("I/O operation on closed file")."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """``StreamHandler`` assigns it; the live ``sys.stderr`` is always used."""


class _Drop(logging.Filter):
    """Refuses the records of one logger and its children."""

    def __init__(self, logger_name: str) -> None:
        super().__init__()
        self._logger = logger_name

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return not (name == self._logger or name.startswith(self._logger + "."))


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring for the fields)."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        entry: dict[str, object] = {
            "timestamp": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": "uvicorn" if record.name == "uvicorn.error" else record.name,
            "message": record.getMessage(),
            "process": self._process,
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.levelno >= SCRUB_FROM:
            for key in ("message", "exception"):
                if key in entry:
                    entry[key] = scrub(str(entry[key]))
        return json.dumps(entry, default=str, ensure_ascii=False)


def file_log_path(path: str | os.PathLike[str], process: str) -> Path:
    """``/var/log/sysmon/sysmon.jsonl`` + ``server`` -> ``.../sysmon.server.jsonl``."""
    base = Path(path)
    return base.with_name(f"{base.stem}.{process}{base.suffix}")


def add_file_log(
    path: str | os.PathLike[str],
    process: str,
    *,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
) -> logging.Handler:
    """Start writing every record that reaches the root logger to ``process``'s JSON
    file (created with its directory, mode 0640). Returns the handler for
    ``remove_file_log``."""
    target = file_log_path(path, process)
    target.parent.mkdir(parents=True, exist_ok=True)
    handler = _private_rotating_file(target, max_bytes, backups)
    handler.setFormatter(JsonFormatter(process))
    handler.addFilter(_Drop("uvicorn.access"))
    setattr(handler, _FILE_MARK, str(target))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _FILE_MARK, None) == str(target)]:
        remove_file_log(old)
    root.addHandler(handler)
    return handler


def _private_rotating_file(target: Path, max_bytes: int, backups: int) -> logging.Handler:
    """A rotating file whose every file (the first and each after a rotation) is mode
    0640: a log names users, hosts and client addresses, not something for every local
    account. (``logging.handlers`` is imported here: the supervisor never needs it.)"""
    from logging.handlers import RotatingFileHandler

    class PrivateRotatingFile(RotatingFileHandler):
        def _open(self) -> io.TextIOWrapper:
            stream = super()._open()
            os.chmod(self.baseFilename, 0o640)
            return stream

    return PrivateRotatingFile(target, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")


def remove_file_log(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
