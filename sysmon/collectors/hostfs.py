"""Small helpers for collectors that read kernel files directly (``/proc``, ``/sys``).

The psutil seam (``source.py``) covers what psutil knows. Pressure stall information,
``sockstat``, ``file-nr``, cgroup v2 and amdgpu's sysfs files are not in psutil, so those
collectors read them themselves, always below a root directory they are given
(``proc_root``/``sys_root``/``cgroup_root`` options): tests point the root at a recorded
tree under ``tests/fixtures/`` and the agent can be pointed at a host's ``/proc`` mounted
elsewhere (``/host/proc`` in a container).

"The machine lacks the thing" is normal, not an error: no ``/proc/pressure`` on an old
kernel or with ``psi=0``, no cgroup v2, no GPU. ``Presence`` logs that once (and once when
it changes) so a collector can return nothing every tick without flooding the log.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading

ABSENT_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EOPNOTSUPP, errno.ENOTSUP})
"""``OSError`` numbers that mean "this kernel/host does not have it" rather than a fault.

``EOPNOTSUPP`` is what ``/proc/pressure/*`` answers when the kernel was built with PSI
but booted with ``psi=0``.
"""


def read_bytes(path: str, size: int = 65536) -> bytes:
    """The whole (small) file: one ``open``/``read``/``close`` without Python's file object.

    ``/proc`` and ``/sys`` files are generated on ``read``; the buffered ``open()`` costs
    several microseconds more per file than these three system calls, which adds up over
    dozens of cgroup files per tick. Reads until EOF: a ``seq_file`` may stop short of
    ``size`` before the end (``/proc/net/tcp`` with thousands of sockets).
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return pread_all(fd, size)
    finally:
        os.close(fd)


def pread_all(fd: int, size: int = 65536) -> bytes:
    """The whole file behind ``fd`` from offset 0 (``pread``: the kernel formats a
    ``/proc`` or ``/sys`` file afresh for a read at 0), until EOF."""
    chunks: list[bytes] = []
    offset = 0
    while True:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


class KernelFiles:
    """Kernel files read every tick, through descriptors kept open between reads.

    A ``pread`` at offset 0 of a kept descriptor gets the file formatted afresh, without
    the path lookup, ``open`` and ``close`` of ``read_bytes`` (two system calls per
    file instead of four; ~10 µs each here). At most ``limit`` descriptors are kept
    (the rest are opened per read). A read that fails on a kept descriptor (the device
    went away) closes it and opens the path again once, so what a caller sees is what a
    fresh ``open`` gives: ``FileNotFoundError`` for a file that is gone.
    """

    def __init__(self, limit: int = 16) -> None:
        self._fds: dict[str, int] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def read(self, path: str, size: int = 65536) -> bytes:
        """The whole file."""
        return self._read(path, size, whole=True)

    def head(self, path: str, size: int) -> bytes:
        """At most the first ``size`` bytes (one ``pread``)."""
        return self._read(path, size, whole=False)

    def _read(self, path: str, size: int, whole: bool) -> bytes:
        fd = self._fds.get(path)
        if fd is not None:
            try:
                return pread_all(fd, size) if whole else os.pread(fd, size, 0)
            except OSError:
                self._forget(path, fd)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = pread_all(fd, size) if whole else os.pread(fd, size, 0)
        except BaseException:
            os.close(fd)
            raise
        with self._lock:
            if path not in self._fds and len(self._fds) < self._limit:
                self._fds[path] = fd
                return data
        os.close(fd)
        return data

    def _forget(self, path: str, fd: int) -> None:
        with self._lock:
            if self._fds.get(path) == fd:
                del self._fds[path]
            else:
                return
        with contextlib.suppress(OSError):
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            fds, self._fds = list(self._fds.values()), {}
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def is_absent(exc: OSError) -> bool:
    """True when ``exc`` says the file (or the feature behind it) does not exist here."""
    return isinstance(exc, FileNotFoundError) or exc.errno in ABSENT_ERRNOS


class Presence:
    """Logs once when a collector's data source is missing, and once when it returns.

    ``absent(reason)`` and ``present()`` are called every tick; only a change logs, so a
    host without the thing gets exactly one line (INFO by default) instead of one per
    second, and a source that appears later (a driver loaded) is announced.
    """

    __slots__ = ("_collector", "_level", "_logger", "available")

    def __init__(self, logger: logging.Logger, collector: str, level: int = logging.INFO) -> None:
        self._logger = logger
        self._collector = collector
        self._level = level
        self.available: bool | None = None
        """``None`` until the first tick, then whether the last tick found the source."""

    def absent(self, reason: str) -> None:
        if self.available is not False:
            self._logger.log(
                self._level,
                "%s: not available on this host (%s); it reports nothing",
                self._collector,
                reason,
                extra={"collector": self._collector, "reason": reason},
            )
        self.available = False

    def present(self) -> None:
        if self.available is False:
            self._logger.info(
                "%s: available again",
                self._collector,
                extra={"collector": self._collector},
            )
        self.available = True
