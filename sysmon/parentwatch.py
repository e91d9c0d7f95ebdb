"""In a supervised child (agent, server): stop once the supervisor is gone, so that
nothing is orphaned even after a SIGKILL of it (``sysmon.supervisor`` starts children
with ``SYSMON_PARENT_PID``)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from sysmon.supervisor import PARENT_ENV

logger = logging.getLogger("sysmon.supervisor")  # the supervisor's story, told by a child


def watch_parent(interval: float = 1.0) -> None:
    """In a supervised child: SIGTERM ourselves once the supervisor is gone (even after
    a SIGKILL of it), so the normal graceful shutdown runs and nothing is orphaned.

    The thread sleeps in ``poll`` on a pidfd of the supervisor, which becomes readable
    when it exits: no wake-up while it lives. Where pidfds are missing (Linux < 5.3,
    other systems) it checks ``getppid`` every ``interval`` seconds instead."""
    value = os.environ.get(PARENT_ENV, "")
    if not value.isdigit() or os.getppid() != int(value):
        return  # not started by a supervisor (or by one further up the tree)
    parent = int(value)

    def run() -> None:
        pidfd = _pidfd(parent)
        if pidfd is not None:
            import select

            try:
                if os.getppid() == parent:  # it could have exited before the open
                    poller = select.poll()
                    poller.register(pidfd, select.POLLIN)
                    while not poller.poll():
                        pass
            finally:
                os.close(pidfd)
        while os.getppid() == parent:
            time.sleep(interval)
        logger.warning("supervisor (pid %d) is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=run, name="parent-watch", daemon=True).start()


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None
