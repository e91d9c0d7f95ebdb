"""What ``sysmon serve`` does with its children (``sysmon.forked``, ``sysmon.supervisor``):
each is forked running its command line already parsed (an *entry*) and must behave as
that command line exec'd would: its arguments and environment, default signal handlers
and an empty signal mask, its title in ``ps``, its exit code to the supervisor, atexit
handlers and non-daemon threads finished. The supervisor adopts forked children by pid,
restarts one that exits from its command line, and reaps every one (no zombies). A
SIGTERM that arrives while signals are blocked for the hand-over stops the service
once the supervisor's handlers are in. The forks run in a process of their own
(``tests/support/fork_supervisor.py``): pytest's has other threads by then. The whole
service over forked children (their parent, their titles, a SIGKILLed supervisor) is
``tests/test_entrypoints.py`` and ``tests/faults/test_isolation.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from sysmon.forked import SIGNALS, Prepared, fork_children
from sysmon.supervisor import PARENT_ENV
from tests.support import forked_child

ROOT = Path(__file__).resolve().parents[1]
CHILD = [sys.executable, "-m", "tests.support.forked_child"]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def records(folder: Path) -> dict[int, dict[str, object]]:
    return {int(p.stem): json.loads(p.read_text()) for p in folder.glob("[0-9]*.json")}


def supervisor(folder: Path, mode: str, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "tests.support.fork_supervisor", str(folder), mode, *extra]
    env = {**os.environ, "FORK_TEST": "given"}
    return subprocess.Popen(argv, cwd=ROOT, env=env)


def outcome(folder: Path) -> dict[str, object]:
    return dict(json.loads((folder / "supervisor.json").read_text()))


def test_a_forked_child_runs_its_entry_as_its_command_line_would(tmp_path: Path) -> None:
    proc = supervisor(tmp_path, "wait")
    try:
        wait_for(lambda: len(records(tmp_path)) == 1)
        pid, record = next(iter(records(tmp_path).items()))
        wait_for((tmp_path / f"{pid}.ready").exists)  # its SIGTERM handler is in
        argv = record["argv"]
        assert isinstance(argv, list) and argv[1:] == [str(tmp_path), "wait"]
        assert record["parent"] == str(proc.pid) and record["extra"] == "given"
        assert record["sigterm"] == str(signal.SIG_DFL), "not the parent's handler"
        assert record["blocked"] == [], "the hand-over's mask is not the child's"
        assert record["name"] == "tests.support.forked_child", "forked, not exec'd"
        child = psutil.Process(pid)
        assert child.ppid() == proc.pid
        title = [*CHILD, str(tmp_path), "wait"]
        assert " ".join(child.cmdline()).split() == title, "titled by its command line"
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    assert outcome(tmp_path)["pids"] == {"child": pid}
    # The stop: SIGTERM reached the child's own handler; its thread and atexit finished.
    assert (tmp_path / f"{pid}.thread").read_text() == "done"
    assert (tmp_path / f"{pid}.atexit").read_text() == "ran"
    assert not psutil.pid_exists(pid), "reaped, not a zombie"


def test_an_adopted_child_that_exits_is_restarted_from_its_command_line(
    tmp_path: Path,
) -> None:
    proc = supervisor(tmp_path, "exit7")
    try:
        wait_for(lambda: len(records(tmp_path)) >= 3)
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    result = outcome(tmp_path)
    pids, history = result["pids"], result["history"]
    assert isinstance(pids, dict) and isinstance(history, list)
    assert history[:2] == [7, 7], "the exit codes reached the supervisor"
    forked = records(tmp_path).pop(pids["child"])
    assert forked["name"] == "tests.support.forked_child"
    assert (tmp_path / f"{pids['child']}.atexit").read_text() == "ran"
    # A restart is the command line, exec'd: the module runs as ``__main__``, started as
    # ``subprocess.Popen`` would (the supervisor has no subprocess): no descriptor of the
    # supervisor's beyond 0-2, an empty signal mask, the supervisor's environment.
    restarted = [r for pid, r in records(tmp_path).items() if pid != pids["child"]]
    assert len(restarted) >= 2 and all(r["name"] == "__main__" for r in restarted)
    assert all(r["held_fd_open"] is False for r in restarted), restarted
    assert all(r["blocked"] == [] and r["extra"] == "given" for r in restarted)
    assert not any(psutil.pid_exists(pid) for pid in records(tmp_path))


def test_a_sigterm_during_the_hand_over_stops_the_service(tmp_path: Path) -> None:
    """Between the forks and the supervisor's handlers (``sysmon serve``'s exec) the
    signals stay blocked: a SIGTERM sent then waits, and stops the children once
    ``serve_forever`` is in charge, instead of killing the parent alone."""
    proc = supervisor(tmp_path, "wait", "handover-sigterm")
    assert proc.wait(timeout=20) == 0
    result = outcome(tmp_path)
    pids = result["pids"]
    assert isinstance(pids, dict) and result["code"] == 0
    child = pids["child"]
    assert (tmp_path / f"{child}.atexit").read_text() == "ran", "stopped cleanly"
    assert not psutil.pid_exists(child)


def test_no_fork_from_a_process_with_threads(tmp_path: Path) -> None:
    """A fork copies the calling thread only: from a threaded process, nothing is forked
    and the supervisor starts every child from its command line."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    child = Prepared([*CHILD, str(tmp_path), "exit7"], forked_child.main)
    try:
        assert fork_children({"child": child}, PARENT_ENV) == {}
    finally:
        stop.set()
        other.join()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)  # left blocked for the exec
    time.sleep(0.2)
    assert records(tmp_path) == {}


def test_a_broken_stderr_does_not_stop_the_supervisor(tmp_path: Path) -> None:
    """The bare supervisor writes its own log lines (no ``logging`` to swallow errors):
    with its stderr a pipe nobody reads any more, the restart it logs still happens."""
    from tests.support.process import free_port, service_env, stop, wait_healthy

    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysmon", "serve", "--port", str(port)],
        cwd=ROOT,
        env=service_env(folder / "sysmon.db"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        agent = int(wait_healthy(base, timeout=60)["agent"]["pid"])  # type: ignore[index]
        assert proc.stderr is not None
        proc.stderr.close()  # every later write to it: EPIPE
        os.kill(agent, signal.SIGKILL)  # the supervisor logs a warning, then restarts it

        def restarted() -> bool:
            pid = wait_healthy(base, timeout=30)["agent"]["pid"]  # type: ignore[index]
            return pid not in (None, agent)

        wait_for(restarted, timeout=60)
        assert proc.poll() is None, "the supervisor survived its broken stderr"
    finally:
        stop(proc)
    assert proc.returncode == 0
