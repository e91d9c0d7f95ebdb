"""Start child processes and keep them running: the agent (and, for ``sysmon serve``,
the server).

* A child that dies is started again after a backoff (0.5 s doubling to 30 s; back to
  0.5 s once it has run for a minute), and the restart is logged.
* An agent that exits with ``EXIT_LOCKED`` found another agent on the data directory:
  the supervisor then waits (checking every ``poll_seconds``) until that lock is free
  instead of starting agents in a loop.
* ``stop`` sends SIGTERM to every child, waits, and SIGKILLs what is left; every child
  is reaped (no zombies). Children get ``SYSMON_PARENT_PID`` and stop by themselves
  within a second if the supervisor is killed outright (no orphans).

The supervisor only knows command lines, never the objects of what it runs.

**Adopted children** (``adopted``, what ``sysmon serve`` uses): agent and server were
forked before this process exec'd into the supervisor (``sysmon.forked``), and are
supervised by pid from the start; a restart starts the command line with ``subprocess``
like any other child.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from sysmon.forked import SIGNALS, Forked

logger = logging.getLogger(__name__)

EXIT_LOCKED = 3  # an agent exits with this when another holds its data directory
PARENT_ENV = "SYSMON_PARENT_PID"


class ChildSpec(NamedTuple):
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    may_wait: Callable[[], bool] | None = None
    """Return True when the child must not be started now (another agent holds the
    data directory); checked before every start."""


class _Child:
    """One supervised child and its restart state. (Plain classes here, no dataclasses:
    the supervisor process stays a bare interpreter, see ``sysmon.forked``.)"""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | Forked | None = None
        self.started = 0.0
        self.backoff = 0.5
        self.next_start = 0.0
        self.restarts = 0
        self.waiting = False
        self.history: list[int] = []


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        poll_seconds: float = 0.2,
        max_backoff: float = 30.0,
        healthy_after: float = 60.0,
        adopted: Mapping[str, int] | None = None,
    ) -> None:
        self._children = [_Child(spec) for spec in specs]
        now = time.monotonic()
        for child in self._children:
            pid = (adopted or {}).get(child.spec.name)
            if pid is not None:
                child.proc, child.started = Forked.adopt(pid), now
        self._poll = poll_seconds
        self._max_backoff = max_backoff
        self._healthy_after = healthy_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # Public -----------------------------------------------------------------------------

    def pids(self) -> dict[str, int | None]:
        return {
            c.spec.name: (c.proc.pid if c.proc is not None and c.proc.poll() is None else None)
            for c in self._children
        }

    def restarts(self) -> dict[str, int]:
        return {c.spec.name: c.restarts for c in self._children}

    def send(self, name: str, sig: int) -> bool:
        """Send ``sig`` to the running child called ``name`` (False if it is not running)."""
        for child in self._children:
            proc = child.proc
            if child.spec.name == name and proc is not None and proc.poll() is None:
                proc.send_signal(sig)
                return True
        return False

    def start(self) -> None:
        """Run the supervision loop on a background thread."""
        self._thread = threading.Thread(target=self.run, name="supervisor", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """The loop (blocks until ``stop``)."""
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    break
                for child in self._children:
                    self._step(child)
            self._stop.wait(self._poll)

    def request_stop(self) -> None:
        """End ``run`` (safe in a signal handler: sets a flag)."""
        self._stop.set()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (last started first), wait, SIGKILL stragglers, reap."""
        self._stop.set()
        with self._lock:
            for child in reversed(self._children):
                proc = child.proc
                if proc is None or proc.poll() is not None:
                    continue
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    logger.error("%s did not stop in %ss: killing it", child.spec.name, timeout)
                    proc.kill()
                    proc.wait()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # The step ---------------------------------------------------------------------------

    def _step(self, child: _Child) -> None:
        now = time.monotonic()
        proc = child.proc
        if proc is not None:
            code = proc.poll()
            if code is None:
                if now - child.started >= self._healthy_after:
                    child.backoff = 0.5
                return
            child.proc = None
            child.history.append(code)
            if code == EXIT_LOCKED and child.spec.may_wait is not None:
                logger.info("%s: another agent holds the data directory", child.spec.name)
                child.next_start = now
                return
            child.restarts += 1
            child.next_start = now + child.backoff
            logger.warning(
                "%s (pid %d) exited with %s: restarting in %.1fs",
                child.spec.name,
                proc.pid,
                code,
                child.backoff,
            )
            child.backoff = min(self._max_backoff, child.backoff * 2)
            return
        if now < child.next_start:
            return
        if child.spec.may_wait is not None and child.spec.may_wait():
            if not child.waiting:
                logger.info("%s: not started, the data directory has an agent", child.spec.name)
            child.waiting = True
            return
        child.waiting = False
        env = dict(os.environ if child.spec.env is None else child.spec.env)
        env[PARENT_ENV] = str(os.getpid())
        child.proc = subprocess.Popen(list(child.spec.argv), env=env)
        child.started = now
        logger.info("%s started (pid %d)", child.spec.name, child.proc.pid)


def agent_spec(argv: Sequence[str], data_dir: Path) -> ChildSpec:
    """The agent child: never started while another agent holds ``data_dir``."""
    from sysmon.agent.lock import is_held

    return ChildSpec("agent", argv, may_wait=lambda: is_held(data_dir))


def sysmon_argv(*args: str) -> list[str]:
    """The command line that runs ``sysmon <args>`` with this interpreter."""
    return [sys.executable, "-m", "sysmon", *args]


def watch_parent(interval: float = 1.0) -> None:
    """In a supervised child: SIGTERM ourselves once the supervisor is gone (even after
    a SIGKILL of it), so the normal graceful shutdown runs and nothing is orphaned.

    The thread sleeps in ``poll`` on a pidfd of the supervisor, which becomes readable
    when it exits: no wake-up while it lives. Where pidfds are missing (Linux < 5.3,
    other systems) it checks ``getppid`` every ``interval`` seconds instead."""
    import signal

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


def serve_forever(
    agent_argv: list[str],
    server_argv: list[str],
    lock_dir: str,
    adopted: Mapping[str, int] | None = None,
) -> int:
    """``sysmon serve`` after its checks: supervise the agent and the server (``adopted``:
    those already forked, by name) until SIGTERM/SIGINT, then stop both; SIGHUP is passed
    to the agent (reload)."""
    supervisor = Supervisor(
        [agent_spec(agent_argv, Path(lock_dir)), ChildSpec("server", server_argv)],
        adopted=adopted,
    )
    signal.signal(signal.SIGTERM, lambda *_: supervisor.request_stop())
    signal.signal(signal.SIGINT, lambda *_: supervisor.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: supervisor.send("agent", signal.SIGHUP))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked since the forks
    supervisor.run()
    logger.info("sysmon stopping")
    supervisor.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sysmon.supervisor '<json>'``: what ``sysmon serve`` execs into once it
    has checked the configuration and forked the children it could (the plan's ``adopt``:
    name -> pid). It imports only the standard library and the lock and log helpers."""
    import json

    from sysmon.logs import configure_logging

    plan = json.loads((argv or sys.argv[1:])[0])
    configure_logging(plan.get("log_level", "INFO"))
    logger.info(plan.get("banner", "sysmon serving"))
    adopted = {str(k): int(v) for k, v in plan.get("adopt", {}).items()}
    sys.exit(serve_forever(plan["agent"], plan["server"], plan["lock_dir"], adopted))


if __name__ == "__main__":
    main()
