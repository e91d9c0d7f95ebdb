"""Forked children for ``sysmon serve``: start agent and server sharing one import, then
leave them to a bare supervisor.

``sysmon serve`` has loaded and checked the settings and imported what both children
import (pydantic, SQLAlchemy, the settings, the stores). ``fork_children`` forks each
child from there, running an *entry*: the child's command line (``sysmon agent``,
``sysmon server ...``) already parsed, with those settings. A child therefore neither
imports nor parses again, and those pages stay shared, copy-on-write, by both children.
``exec_supervisor`` then replaces the parent, same pid, by a fresh interpreter running
``sysmon.supervisor``, which adopts the children by pid (``ChildProcess``): the ~45
MiB the parent had loaded do not stay resident in a process that only waits.

A child that dies later is started again by the supervisor from its command line
(a new interpreter): the supervisor has nothing preloaded to fork from.

A forked child behaves as the exec'd command line would: default signal handlers and an
empty signal mask, the environment and ``sys.argv`` it was given, a title in ``ps`` (with
setproctitle), non-daemon threads joined and atexit handlers run before it exits, and its
exit code passed up.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from sysmon.supervisor import SIGNALS, encode_plan

Entry = Callable[[], int]


class Prepared(NamedTuple):
    """One child to fork: the command line it stands for and what it runs."""

    argv: Sequence[str]
    entry: Entry


def _fork(child: Prepared, env: Mapping[str, str]) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's stack
        os._exit(run_child(child, dict(env)))
    return pid


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
    return {name: _fork(child, env) for name, child in children.items()}


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
    text = encode_plan({**plan, "adopt": dict(adopt)})
    os.execv(sys.executable, [sys.executable, "-S", "-c", code, text])
