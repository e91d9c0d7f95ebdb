"""The per-tick silence check: a silence another process adds or deletes applies at the
next call, read without SQLAlchemy, and unchanged rows are not decoded again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sysmon.alerts.store import AlertStore


def test_silences_now_matches_silences_and_sees_the_other_process_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "alerts.db")
    agent = AlertStore(path)
    agent.open()
    server = AlertStore(path, create=False)  # the server process's own connection
    fallbacks: list[float | None] = []
    real = agent.silences

    def counting(now: float | None = None) -> list:  # type: ignore[type-arg]
        fallbacks.append(now)
        return real(now)

    monkeypatch.setattr(agent, "silences", counting)
    try:
        assert agent.silences_now(1000.0) == []

        silence = server.add_silence({"rule": "cpu"}, 1010.0, "deploy", 1001.5)
        first = agent.silences_now(1002.0)
        assert first == real(1002.0) and [s.id for s in first] == [silence.id]
        assert agent.silences_now(1009.0) is first, "same rows: not decoded again"
        assert agent.silences_now(1010.0) == [], "expired at its until"

        assert server.delete_silence(silence.id)
        server.add_silence({"rule": "mem"}, 2000.0, "", 1011.0)
        assert [s.matchers for s in agent.silences_now(1011.0)] == [{"rule": "mem"}]
        assert fallbacks == [], "all of it on the plain sqlite3 path"
    finally:
        server.close()
        agent.close()


def test_silences_now_falls_back_when_the_plain_read_fails(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    agent = AlertStore(str(path))
    agent.open()
    try:
        agent.add_silence({"rule": "cpu"}, 50.0, "", 1.0)
        agent._probe = sqlite3.connect(":memory:", check_same_thread=False)  # no such table
        assert [s.matchers for s in agent.silences_now(2.0)] == [{"rule": "cpu"}]
    finally:
        agent.close()
