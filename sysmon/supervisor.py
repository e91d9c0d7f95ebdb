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
supervised by pid from the start; a restart starts the command line like any other child.

**A bare process.** The supervisor ``sysmon serve`` execs into (``main``) runs
``python -S`` and imports builtin modules, ``sysmon.logline`` and ``sysmon.agent.lock``,
nothing else: no ``logging``, ``subprocess``, ``threading``, ``typing``, ``json`` or
``re``, which together hold 4-5 MiB of private memory in a process that only waits
(bench/README.md, session 9). So a child is started with ``os.posix_spawnp`` the way
``subprocess.Popen`` would (no descriptor beyond 0-2, SIGPIPE and SIGXFSZ back to their
defaults, an empty signal mask); ``main`` writes its lines in ``sysmon.logline``'s format
to stderr, and in a process with ``logging`` (``uvicorn app.main:app``, where the
supervisor runs in-process on a thread) they go through ``logging`` as
``sysmon.supervisor``. Its lines hold names, pids and exit codes, no secret to scrub.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

from sysmon.logline import ERROR, INFO, WARNING

TYPE_CHECKING = False  # typing is not imported at run time (the docstring says why)
if TYPE_CHECKING:
    import signal
    import threading
    from collections.abc import Callable, Mapping, Sequence
else:  # the C module: ``signal`` wraps it in enums, and ``enum`` costs ~0.9 MiB here
    import _signal as signal

EXIT_LOCKED = 3  # an agent exits with this when another holds its data directory
PARENT_ENV = "SYSMON_PARENT_PID"

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""What the supervisor handles: blocked from before ``sysmon serve`` forks until the
supervisor that adopts the children has its handlers (a blocked signal stays pending
across ``exec``), so a SIGTERM in between stops the service cleanly instead of killing
the parent alone."""

_IGNORED_BY_PYTHON = (signal.SIGPIPE, signal.SIGXFSZ)
"""Back to their defaults in a started child, as ``subprocess``'s ``restore_signals``."""


def logging_log(level: int, message: str) -> None:
    """The default ``log``: through ``logging`` as ``sysmon.supervisor`` (for a process
    that has ``logging`` configured already)."""
    import logging

    logging.getLogger(__name__).log(level, message)


class ChildSpec:
    """What to run: ``name``, ``argv``, ``env`` (None: this process's environment) and
    ``may_wait``: returns True when the child must not be started now (another agent
    holds the data directory); checked before every start."""

    __slots__ = ("argv", "env", "may_wait", "name")

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        may_wait: Callable[[], bool] | None = None,
    ) -> None:
        self.name, self.argv, self.env, self.may_wait = name, argv, env, may_wait


class ChildProcess:
    """A child of this process by pid: the part of ``subprocess.Popen``'s interface the
    supervisor uses. Made by ``spawn`` (start a command line now) or from the pid of a
    child forked before this process exec'd into the supervisor (adopted)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    @classmethod
    def spawn(cls, argv: Sequence[str], env: Mapping[str, str]) -> ChildProcess:
        """Start ``argv`` as ``subprocess.Popen(argv, env=env)`` would."""
        closes = [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_descriptors()]
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            dict(env),
            file_actions=closes,
            setsigmask=(),
            setsigdef=_IGNORED_BY_PYTHON,
        )
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
        """The exit code; ``TimeoutError`` if the child still runs after ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"pid {self.pid} still runs after {timeout}s")
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _inheritable_descriptors() -> list[int]:
    """Open descriptors above 2 a started program would inherit (``Popen``'s
    ``close_fds``); Python's own are not inheritable, so this is usually empty."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for fd in sorted(int(name) for name in names if int(name) > 2):
        try:
            if os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the descriptor listdir itself used, closed since
            continue
    return found


class _Child:
    """One supervised child and its restart state."""

    def __init__(self, spec: ChildSpec) -> None:
        self.spec = spec
        self.proc: ChildProcess | None = None
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
        log: Callable[[int, str], None] = logging_log,
    ) -> None:
        self._children = [_Child(spec) for spec in specs]
        now = time.monotonic()
        for child in self._children:
            pid = (adopted or {}).get(child.spec.name)
            if pid is not None:
                child.proc, child.started = ChildProcess(pid), now
        self._poll = poll_seconds
        self._max_backoff = max_backoff
        self._healthy_after = healthy_after
        self._log = log
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._lock = _thread.allocate_lock()

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
        """Run the supervision loop on a background thread (in a process that has
        ``threading`` anyway: the server under ``uvicorn app.main:app``)."""
        import threading

        self._thread = threading.Thread(target=self.run, name="supervisor", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """The loop (blocks until ``stop`` or ``request_stop``; notices either within
        ``poll_seconds``)."""
        while not self._stopping:
            with self._lock:
                if self._stopping:
                    break
                for child in self._children:
                    self._step(child)
            time.sleep(self._poll)

    def request_stop(self) -> None:
        """End ``run`` (safe in a signal handler: sets a flag)."""
        self._stopping = True

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (last started first), wait, SIGKILL stragglers, reap."""
        self._stopping = True
        with self._lock:
            for child in reversed(self._children):
                proc = child.proc
                if proc is None or proc.poll() is not None:
                    continue
                proc.terminate()
                try:
                    proc.wait(timeout)
                except TimeoutError:
                    self._log(ERROR, f"{child.spec.name} did not stop in {timeout}s: killing it")
                    proc.kill()
                    proc.wait()
        thread = self._thread
        if thread is not None and thread.ident != _thread.get_ident():
            thread.join(timeout)

    # The step ---------------------------------------------------------------------------

    def _step(self, child: _Child) -> None:
        now = time.monotonic()
        name, proc = child.spec.name, child.proc
        if proc is not None:
            code = proc.poll()
            if code is None:
                if now - child.started >= self._healthy_after:
                    child.backoff = 0.5
                return
            child.proc = None
            child.history.append(code)
            if code == EXIT_LOCKED and child.spec.may_wait is not None:
                self._log(INFO, f"{name}: another agent holds the data directory")
                child.next_start = now
                return
            child.restarts += 1
            child.next_start = now + child.backoff
            self._log(
                WARNING,
                f"{name} (pid {proc.pid}) exited with {code}: restarting in {child.backoff:.1f}s",
            )
            child.backoff = min(self._max_backoff, child.backoff * 2)
            return
        if now < child.next_start:
            return
        if child.spec.may_wait is not None and child.spec.may_wait():
            if not child.waiting:
                self._log(INFO, f"{name}: not started, the data directory has an agent")
            child.waiting = True
            return
        child.waiting = False
        env = dict(os.environ if child.spec.env is None else child.spec.env)
        env[PARENT_ENV] = str(os.getpid())
        child.proc = ChildProcess.spawn(child.spec.argv, env)
        child.started = now
        self._log(INFO, f"{name} started (pid {child.proc.pid})")


def agent_spec(argv: Sequence[str], data_dir: str | os.PathLike[str]) -> ChildSpec:
    """The agent child: never started while another agent holds ``data_dir``."""
    from sysmon.agent.lock import is_held

    return ChildSpec("agent", argv, may_wait=lambda: is_held(data_dir))


def sysmon_argv(*args: str) -> list[str]:
    """The command line that runs ``sysmon <args>`` with this interpreter."""
    return [sys.executable, "-m", "sysmon", *args]


def serve_forever(
    agent_argv: list[str],
    server_argv: list[str],
    lock_dir: str,
    adopted: Mapping[str, int] | None = None,
    log: Callable[[int, str], None] = logging_log,
) -> int:
    """``sysmon serve`` after its checks: supervise the agent and the server (``adopted``:
    those already forked, by name) until SIGTERM/SIGINT, then stop both; SIGHUP is passed
    to the agent (reload)."""
    supervisor = Supervisor(
        [agent_spec(agent_argv, lock_dir), ChildSpec("server", server_argv)],
        adopted=adopted,
        log=log,
    )
    signal.signal(signal.SIGTERM, lambda *_: supervisor.request_stop())
    signal.signal(signal.SIGINT, lambda *_: supervisor.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: supervisor.send("agent", signal.SIGHUP))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # blocked since the forks
    supervisor.run()
    log(INFO, "sysmon stopping")
    supervisor.stop()
    return 0


def encode_plan(plan: Mapping[str, object]) -> str:
    """``plan`` (str, int, lists and dicts of them) as one command-line argument for
    ``main``: ``marshal``'s format in hex, which the supervisor reads without importing
    ``json`` (and, through it, ``re``)."""
    import marshal

    return marshal.dumps(dict(plan)).hex()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -S -c "...supervisor.main()" <plan>``: what ``sysmon serve`` execs into
    once it has checked the configuration and forked the children it could (the plan's
    ``adopt``: name -> pid; ``encode_plan`` wrote it). Logs to stderr at the plan's
    ``log_level``."""
    import marshal

    from sysmon.logline import LEVELS, render

    plan = marshal.loads(bytes.fromhex((argv or sys.argv[1:])[0]))
    threshold = LEVELS.get(str(plan.get("log_level", "INFO")).upper(), INFO)

    def log(level: int, message: str) -> None:
        if level < threshold:
            return
        line = render(level, __name__, message) + "\n"
        try:
            os.write(2, line.encode(errors="replace"))
        except OSError:  # as with logging's handlers: a broken stderr never stops the service
            return

    log(INFO, plan.get("banner", "sysmon serving"))
    adopted = {str(k): int(v) for k, v in plan.get("adopt", {}).items()}
    sys.exit(serve_forever(plan["agent"], plan["server"], plan["lock_dir"], adopted, log))


if __name__ == "__main__":
    main()
