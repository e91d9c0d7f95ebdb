"""``sysmon agent``: the agent as a process (lock, signals, parent watch).

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for a configuration error (the
CLI's), ``EXIT_LOCKED`` when another agent holds the data directory. When started by a
supervisor (``SYSMON_PARENT_PID`` set), the agent also stops cleanly within a second of
that parent dying, even by SIGKILL, so it is never left behind as an orphan.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from app.agent.lock import DataDirLock, DataDirLockedError
from app.agent.service import Agent
from app.channel import data_dir
from app.config import Settings

logger = logging.getLogger(__name__)

EXIT_LOCKED = 3
PARENT_ENV = "SYSMON_PARENT_PID"


def run_agent(settings: Settings) -> int:
    os.umask(0o077)  # database, socket, lock: the agent's files are private
    lock = DataDirLock(data_dir(settings.database.path))
    try:
        lock.acquire()
    except DataDirLockedError as exc:
        logger.error("%s", exc)
        return EXIT_LOCKED
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("agent got %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.environ.get(PARENT_ENV)
    parent_pid = int(parent) if parent and parent.isdigit() else None
    agent = Agent(settings)
    try:
        agent.start()
        while not stop.wait(1.0):
            if parent_pid is not None and os.getppid() != parent_pid:
                logger.warning("agent's supervisor (pid %d) is gone: stopping", parent_pid)
                break
    finally:
        agent.stop()
        lock.release()
    return 0
