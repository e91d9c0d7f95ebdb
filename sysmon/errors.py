"""Exception hierarchy of sysmon.

SysmonError
 +-- ConfigError          invalid config file or environment; names the key
 +-- DataDirLockedError   another agent holds the data directory (sysmon.agent.lock)
 +-- CollectorError       one collector failed this tick (others go on)
 +-- StorageError         the time-series store could not read or write
 |    +-- StorageFullError   disk full / quota (ENOSPC); writes are buffered
 +-- QueryError           a valid request the store cannot answer (unknown series)
 +-- NotifierError        a notification channel failed (retried with backoff)
"""

from __future__ import annotations


class SysmonError(Exception):
    """Base class of every error sysmon raises on purpose."""


class ConfigError(SysmonError):
    """The configuration is invalid. ``key`` is the dotted path of the bad key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class CollectorError(SysmonError):
    pass


class StorageError(SysmonError):
    pass


class StorageFullError(StorageError):
    pass


class QueryError(SysmonError):
    """``param`` names the request parameter the problem is about (for a 422/404)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


class NotifierError(SysmonError):
    pass
