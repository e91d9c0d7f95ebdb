"""The agent's files hold command lines: private by construction."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sysmon.agent.lock import DataDirLock, DataDirLockedError, is_held
from sysmon.agent.service import Agent
from sysmon.clock import FakeClock
from sysmon.config import load_settings
from tests.collectors.fakes import FakeSource, load_ticks
from tests.support.stack import short_socket


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_0600_in_a_0700_directory_and_socket_0600(tmp_path: Path) -> None:
    folder = tmp_path / "fresh" / "data"
    settings = load_settings(None, database={"path": str(folder / "sysmon.db")})
    sock = short_socket()
    agent = Agent(settings, source=FakeSource(load_ticks()[0]), clock=FakeClock(), channel=sock)
    agent.start(schedule=False)
    try:
        agent.tick()
        assert mode(folder) == 0o700
        for name in ("sysmon.db", "sysmon.db-wal", "sysmon.db-shm"):
            assert mode(folder / name) == 0o600, name
        assert stat.S_ISSOCK(sock.stat().st_mode) and mode(sock) == 0o600
    finally:
        agent.stop()
    assert not sock.exists(), "the socket goes away with the agent"


def test_an_existing_database_is_made_private(tmp_path: Path) -> None:
    db = tmp_path / "sysmon.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    settings = load_settings(None, database={"path": str(db)})
    agent = Agent(settings, source=FakeSource(load_ticks()[0]), channel=short_socket())
    agent.start(schedule=False)
    try:
        assert mode(db) == 0o600
    finally:
        agent.stop()


def test_lock_is_exclusive_and_names_the_holder(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    try:
        assert is_held(tmp_path)
        with pytest.raises(DataDirLockedError, match=r"is held by pid \d+"):
            DataDirLock(tmp_path).acquire()
    finally:
        first.release()
    assert not is_held(tmp_path)
    again = DataDirLock(tmp_path)
    again.acquire()  # free once released (or once the holder dies: the kernel drops it)
    again.release()
