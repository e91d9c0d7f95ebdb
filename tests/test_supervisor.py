"""What ``sysmon serve`` does with its children (``sysmon.forked``, ``sysmon.supervisor``):
each is forked running its command line already parsed (an *entry*) and must behave as
that command line exec'd would: its arguments and environment, default signal handlers
and an empty signal mask, its title in ``ps``, its exit code to the supervisor, atexit
handlers and non-daemon threads finished. The supervisor adopts forked children by pid,
restarts one that exits from its command line, and reaps every one (no zombies). A
SIGTERM that arrives while signals are blocked for the hand-over stops the service
once the supervisor's handlers are in. The whole service over forked children (their
parent, their titles, a SIGKILLed supervisor) is ``tests/test_entrypoints.py`` and
``tests/faults/test_isolation.py``."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from sysmon.forked import SIGNALS, Prepared, fork_children
from sysmon.supervisor import PARENT_ENV, ChildSpec, Supervisor, serve_forever
from tests.support import forked_child

CHILD = [sys.executable, "-m", "tests.support.forked_child"]


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    """``fork_children`` leaves ``SIGNALS`` blocked and everything frozen out of the
    collector, as ``sysmon serve`` wants before its exec; pytest's process gets both
    back, and the handlers ``serve_forever`` installs."""
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    yield
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    gc.unfreeze()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def supervise_while(body: Callable[[Supervisor], None], supervisor: Supervisor) -> None:
    """Run the supervision loop on this (main) thread, as ``serve_forever`` does, while
    ``body`` checks on another; then stop."""
    failed: list[BaseException] = []

    def check() -> None:
        try:
            body(supervisor)
        except BaseException as exc:
            failed.append(exc)
        finally:
            supervisor.request_stop()

    checker = threading.Thread(target=check, daemon=True)
    checker.start()
    supervisor.run()
    supervisor.stop(timeout=10)
    checker.join(10)
    if failed:
        raise failed[0]


def records(folder: Path) -> dict[int, dict[str, object]]:
    return {int(p.stem): json.loads(p.read_text()) for p in folder.glob("*.json")}


def prepared(folder: Path, mode: str) -> Prepared:
    return Prepared([*CHILD, str(folder), mode], forked_child.main)


def test_a_forked_child_runs_its_entry_as_its_command_line_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORK_TEST", "given")
    signal.signal(signal.SIGTERM, lambda *_: None)  # ours must not reach the child
    child = prepared(tmp_path, "wait")
    pids = fork_children({"child": child}, PARENT_ENV)
    assert set(pids) == {"child"}
    assert signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []), "left blocked"
    supervisor = Supervisor([ChildSpec("child", child.argv)], poll_seconds=0.02, adopted=pids)

    def body(supervisor: Supervisor) -> None:
        wait_for(lambda: len(records(tmp_path)) == 1)
        pid, record = next(iter(records(tmp_path).items()))
        assert pid == pids["child"] and supervisor.pids() == {"child": pid}
        argv = record["argv"]
        assert isinstance(argv, list) and argv[1:] == [str(tmp_path), "wait"]
        assert record["parent"] == str(os.getpid()) and record["extra"] == "given"
        assert record["sigterm"] == str(signal.SIG_DFL), "not the parent's handler"
        assert record["blocked"] == [], "the hand-over's mask is not the child's"
        process = psutil.Process(pid)
        assert process.ppid() == os.getpid()
        assert " ".join(process.cmdline()).split() == child.argv, "titled by its command line"

    supervise_while(body, supervisor)
    pid = pids["child"]
    # stop(): SIGTERM reached the child's own handler; its thread and atexit finished.
    assert (tmp_path / f"{pid}.thread").read_text() == "done"
    assert (tmp_path / f"{pid}.atexit").read_text() == "ran"
    assert not psutil.pid_exists(pid), "reaped, not a zombie"


def test_an_adopted_child_that_exits_is_restarted_from_its_command_line(
    tmp_path: Path,
) -> None:
    child = prepared(tmp_path, "exit7")
    pids = fork_children({"child": child}, PARENT_ENV)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    supervisor = Supervisor([ChildSpec("child", child.argv)], poll_seconds=0.02, adopted=pids)

    def body(supervisor: Supervisor) -> None:
        wait_for(lambda: supervisor.restarts()["child"] >= 2 and len(records(tmp_path)) >= 2)

    supervise_while(body, supervisor)
    assert supervisor._children[0].history[:2] == [7, 7], "the exit code reached it"
    forked = records(tmp_path).pop(pids["child"])
    assert (tmp_path / f"{pids['child']}.atexit").read_text() == "ran"
    assert not psutil.pid_exists(pids["child"])
    assert forked["name"] == "tests.support.forked_child"  # ran as an entry
    # The restart is the command line, exec'd: the module runs as ``__main__``.
    restarted = [r for pid, r in records(tmp_path).items() if pid != pids["child"]]
    assert restarted and all(r["name"] == "__main__" for r in restarted)


def test_no_fork_from_a_process_with_threads(tmp_path: Path) -> None:
    """A fork copies the calling thread only: from a threaded process, nothing is forked
    and the supervisor starts every child from its command line."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert fork_children({"child": prepared(tmp_path, "exit7")}, PARENT_ENV) == {}
    finally:
        stop.set()
        other.join()
    time.sleep(0.2)
    assert records(tmp_path) == {}


def test_a_sigterm_during_the_hand_over_stops_the_service(tmp_path: Path) -> None:
    """Between the forks and the supervisor's handlers (``sysmon serve``'s exec) the
    signals stay blocked: a SIGTERM sent then waits, and stops both children once
    ``serve_forever`` is in charge, instead of killing the parent alone."""
    server = prepared(tmp_path, "wait")
    lock_dir = tmp_path / "data"
    lock_dir.mkdir()
    pids = fork_children({"server": server}, PARENT_ENV)
    os.kill(os.getpid(), signal.SIGTERM)  # pending: blocked since the fork
    agent = ChildSpec("agent", ["/bin/sleep", "60"]).argv
    started = time.monotonic()
    assert serve_forever(list(agent), list(server.argv), str(lock_dir), pids) == 0
    assert time.monotonic() - started < 15
    assert (tmp_path / f"{pids['server']}.atexit").read_text() == "ran", "stopped cleanly"
    assert not psutil.pid_exists(pids["server"])
