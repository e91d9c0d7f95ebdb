"""One agent per data directory: an exclusive ``flock`` on ``agent.lock`` inside it.

The kernel drops the lock when the holder dies (even by SIGKILL), so a stale file never
blocks a restart. The file holds the holder's pid and command line, which a refused
second agent quotes: "data directory X is held by pid N (sysmon agent)".
"""

from __future__ import annotations

import fcntl
import os
import time

from sysmon.errors import SysmonError

TYPE_CHECKING = False  # the bare supervisor imports ``is_held``: no typing, no pathlib
if TYPE_CHECKING:
    from pathlib import Path

LOCK_NAME = "agent.lock"
_TRIES = 4


class DataDirLockedError(SysmonError):
    """Another agent holds the data directory."""

    def __init__(self, folder: Path, holder: str) -> None:
        super().__init__(
            f"data directory {folder} is held by {holder}; not starting a second agent"
        )
        self.folder = folder
        self.holder = holder


def _describe(pid_text: str) -> str:
    pid = pid_text.strip()
    if not pid.isdigit():
        return "another agent (pid unknown)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            raw = file.read()
        cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()[:200]
    except OSError:
        cmd = ""
    return f"pid {pid}" + (f" ({cmd})" if cmd else "")


class DataDirLock:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock now or raise ``DataDirLockedError`` at once (never waits)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # A few quick tries: ``is_held`` takes a shared lock for a microsecond, and a
        # supervisor probing at the moment this agent starts must not make it refuse.
        for attempt in range(_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt + 1 < _TRIES:
                    time.sleep(0.05)
                    continue
                holder = os.pread(fd, 64, 0).decode(errors="replace")
                os.close(fd)
                raise DataDirLockedError(self.folder, _describe(holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:  # noqa: SIM105 (contextlib: not imported in the bare supervisor)
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)


def is_held(folder: str | os.PathLike[str]) -> bool:
    """Whether some process holds ``folder``'s lock right now (a snapshot, racy)."""
    path = os.path.join(folder, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
