"""``Supervisor(fork=True)``, what ``sysmon serve`` runs: a ``<python> -m <module>``
child is forked from the supervisor (sharing its preloaded modules) and must behave as
the exec'd ``python -m`` would: the module runs as ``__main__`` with its arguments and
environment, its exit code reaches the supervisor, atexit handlers and non-daemon
threads finish, SIGTERM is the child's own, and nothing is left as a zombie. Any other
command line is exec'd as before. The whole service over forked children (and their process titles)
is ``tests/faults/test_isolation.py`` and ``tests/test_entrypoints.py``."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from sysmon import supervisor as supervisor_module
from sysmon.supervisor import ChildSpec, Supervisor, forkable, preload

CHILD = [sys.executable, "-m", "tests.support.forked_child"]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def supervise_while(body: Callable[[Supervisor], None], *specs: ChildSpec) -> Supervisor:
    """Run the supervision loop on this (main) thread, as ``serve_forever`` does (forks
    are taken from the main thread only), while ``body`` checks on another; then stop."""
    supervisor = Supervisor(list(specs), poll_seconds=0.02, fork=True)
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
    return supervisor


def records(folder: Path) -> dict[int, dict[str, object]]:
    return {int(p.stem): json.loads(p.read_text()) for p in folder.glob("*.json")}


def test_a_forked_child_runs_its_module_like_python_m(tmp_path: Path) -> None:
    env = {**os.environ, "FORK_TEST": "given"}
    spec = ChildSpec("child", [*CHILD, str(tmp_path), "wait"], env=env)
    seen: list[int] = []

    def body(supervisor: Supervisor) -> None:
        wait_for(lambda: len(records(tmp_path)) == 1)
        pid, record = next(iter(records(tmp_path).items()))
        seen.append(pid)
        assert supervisor.pids() == {"child": pid}
        assert record["name"] == "__main__"
        argv = record["argv"]
        assert isinstance(argv, list)  # argv[0] the module's file, as `python -m` sets it
        assert argv[0].endswith("tests/support/forked_child.py")
        assert argv[1:] == [str(tmp_path), "wait"]
        assert record["parent"] == str(os.getpid()) and record["extra"] == "given"
        assert record["sigterm"] == str(signal.SIG_DFL), "not the supervisor's handler"
        assert psutil.Process(pid).ppid() == os.getpid()

    supervise_while(body, spec)
    (pid,) = seen
    # stop(): SIGTERM reached the child's own handler; its thread and atexit finished.
    assert (tmp_path / f"{pid}.thread").read_text() == "done"
    assert (tmp_path / f"{pid}.atexit").read_text() == "ran"
    assert not psutil.pid_exists(pid), "reaped, not a zombie"


def test_a_forked_child_that_exits_is_restarted_and_its_code_seen(tmp_path: Path) -> None:
    spec = ChildSpec("child", [*CHILD, str(tmp_path), "exit7"])

    def body(supervisor: Supervisor) -> None:
        wait_for(lambda: supervisor.restarts()["child"] >= 2 and len(records(tmp_path)) >= 2)

    supervisor = supervise_while(body, spec)
    assert supervisor._children[0].history[:2] == [7, 7]
    first = min(records(tmp_path))
    assert (tmp_path / f"{first}.atexit").read_text() == "ran"
    assert not psutil.pid_exists(first)


def test_other_command_lines_and_other_threads_exec(tmp_path: Path) -> None:
    sleeper = ChildSpec("sleeper", ["/bin/sleep", "30"])
    seen: list[int] = []

    def body(supervisor: Supervisor) -> None:
        wait_for(lambda: supervisor.pids()["sleeper"] is not None)
        pid = supervisor.pids()["sleeper"]
        assert pid is not None
        seen.append(pid)
        assert psutil.Process(pid).cmdline() == ["/bin/sleep", "30"]

    supervise_while(body, sleeper)
    assert not psutil.pid_exists(seen[0])
    # A loop on another thread never forks: the module is exec'd by a new interpreter.
    background = Supervisor([ChildSpec("child", [*CHILD, str(tmp_path), "wait"])], fork=True)
    background.start()
    try:
        wait_for(lambda: background.pids()["child"] is not None)
        pid = background.pids()["child"]
        assert pid is not None
        wait_for(lambda: "-m" in psutil.Process(pid).cmdline())
    finally:
        background.stop(timeout=10)


def test_after_an_upgrade_on_disk_children_are_executed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preloaded module's file changed (pip upgraded sysmon under a running service):
    a forked child would run the old code beside new files, so it is exec'd instead."""
    (tmp_path / "preloaded_mod.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(supervisor_module, "_loaded", {})
    monkeypatch.setattr(supervisor_module, "_stale", False)
    try:
        preload(["preloaded_mod"])
    finally:
        gc.unfreeze()  # preload froze pytest's own objects
    assert str(tmp_path / "preloaded_mod.py") in supervisor_module._loaded
    later = time.time_ns() + 5_000_000_000
    os.utime(tmp_path / "preloaded_mod.py", ns=(later, later))
    out = tmp_path / "out"
    out.mkdir()

    def body(supervisor: Supervisor) -> None:
        wait_for(lambda: supervisor.pids()["child"] is not None)
        pid = supervisor.pids()["child"]
        assert pid is not None
        wait_for(lambda: "tests.support.forked_child" in psutil.Process(pid).cmdline())

    supervise_while(body, ChildSpec("child", [*CHILD, str(out), "wait"]))
    assert supervisor_module._stale


def test_forkable() -> None:
    assert forkable([*CHILD, "x"]) == "tests.support.forked_child"
    assert forkable(["/usr/bin/python3.9", "-m", "sysmon"]) is None  # another interpreter
    assert forkable([sys.executable, "-c", "pass"]) is None
    assert forkable([sys.executable]) is None
