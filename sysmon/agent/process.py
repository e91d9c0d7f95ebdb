"""``sysmon agent``: the agent as a process (lock, signals, parent watch).

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for a configuration error (the
CLI's), ``EXIT_LOCKED`` when another agent holds the data directory. SIGHUP re-reads the
configuration file (``Agent.reload``); a bad new configuration is logged and refused,
the old one stays in force. When started by a
supervisor (``SYSMON_PARENT_PID`` set), the agent also stops cleanly within a second of
that parent dying, even by SIGKILL, so it is never left behind as an orphan.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import threading
from pathlib import Path
from types import FrameType

from sysmon.agent.arenas import use_one_arena
from sysmon.agent.lock import DataDirLock, DataDirLockedError
from sysmon.agent.service import Agent
from sysmon.channel import data_dir
from sysmon.config import Settings, load_settings
from sysmon.errors import ConfigError
from sysmon.parentwatch import watch_parent
from sysmon.supervisor import EXIT_LOCKED

logger = logging.getLogger(__name__)


def _reload(agent: Agent, config_path: Path | None) -> None:
    try:
        agent.reload(load_settings(config_path))
    except ConfigError as exc:
        logger.error("reload refused, the running configuration stays: %s", exc)
    except Exception:
        logger.exception("reload failed, the running configuration stays")


def _raise_fd_limit() -> None:
    """Soft descriptor limit up to the hard one: the processes collector keeps one open
    /proc/<pid>/stat per process (a quarter of the soft limit), which halves its cost."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def run_agent(settings: Settings, config_path: Path | None = None) -> int:
    os.umask(0o077)  # database, socket, lock: the agent's files are private
    use_one_arena()  # before any thread of ours starts (sysmon.agent.arenas)
    _raise_fd_limit()
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
        stop_or_reload.set()

    reload = threading.Event()

    def on_hangup(signum: int, _frame: FrameType | None) -> None:
        logger.info("agent got SIGHUP: reloading %s", config_path or "the defaults")
        reload.set()
        stop_or_reload.set()

    stop_or_reload = threading.Event()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    watch_parent()  # a SIGTERM to ourselves once the supervisor is gone
    agent = Agent(settings, migrate_in_child=True)  # Alembic never resident here
    try:
        agent.start()
        while not stop.is_set():
            stop_or_reload.wait()  # signal handlers run meanwhile and set it
            stop_or_reload.clear()
            if reload.is_set():
                reload.clear()
                _reload(agent, config_path)
    finally:
        agent.stop()
        lock.release()
    return 0


def send_reload(settings: Settings) -> int:
    """``sysmon reload``: SIGHUP the agent that holds this configuration's data directory.

    The CLI has already loaded (so validated) the file: a bad one is refused here, with
    the key named, before the agent is disturbed."""
    from sysmon.agent.lock import LOCK_NAME, is_held
    from sysmon.channel import data_dir

    folder = data_dir(settings.database.path)
    pid_text = ""
    with contextlib.suppress(OSError):
        pid_text = (folder / LOCK_NAME).read_text().strip()
    if not is_held(folder) or not pid_text.isdigit():
        logger.error("no agent runs on %s: nothing to reload", folder)
        return 1
    os.kill(int(pid_text), signal.SIGHUP)
    logger.info("asked the agent (pid %s) to reload its configuration", pid_text)
    return 0
