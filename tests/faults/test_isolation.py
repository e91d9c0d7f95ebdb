"""Each incident that once stopped collection of every metric, caused for real against
``sysmon serve`` (agent and server processes): every other collector's raw series stays
complete over the window, and health names what went wrong.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sysmon.errors import QueryError
from tests.faults.stack_process import (
    BASE_METRICS,
    Monitor,
    alive,
    monitor,
    now_slot,
    wait_for,
)
from tests.support.process import ROOT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux processes and /proc")


def assert_complete(mon: Monitor, metrics: tuple[str, ...], start: float, end: float) -> None:
    mon.wait_stored(end)
    gaps = {m: mon.missing(m, start, end) for m in metrics}
    assert all(not g for g in gaps.values()), f"raw samples missing: {gaps}"


def test_processes_with_huge_adversarial_command_lines_cost_no_sample(tmp_path: Path) -> None:
    shapes = ["a" * 120_000, "a." * 60_000, "a://" * 30_000, "-a=" * 40_000, ":@" * 60_000]
    with monitor(tmp_path) as mon:
        start = now_slot() + 1
        hostile = [
            subprocess.Popen(["bash", "-c", 'exec -a "$0" sleep 60', shape]) for shape in shapes
        ]
        try:
            time.sleep(8)  # several ticks with the processes listed
            end = now_slot() - 1
            assert_complete(mon, BASE_METRICS, start, end)
            health = mon.health()
            assert health["status"] == "ok", health["problems"]
            assert health["collectors"]["processes"]["missed_last_minute"] == 0
            # The processes collector kept up: each run well below its deadline.
            assert health["collectors"]["processes"]["last_duration_ms"] < 800
        finally:
            for p in hostile:
                p.kill()
                p.wait()


def test_command_lines_that_are_not_utf8_cost_no_sample(tmp_path: Path) -> None:
    """The OS hands over such bytes as lone surrogates (``surrogateescape``), which JSON
    encoders refuse: the agent once failed every tick's live frame on them, and with it
    the tick's samples. They are now shown as ``\\xff`` escapes, redacted as usual."""
    code = "b = bytearray(64_000_000); import time; time.sleep(60)"  # high in the memory top
    with monitor(tmp_path) as mon:
        start = now_slot() + 1
        odd = subprocess.Popen(
            [b"bad\xff\xfename", "-c", code, b"--password=s\xffcret", b"\xfe"],
            executable=sys.executable,
        )
        try:
            time.sleep(8)  # several ticks with the process listed
            end = now_slot() - 1
            assert_complete(mon, BASE_METRICS, start, end)
            health = mon.health()
            assert health["status"] == "ok", health["problems"]
            rows = httpx.get(
                f"{mon.base}/api/v1/metrics/processes",
                params={"sort": "memory", "limit": 100},
                timeout=10,
            ).json()["processes"]
            mine = [r for r in rows if r["pid"] == odd.pid]
            assert mine, "the process is not in the memory top 100"
            cmdline = mine[0]["cmdline"]
            assert cmdline.startswith("bad\\xff\\xfename -c ")
            assert "--password=" in cmdline and "cret" not in cmdline
            assert cmdline.endswith("\\xfe")
            assert "failed" not in mon.log_text()
        finally:
            odd.kill()
            odd.wait()


def test_a_collector_past_its_deadline_loses_only_its_own_samples(tmp_path: Path) -> None:
    config = {
        "collection": {"plugins": ["tests.support.sleepy"]},
        "collectors": {"sleepy": {"sleep_seconds": 2.5}},
    }
    with monitor(tmp_path, config) as mon:
        start = now_slot() + 1
        time.sleep(7)
        end = now_slot() - 1
        assert_complete(mon, BASE_METRICS, start, end)
        with pytest.raises(QueryError):  # every run was late: none of its samples stored
            mon.missing("sleepy", start, end)
        health = mon.health()
        assert health["status"] == "degraded"
        sleepy = health["collectors"]["sleepy"]
        assert sleepy["missed_last_minute"] >= 3
        assert "deadline" in sleepy["last_reason"]
        assert any(p.startswith("collector sleepy missed") for p in health["problems"])
        for name in BASE_METRICS:
            assert health["collectors"][name]["missed_last_hour"] == 0, name
        assert "collector sleepy failing" in mon.log_text()


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_thousands_of_idle_connections_cost_no_sample(tmp_path: Path) -> None:
    """With 256 descriptors per process, 2,000 idle sockets against the API: the server
    refuses what it cannot hold; the agent, whose descriptors are its own, collects on."""
    config = {"server": {"limits": {"max_connections": 100, "header_timeout_seconds": 2}}}
    with monitor(tmp_path, config, preexec=_low_fd_limit) as mon:
        port = int(mon.base.rsplit(":", 1)[1])
        start = now_slot() + 1
        idle: list[socket.socket] = []
        try:
            for _ in range(2000):
                # A refused or reset connection is the server protecting itself.
                with contextlib.suppress(OSError):
                    idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            time.sleep(5)
            end = now_slot() - 1
            # The server drops what it cannot hold and times out the idle rest, so it
            # answers again while the flood's sockets are still open on this side.
            wait_for(lambda: _answers(mon.base), 20, "the API to answer during the flood")
            assert_complete(mon, BASE_METRICS, start, end)
            health = mon.health()
            for name in BASE_METRICS:
                assert health["collectors"][name]["missed_last_hour"] == 0, health
        finally:
            for s in idle:
                s.close()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_second_agent_refuses_naming_the_holder(tmp_path: Path) -> None:
    with monitor(tmp_path) as mon:
        holder = mon.health()["agent"]["pid"]
        t0 = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "sysmon", "--config", str(mon.config), "agent"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        took = time.monotonic() - t0
        assert second.returncode == 3
        assert f"is held by pid {holder}" in second.stderr
        assert "not starting a second agent" in second.stderr
        assert took < 10
        assert mon.health()["agent"]["pid"] == holder, "the first agent is untouched"


def test_serve_beside_an_agent_it_did_not_start_serves_it_then_starts_its_own(
    tmp_path: Path,
) -> None:
    """``sysmon serve`` on a data directory another agent holds forks only the server,
    which serves that agent's ticks; once the lock frees, its supervisor starts an agent
    of its own (from the command line: nothing is left to fork from)."""
    import psutil
    import yaml

    from sysmon.agent.lock import is_held
    from tests.support.process import service_env

    data = tmp_path / "data"
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({"database": {"path": str(data / "sysmon.db")}}))
    env = service_env(data / "sysmon.db")
    env.pop("SYSMON_DATABASE__PATH")
    other = subprocess.Popen(
        [sys.executable, "-m", "sysmon", "--config", str(config), "agent"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: is_held(data), 30, "the other agent to hold the data directory")
        with monitor(tmp_path) as mon:
            assert mon.health()["agent"]["pid"] == other.pid, "its ticks are served"
            children = psutil.Process(mon.proc.pid).children()
            assert [c.pid for c in children] == [mon.health()["server"]["pid"]]
            assert "the data directory has an agent" in mon.log_text()
            other.terminate()
            assert other.wait(timeout=30) == 0
            wait_for(
                lambda: mon.health()["agent"]["pid"] not in (None, other.pid),
                30,
                "an agent of its own",
            )
            ours = psutil.Process(mon.health()["agent"]["pid"])
            assert ours.ppid() == mon.proc.pid
    finally:
        if other.poll() is None:
            other.kill()
            other.wait()


def test_a_damaged_database_file_shows_in_health_and_the_log(tmp_path: Path) -> None:
    with monitor(tmp_path, {"agent": {"integrity_check_seconds": 1}}) as mon:
        assert mon.health()["database"]["integrity"]["ok"] is True
        size = mon.db.stat().st_size
        with mon.db.open("r+b") as fh:  # overwritten in place, as a stray `dd` would
            fh.write(os.urandom(size))
        wait_for(
            lambda: any("database integrity" in p for p in mon.health()["problems"]),
            30,
            "health to report the damaged file",
        )
        health = mon.health()
        assert health["status"] == "degraded"
        assert health["database"]["integrity"]["ok"] is False
        assert "database integrity problem" in mon.log_text()


def test_killing_the_server_never_interrupts_collection(tmp_path: Path) -> None:
    with monitor(tmp_path) as mon:
        first = mon.health()["server"]["pid"]
        start = now_slot() + 1
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _answers(mon.base), 30, "the server to be restarted")
        second = mon.health()["server"]["pid"]
        assert second != first
        time.sleep(2)
        end = now_slot() - 1
        assert_complete(mon, BASE_METRICS, start, end)
        assert "server (pid" in mon.log_text() and "restarting" in mon.log_text()


def test_a_killed_agent_is_seen_in_health_and_comes_back(tmp_path: Path) -> None:
    with monitor(tmp_path) as mon:
        first = mon.health()["agent"]["pid"]
        os.kill(first, signal.SIGKILL)
        wait_for(
            lambda: (
                mon.health()["status"] == "degraded"
                and any("agent" in p for p in mon.health()["problems"])
            ),
            15,
            "health to say the agent is gone",
        )
        wait_for(
            lambda: (
                mon.health()["agent"]["pid"] not in (None, first) and mon.health()["status"] == "ok"
            ),
            30,
            "a new agent",
        )
        assert not alive(first)


def test_sigkill_of_the_supervisor_leaves_no_orphans(tmp_path: Path) -> None:
    with monitor(tmp_path) as mon:
        health = mon.health()
        agent, server = health["agent"]["pid"], health["server"]["pid"]
        mon.proc.kill()
        mon.proc.wait()
        wait_for(lambda: not alive(agent) and not alive(server), 15, "children to exit")


def test_sigterm_stops_both_cleanly(tmp_path: Path) -> None:
    with monitor(tmp_path) as mon:
        health = mon.health()
        agent, server = health["agent"]["pid"], health["server"]["pid"]
        mon.proc.terminate()
        assert mon.proc.wait(timeout=30) == 0
        assert not alive(agent) and not alive(server)
        assert "sysmon agent stopped" in mon.log_text()


def test_reload_changes_rules_without_a_gap_and_refuses_a_bad_file(tmp_path: Path) -> None:
    import yaml

    with monitor(tmp_path) as mon:
        start = now_slot() + 1
        body = yaml.safe_load(mon.config.read_text())
        body["alerts"] = {
            "rules": [{"name": "mem_reloaded", "metric": "memory.percent", "threshold": 0}]
        }
        mon.config.write_text(yaml.safe_dump(body))
        reload = [sys.executable, "-m", "sysmon", "--config", str(mon.config), "reload"]
        assert subprocess.run(reload, cwd=ROOT, timeout=30).returncode == 0

        def rules() -> list[str]:
            r = httpx.get(f"{mon.base}/api/v1/alerts/rules", timeout=5).json()
            return [rule["name"] for rule in r["rules"]]

        wait_for(lambda: rules() == ["mem_reloaded"], 15, "the reloaded rule")
        wait_for(
            lambda: any(
                a["rule"] == "mem_reloaded"
                for a in httpx.get(f"{mon.base}/api/v1/alerts", timeout=5).json()["alerts"]
            ),
            15,
            "the new rule to fire",
        )
        mon.config.write_text(mon.config.read_text() + "\ncollectors: {nope: {}}\n")
        refused = subprocess.run(reload, cwd=ROOT, timeout=30, capture_output=True, text=True)
        assert refused.returncode == 2
        assert "collectors.nope" in refused.stderr
        # A SIGHUP straight to the agent with the bad file: refused there too.
        os.kill(mon.health()["agent"]["pid"], signal.SIGHUP)
        wait_for(lambda: "reload refused" in mon.log_text(), 15, "the refusal in the log")
        assert rules() == ["mem_reloaded"], "the running configuration stays"
        time.sleep(1)
        end = now_slot() - 1
        assert_complete(mon, BASE_METRICS, start, end)


def test_a_fresh_monitor_logs_no_error(tmp_path: Path) -> None:
    """First start: the agent creates the database, a child process migrates the alert
    tables and the integrity watch checks the file, all at once; the server reads
    alongside. None of it may cost an error (the integrity check once dropped the agent's
    SQLite locks, and the migration child then removed the WAL under it)."""
    with monitor(tmp_path, {"agent": {"integrity_check_seconds": 1}}) as mon:
        start = now_slot() + 1
        time.sleep(6)
        assert mon.health()["status"] == "ok"
        assert_complete(mon, BASE_METRICS, start, now_slot() - 1)
        log = mon.log_text()
    assert " ERROR " not in log and "Traceback" not in log, log[-3000:]
