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

**Forked children** (``fork=True``, what ``sysmon serve`` uses): a child whose command
line is ``<this python> -m <module> ...`` is started by ``os.fork`` and runs the module
as ``python -m`` would, instead of a new interpreter. The supervisor first imports what
both children import (``preload``: pydantic, SQLAlchemy, the settings, psutil: ~40 MiB
that each child used to build on its own) and freezes it out of the garbage collector's
reach, so those pages stay shared, copy-on-write, by the supervisor and both children.
That is what brings sysmon's total PSS under 100 MiB (bench/README.md). The supervision
loop then runs on the main thread: a fork is taken from a process with no other thread.
Other command lines, a loop not on the main thread, and supervisors that run inside a
threaded process (the server's own, for ``uvicorn app.main:app``), start children with
``subprocess`` as before.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

EXIT_LOCKED = 3  # an agent exits with this when another holds its data directory
PARENT_ENV = "SYSMON_PARENT_PID"


@dataclass
class ChildSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    may_wait: Callable[[], bool] | None = None
    """Return True when the child must not be started now (another agent holds the
    data directory); checked before every start."""


@dataclass
class _Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | Forked | None = None
    started: float = 0.0
    backoff: float = 0.5
    next_start: float = 0.0
    restarts: int = 0
    waiting: bool = False
    history: list[int] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        poll_seconds: float = 0.2,
        max_backoff: float = 30.0,
        healthy_after: float = 60.0,
        fork: bool = False,
    ) -> None:
        self._children = [_Child(spec) for spec in specs]
        self._fork = fork
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
        if (
            self._fork
            and forkable(child.spec.argv) is not None
            and _on_main_thread()
            and _loaded_code_unchanged()
        ):
            child.proc = Forked(child.spec.argv, env)
        else:
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


def serve_forever(agent_argv: list[str], server_argv: list[str], lock_dir: str) -> int:
    """``sysmon serve`` after its checks: supervise the agent and the server until
    SIGTERM/SIGINT (then stop both); SIGHUP is passed to the agent (reload). The loop
    runs on this (main) thread, so children are forked from a single-threaded process."""
    supervisor = Supervisor(
        [agent_spec(agent_argv, Path(lock_dir)), ChildSpec("server", server_argv)], fork=True
    )
    signal.signal(signal.SIGTERM, lambda *_: supervisor.request_stop())
    signal.signal(signal.SIGINT, lambda *_: supervisor.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: supervisor.send("agent", signal.SIGHUP))
    supervisor.run()
    logger.info("sysmon stopping")
    supervisor.stop()
    return 0


# Forked children ---------------------------------------------------------------------------


def forkable(argv: Sequence[str]) -> str | None:
    """The module of a ``<this python> -m <module> ...`` command line, else ``None``."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m":
        return argv[2]
    return None


def _on_main_thread() -> bool:
    """Forks are taken from the main thread only: the child's one thread is then the main
    thread of a process, with its signals and non-daemon threads, as after an exec."""
    return threading.current_thread() is threading.main_thread()


_loaded: dict[str, int | None] = {}
"""The source files of every module this process had imported at ``preload``, with
their mtimes: a fork runs that code, the files may since have been upgraded."""


_stale = False


def preload(modules: Sequence[str]) -> None:
    """Import ``modules`` and move every object alive into the collector's permanent
    generation (``gc.freeze``): collections in the children then never write to these
    pages, which keeps them shared with the supervisor and each other."""
    for name in modules:
        importlib.import_module(name)
    global _stale
    _stale = False
    _loaded.clear()
    _loaded.update(_module_files())
    gc.freeze()


def _module_files() -> dict[str, int | None]:
    found: dict[str, int | None] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            try:
                found[path] = os.stat(path).st_mtime_ns
            except OSError:
                found[path] = None
    return found


def _loaded_code_unchanged() -> bool:
    """False once a preloaded module's file changed on disk (a package upgrade while
    running): a child forked now would mix the old code in memory with new files it
    imports later, so it is exec'd instead, wholly new (and so is every later one)."""
    global _stale
    if _stale:
        return False
    for path, mtime in _loaded.items():
        try:
            now: int | None = os.stat(path).st_mtime_ns
        except OSError:
            now = None
        if now != mtime:
            logger.warning("%s changed since sysmon started: children are exec'd now", path)
            _stale = True
            return False
    return True


class Forked:
    """A child forked from this process, running ``python -m <module> <args>``; the part
    of ``subprocess.Popen``'s interface the supervisor uses."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        module, args = argv[2], list(argv[3:])
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the supervisor's stack
            os._exit(_run_module(module, args, env, title=" ".join(argv)))
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.returncode
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _run_module(module: str, args: list[str], env: dict[str, str], title: str) -> int:
    """In a forked child: what ``python -m module args`` would do, then the exit steps of
    an interpreter (wait for non-daemon threads, atexit), and the exit code. ``title``
    (the command line it stands for) is what ``ps`` shows, where setproctitle is
    installed."""
    import atexit
    import runpy
    import threading
    import traceback

    code = 1
    try:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with contextlib.suppress(ImportError):  # before the environment changes
            from setproctitle import setproctitle

            setproctitle(title)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [module, *args]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        current = threading.current_thread()
        for thread in threading.enumerate():  # what the interpreter waits for at exit
            if thread is not current and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    return code


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    sys.stderr.write(f"{value}\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sysmon.supervisor '<json>'``: what ``sysmon serve`` execs into once the
    configuration is checked. It imports the standard library, the lock and log helpers
    and the plan's ``preload`` modules (shared with the children it forks; the rest of
    what the checks loaded stays behind)."""
    import json

    from sysmon.logs import configure_logging

    plan = json.loads((argv or sys.argv[1:])[0])
    configure_logging(plan.get("log_level", "INFO"))
    preload(plan.get("preload", []))
    logger.info(plan.get("banner", "sysmon serving"))
    return serve_forever(plan["agent"], plan["server"], plan["lock_dir"])


if __name__ == "__main__":
    sys.exit(main())
