"""The per-tick silence check: a silence another process adds applies at the next call,
while an unchanged file costs no query."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysmon.alerts.store import AlertStore


def test_silences_now_rereads_only_when_another_connection_committed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "alerts.db")
    agent = AlertStore(path)
    agent.open()
    server = AlertStore(path, create=False)  # the server process's own connection
    reads: list[float | None] = []
    real = agent.silences

    def counting(now: float | None = None) -> list:  # type: ignore[type-arg]
        reads.append(now)
        return real(now)

    monkeypatch.setattr(agent, "silences", counting)
    try:
        assert agent.silences_now(1000.0) == []
        assert agent.silences_now(1001.0) == []
        assert len(reads) == 1, "nothing committed since: no second query"

        silence = server.add_silence({"rule": "cpu"}, 1010.0, "deploy", 1001.5)
        assert [s.id for s in agent.silences_now(1002.0)] == [silence.id]
        assert len(reads) == 2, "the server's commit is seen by the very next call"

        assert [s.id for s in agent.silences_now(1009.0)] == [silence.id]
        assert agent.silences_now(1010.0) == [], "expired by the clock, without a query"
        assert len(reads) == 2

        assert server.delete_silence(silence.id)
        server.add_silence({"rule": "mem"}, 2000.0, "", 1011.0)
        assert [s.matchers for s in agent.silences_now(1011.0)] == [{"rule": "mem"}]
        assert len(reads) == 3
    finally:
        server.close()
        agent.close()
