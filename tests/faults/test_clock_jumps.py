"""The wall clock steps (NTP correction, a VM resumed, an admin's ``date -s``).

Defined behaviour:

* rates never use the wall clock: a run with wall-clock jumps emits exactly the same
  samples as a run without them (same source readings, same monotonic steps);
* a tick is stamped with the wall time at which it ran, whatever that is; sysmon does
  not invent or "repair" timestamps;
* storage accepts every tick: a backward step onto slots already stored replaces those
  slots (the newer reading wins, still one value per slot), a step into the past
  before any stored data or far into the future just stores there, a forward jump
  leaves a gap of nulls. No write is refused (a refused tick would block the write
  buffer behind it), nothing raises, and the file passes ``integrity_check``;
* rollups and retention (``maintain``) run with the new "now" without failing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sysmon.models import Snapshot
from sysmon.storage.base import RangeQuery
from tests.faults.harness import START, service

HOUR = 3600.0


def _samples(snaps: list[Snapshot]) -> list[list[tuple[object, ...]]]:
    return [sorted(tuple(s) for s in snap.samples()) for snap in snaps]


def test_rates_ignore_wall_clock_jumps(tmp_path: Path) -> None:
    with service(tmp_path / "steady") as svc:
        steady = svc.tick(5)
    with service(tmp_path / "jumpy") as svc:
        jumpy = svc.tick(1)
        svc.clock.set_wall(START - HOUR)
        jumpy += svc.tick(2)
        svc.clock.set_wall(START + 2 * HOUR)
        jumpy += svc.tick(2)
    assert [s.timestamp for s in jumpy] == [
        START,
        START - HOUR,
        START - HOUR + 1,
        START + 2 * HOUR,
        START + 2 * HOUR + 1,
    ]
    assert _samples(jumpy) == _samples(steady)
    rates = [s for s in steady[1].samples() if s.field.endswith("_per_sec")]
    assert rates and all(s.value >= 0 for s in rates)


def test_storage_survives_backward_and_forward_steps(tmp_path: Path) -> None:
    with service(tmp_path) as svc:
        first = svc.tick(5)  # START .. START+4
        # One more process from now on, so a re-written slot is told apart.
        last = svc.source._ticks[-1]
        last["processes"].append(dict(last["processes"][0], pid=9999))
        svc.source.set_state(last)
        svc.clock.set_wall(START + 2)  # back 3 s: slots START+2..+4 are written again
        overlap = svc.tick(3)
        svc.clock.set_wall(START - HOUR)  # back an hour: before anything stored
        svc.tick(2)
        svc.clock.set_wall(START + 2 * HOUR)  # forward two hours
        svc.tick(2)
        assert svc.pending == 0
        assert svc.stack.agent.writer.dropped == 0
        for _ in range(5):
            svc.store.maintain(svc.clock.time())

        assert svc.stored(START - HOUR, START - HOUR + 10) == [START - HOUR, START - HOUR + 1]
        assert svc.stored(START, START + 10) == [START + i for i in range(5)]
        assert svc.stored(START + 2 * HOUR, START + 2 * HOUR + 5) == [
            START + 2 * HOUR,
            START + 2 * HOUR + 1,
        ]
        # One value per slot; the re-written slots hold the later reading.
        res = svc.store.query(RangeQuery("processes", START, START + 4, resolution="raw"))
        counts = [next(s.value for s in t.samples() if s.field == "count") for t in first]
        later = next(s.value for s in overlap[-1].samples() if s.field == "count")
        assert later == counts[-1] + 1
        assert res.fields["count"] == [*counts[:2], later, later, later]
        assert len(res.timestamps) == 5

        r = svc.client.get(
            "/api/v1/metrics/memory",
            params={"start": START - 2 * HOUR, "end": START + 3 * HOUR},
        )
        assert r.status_code == 200
        assert svc.client.get("/api/v1/metrics/current").json()["timestamp"] == (
            START + 2 * HOUR + 1
        )
        assert svc.health()["status"] == "ok"
    with sqlite3.connect(tmp_path / "sysmon.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
