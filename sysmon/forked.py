"""Forked children for ``sysmon serve``: start agent and server sharing one import, then
leave them to a bare supervisor.

``sysmon serve`` has loaded and checked the settings and imported what both children
import (pydantic, SQLAlchemy, the settings, the stores). ``fork_children`` forks each
child from there, running an *entry*: the child's command line (``sysmon agent``,
``sysmon server ...``) already parsed, with those settings. A child therefore neither
imports nor parses again, and those pages stay shared, copy-on-write, by both children.
``exec_supervisor`` then replaces the parent, same pid, by a fresh interpreter running
``sysmon.supervisor``, which adopts the children (``Forked.adopt``): the ~45
MiB the parent had loaded do not stay resident in a process that only waits.

A child that dies later is started again by the supervisor from its command line
(``subprocess``, a new interpreter): the supervisor has nothing preloaded to fork from.

A forked child behaves as the exec'd command line would: default signal handlers and an
empty signal mask, the environment and ``sys.argv`` it was given, a title in ``ps`` (with
setproctitle), non-daemon threads joined and atexit handlers run before it exits, and its
exit code passed up.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

Entry = Callable[[], int]

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""What the supervisor handles: blocked from before the forks until the supervisor that
adopts the children has its handlers (a blocked signal stays pending across ``exec``), so
a SIGTERM in between stops the service cleanly instead of killing the parent alone."""


class Prepared(NamedTuple):
    """One child to fork: the command line it stands for and what it runs."""

    argv: Sequence[str]
    entry: Entry


class Forked:
    """A child of this process by pid: the part of ``subprocess.Popen``'s interface the
    supervisor uses. Made by ``start`` (fork now) or ``adopt`` (a child this pid forked
    before it exec'd into the supervisor)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    @classmethod
    def adopt(cls, pid: int) -> Forked:
        return cls(pid)

    @classmethod
    def start(cls, child: Prepared, env: Mapping[str, str]) -> Forked:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the parent's stack
            os._exit(run_child(child, dict(env)))
        return cls(pid)

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


def run_child(child: Prepared, env: dict[str, str]) -> int:
    """In a forked child: what running ``child.argv`` would do, then the exit steps of an
    interpreter (wait for non-daemon threads, atexit), and the exit code."""
    import atexit
    import traceback

    code = 1
    try:
        for sig in (*SIGNALS, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        with contextlib.suppress(ImportError):  # before the environment changes
            from setproctitle import setproctitle

            setproctitle(" ".join(child.argv))
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [sys.argv[0], *child.argv[3:]]  # as ``python -m sysmon <args>``
        try:
            code = child.entry()
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


def fork_children(children: Mapping[str, Prepared], env_name: str) -> dict[str, int]:
    """Fork each child (``env_name`` set to this pid in its environment) and return their
    pids, with ``SIGNALS`` left blocked here for ``exec_supervisor``. Everything alive
    now is first moved out of the garbage collector's reach (``gc.freeze``), so that no
    collection in a child writes to these shared pages. Forks only from a process with
    one thread (a fork copies only the calling thread): otherwise none, and the
    supervisor starts every child from its command line."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    if threading.active_count() != 1:
        logging.getLogger(__name__).info(
            "not forking from a process with %d threads: children start from their command lines",
            threading.active_count(),
        )
        return {}
    gc.collect()
    gc.freeze()
    env = {**os.environ, env_name: str(os.getpid())}
    return {name: Forked.start(child, env).pid for name, child in children.items()}


def exec_supervisor(plan: Mapping[str, object], adopt: Mapping[str, int]) -> None:
    """Become the supervisor (same pid, so the children stay ours and ``kill <pid>`` still
    stops the service), adopting ``adopt``. The interpreter starts with ``-S``: no site
    module and no .pth files run in it; the directory that holds the ``sysmon`` package
    is put on ``sys.path`` instead, and the supervisor imports nothing else outside the
    standard library. Returns only if the exec failed."""
    sys.stdout.flush()
    sys.stderr.flush()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"import sys; sys.path.insert(0, {root!r}); import sysmon.supervisor as s; s.main()"
    text = json.dumps({**plan, "adopt": dict(adopt)})
    os.execv(sys.executable, [sys.executable, "-S", "-c", code, text])
