"""The processes collector reads what changed, not every process every tick.

A small fake host (``Host``) drives ``FakeSource``; ``FakeSource.reads`` records every
pid it was asked to read, so "how often was this process read" is asserted, not assumed.
The clock advances 1 s per tick and ``idle_refresh_seconds`` is 5, so an idle process
must be read once every 5 ticks (and a process that was read every tick after it was
first seen becomes idle after ``_ACTIVE_READS`` unchanged reads).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest

from sysmon.collectors.processes import _ACTIVE_READS, ProcessesCollector
from sysmon.collectors.source import ProcessInfo

from .fakes import FakeSource, load_ticks, totals

MiB = 1024**2
REFRESH = 5  # seconds = ticks
WARM = _ACTIVE_READS + 1  # ticks after which the processes present from the start are idle


def proc(pid: int, *, cpu: float = 1.0, rss: int = MiB, threads: int = 1,
         create: float | None = None, name: str | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "pid": pid,
        "name": name or f"p{pid}",
        "status": "sleeping",
        "create_time": 1_700_000_000.0 + pid if create is None else create,
        "cpu_times": {"user": cpu, "system": 0.0},
        "memory_info": {"rss": rss},
        "num_threads": threads,
    }


class Host:
    """Processes by pid (psutil-shaped dicts); ``tick`` collects one second later."""

    def __init__(self, procs: list[dict[str, Any]], source: FakeSource | None = None,
                 **opts: Any) -> None:  # fmt: skip
        self.procs = {p["pid"]: p for p in procs}
        self.base = load_ticks()[0]
        self.source = source or FakeSource(self._state())
        opts.setdefault("idle_refresh_seconds", REFRESH)
        self.collector = ProcessesCollector(self.source, ProcessesCollector.Options(**opts))
        self.now = 1000.0
        self.reads: list[list[int]] = []  # pids read, per tick

    def _state(self) -> dict[str, Any]:
        state = dict(self.base)
        state["processes"] = list(self.procs.values())
        state["process_details"] = {
            str(pid): {"cmdline": [p["name"], "--flag"], "username": "u"}
            for pid, p in self.procs.items()
        }
        return state

    def tick(self) -> Any:
        self.source.set_state(self._state())
        before = len(self.source.reads)
        out = self.collector.collect(self.now)
        self.reads.append(self.source.reads[before:])
        self.now += 1.0
        return out

    def truth(self) -> dict[str, float]:
        return {
            "count": float(len(self.procs)),
            "threads": float(sum(p["num_threads"] for p in self.procs.values())),
        }


def rows_by_pid(out: Any) -> dict[int, dict[str, Any]]:
    return {r["pid"]: dict(r) for r in out.rows}


def test_idle_processes_are_read_once_per_refresh_period_spread_evenly() -> None:
    host = Host([proc(pid) for pid in range(1000, 1200)])
    for _ in range(30):
        host.tick()
    assert all(sorted(r) == list(range(1000, 1200)) for r in host.reads[:WARM])
    steady = host.reads[WARM:]
    # flat cost: about 200 / 5 reads per tick, every tick (64 pid-modulo slots)
    per_tick = [len(r) for r in steady]
    assert all(30 <= n <= 50 for n in per_tick), per_tick
    # each idle process exactly once per 5 ticks
    for i in range(len(steady) - REFRESH + 1):
        window = [pid for r in steady[i : i + REFRESH] for pid in r]
        assert sorted(window) == list(range(1000, 1200))
    total = sum(len(r) for r in host.reads)
    assert total < 0.4 * 30 * 200  # vs reading everything every tick


def test_zero_refresh_reads_every_process_every_tick() -> None:
    host = Host([proc(pid) for pid in range(1000, 1010)], idle_refresh_seconds=0)
    for _ in range(8):
        host.tick()
    assert all(sorted(r) == list(range(1000, 1010)) for r in host.reads)


def test_a_long_gap_between_ticks_reads_everything() -> None:
    host = Host([proc(pid) for pid in range(1000, 1100)])
    for _ in range(WARM + 1):
        host.tick()
    assert len(host.reads[-1]) < 40
    host.now += REFRESH  # the scheduler was stalled for longer than the period
    host.tick()
    assert sorted(host.reads[-1]) == list(range(1000, 1100))


def test_idle_process_turning_busy_shows_within_the_period_with_its_cpu() -> None:
    idle = [proc(pid, rss=100 * MiB) for pid in range(1000, 1050)]
    hog = proc(1234, cpu=3.0, rss=MiB)  # small: only CPU can put it in the table
    host = Host([*idle, hog], top_n=3)
    for _ in range(WARM + 2):
        host.tick()
    start = len(host.reads)  # the hog is busy from now on: 1 CPU second per second
    last_read = max(i for i, r in enumerate(host.reads) if 1234 in r)
    seen = None
    for t in range(REFRESH + 1):
        hog["cpu_times"]["user"] = 3.0 + t
        out = host.tick()
        if 1234 in host.reads[-1] and t > 0:
            seen = len(host.reads) - 1
            break
        assert 1234 not in rows_by_pid(out)
        if 1234 in host.reads[-1]:
            last_read = len(host.reads) - 1
    assert seen is not None and seen - start <= REFRESH
    # CPU % over the whole time since the previous read (the busy part of it)
    busy_for, since_read = seen - start, seen - last_read
    assert rows_by_pid(out)[1234]["cpu_percent"] == round(busy_for / since_read * 100, 2)
    assert next(r["pid"] for r in out.rows) == 1234
    # now active: read every tick, exact CPU %
    for _ in range(3):
        hog["cpu_times"]["user"] += 1.0
        out = host.tick()
        assert 1234 in host.reads[-1]
        assert rows_by_pid(out)[1234]["cpu_percent"] == 100.0


def test_new_and_exited_processes_and_counts_are_exact_every_tick() -> None:
    host = Host([proc(pid, threads=pid % 7 + 1) for pid in range(1000, 1100)], top_n=500)
    for _ in range(WARM + 1):
        assert totals(host.tick()) == host.truth()
    host.procs[5000] = proc(5000, threads=9)
    out = host.tick()
    assert totals(out) == host.truth() and 5000 in rows_by_pid(out)
    assert rows_by_pid(out)[5000]["cpu_percent"] == 0.0  # first sighting
    idle_pid = next(pid for pid in range(1000, 1100) if pid not in host.reads[-1])
    del host.procs[idle_pid]
    out = host.tick()
    assert totals(out) == host.truth() and idle_pid not in rows_by_pid(out)
    assert idle_pid not in host.reads[-1]  # known from the listing, no read needed
    for step in range(12):  # churn: one in, one out, every tick
        host.procs[6000 + step] = proc(6000 + step, threads=2)
        del host.procs[1001 + step]
        assert totals(host.tick()) == host.truth()


def test_skipped_idle_process_keeps_its_last_values() -> None:
    host = Host([proc(pid, threads=4, rss=(pid - 999) * MiB) for pid in range(1000, 1064)],
                top_n=500)  # fmt: skip
    for _ in range(WARM):
        host.tick()
    out = host.tick()
    skipped = [pid for pid in range(1000, 1064) if pid not in host.reads[-1]]
    assert skipped
    rows = rows_by_pid(out)
    for pid in skipped:
        assert rows[pid]["rss_bytes"] == (pid - 999) * MiB and rows[pid]["threads"] == 4
        assert rows[pid]["cpu_percent"] == 0.0 and rows[pid]["name"] == f"p{pid}"
    # the table of an unchanged host is the same, row for row (rows are reused)
    again = host.tick()
    assert [dict(r) for r in again.rows] == [dict(r) for r in out.rows]


class VanishingSource(FakeSource):
    """Lists ``gone`` pids but cannot read them (exited between listing and read)."""

    gone: set[int] = set()
    reads_asked: list[int] = []

    def read_processes(self, pids: Any) -> Iterator[ProcessInfo]:
        self.reads_asked = list(pids)
        return super().read_processes(set(pids) - self.gone)


def test_listed_but_unreadable_process_is_not_counted() -> None:
    procs = [proc(pid) for pid in range(1000, 1010)]
    source = VanishingSource({})
    host = Host(procs, source=source)
    for _ in range(WARM + 1):
        host.procs[1003]["cpu_times"]["user"] += 0.5  # busy: read every tick
        host.tick()
    host.procs[2000] = proc(2000)
    source.gone = {1003, 2000}
    out = host.tick()
    assert {1003, 2000} <= set(source.reads_asked)
    assert totals(out)["count"] == 9.0  # 1003 (known) and 2000 (new) both unreadable
    assert {1003, 2000}.isdisjoint(rows_by_pid(out))
    source.gone = set()
    assert totals(host.tick()) == host.truth()  # listed and readable again: counted


def test_pid_reused_between_two_listings_never_inherits_the_baseline() -> None:
    host = Host([proc(pid, cpu=5.0) for pid in range(1000, 1064)], top_n=500)
    for _ in range(WARM):
        host.tick()
    host.tick()
    victim = next(pid for pid in range(1000, 1064) if pid not in host.reads[-1])
    details_calls = host.source.calls.count("process_details")
    # the idle process exits and a new, busy one gets its pid before the next listing
    host.procs[victim] = proc(victim, cpu=500.0, create=1_800_000_000.0, name="newcomer")
    for _ in range(REFRESH + 1):
        out = host.tick()
        row = rows_by_pid(out)[victim]
        if victim in host.reads[-1]:
            break
        # not read yet: the old process's row stands in (the documented window)
        assert row["name"] == f"p{victim}" and row["cpu_percent"] == 0.0
    assert victim in host.reads[-1], "re-read within the refresh period"
    # starts over: no CPU % from the old counters (500 - 5 s), new name and details
    assert row["cpu_percent"] == 0.0 and row["name"] == "newcomer"
    assert row["create_time"] == 1_800_000_000.0
    assert host.source.calls.count("process_details") == details_calls + 1
    assert totals(out) == host.truth()
    host.procs[victim]["cpu_times"]["user"] = 500.5
    out = host.tick()  # new baseline: read every tick while new
    assert rows_by_pid(out)[victim]["cpu_percent"] == 50.0


def test_pid_that_exits_and_returns_starts_over() -> None:
    host = Host([proc(1000, cpu=5.0), proc(1001, cpu=7.0)], top_n=10)
    host.tick()
    del host.procs[1001]
    host.tick()
    host.procs[1001] = proc(1001, cpu=90.0, create=1_800_000_000.0)
    out = host.tick()
    assert rows_by_pid(out)[1001]["cpu_percent"] == 0.0


class FailsMidRead(FakeSource):
    fail_after: int | None = None

    def read_processes(self, pids: Any) -> Iterator[ProcessInfo]:
        for i, info in enumerate(super().read_processes(pids)):
            if self.fail_after is not None and i == self.fail_after:
                raise PermissionError("/proc went away")
            yield info


def test_a_read_failing_midway_fails_the_tick_and_the_next_one_catches_up() -> None:
    source = FailsMidRead({})
    host = Host([proc(pid, threads=2) for pid in range(1000, 1200)], source=source)
    for _ in range(WARM + 1):
        host.tick()
    source.fail_after = 5
    host.procs[5000] = proc(5000, threads=3)
    del host.procs[1100]
    with pytest.raises(PermissionError):
        host.tick()
    source.fail_after = None
    out = host.tick()
    assert totals(out) == host.truth()
    # the slots due during the failed tick are read now: no idle gap beyond the period
    for _ in range(10):
        host.tick()
    reads_at: dict[int, list[int]] = {}
    for i, r in enumerate(host.reads):
        for pid in r:
            reads_at.setdefault(pid, []).append(i)
    for pid, ticks in reads_at.items():
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        assert max(gaps, default=0) <= REFRESH + 1, (pid, ticks)


def test_busy_processes_are_read_every_tick_and_rank_first() -> None:
    idle = [proc(pid, rss=50 * MiB) for pid in range(1000, 1100)]
    busy = [proc(pid, cpu=10.0, rss=MiB) for pid in (7, 8)]
    host = Host([*idle, *busy], top_n=2)
    for i in range(12):
        host.procs[7]["cpu_times"]["user"] += 0.5  # 50 %
        host.procs[8]["cpu_times"]["user"] += 0.25  # 25 %
        out = host.tick()
        assert {7, 8} <= set(host.reads[-1])
        if i:
            assert [(r["pid"], r["cpu_percent"]) for r in out.rows][:2] == [(7, 50.0), (8, 25.0)]
    assert len(out.rows) == 4  # top 2 by CPU + top 2 by memory


def test_options_validate_the_refresh_period() -> None:
    assert ProcessesCollector.Options().idle_refresh_seconds == 5.0
    with pytest.raises(ValueError, match="idle_refresh_seconds"):
        ProcessesCollector.Options(idle_refresh_seconds=-1)


def test_thread_count_changes_are_followed() -> None:
    host = Host([proc(pid, threads=2) for pid in range(1000, 1064)])
    for _ in range(WARM + 1):
        host.tick()
    for step in range(REFRESH + 1):  # idle processes gain threads: seen within the period
        for p in host.procs.values():
            p["num_threads"] = 3 + step
            p["cpu_times"]["user"] += 0.01
        out = host.tick()
    assert totals(out) == host.truth()
    host.procs[1000]["num_threads"] = 40  # now active: followed every tick
    assert totals(host.tick()) == host.truth()


@pytest.mark.parametrize("refresh", [0, REFRESH])
def test_top_by_memory_follows_every_change(refresh: float) -> None:
    """The top-N by RSS is re-sorted only when a change could alter it; it must still
    equal a full sort of what the collector knows, whatever changes."""
    rng = random.Random(7)
    host = Host([proc(pid, rss=rng.randrange(1, 10**6) * 4096) for pid in range(1000, 1040)],
                top_n=4, idle_refresh_seconds=refresh)  # fmt: skip
    next_pid = 2000
    for _ in range(60):
        for pid in rng.sample(sorted(host.procs), 3):  # grow, shrink, or exit
            if rng.random() < 0.2:
                del host.procs[pid]
            else:
                host.procs[pid]["memory_info"]["rss"] = rng.randrange(1, 10**6) * 4096
        if rng.random() < 0.3:
            host.procs[next_pid] = proc(next_pid, rss=rng.randrange(1, 10**6) * 4096)
            next_pid += 1
        out = host.tick()
        known = host.collector._procs
        expected = sorted(known, key=lambda pid: known[pid].rss, reverse=True)[:4]
        assert {r["pid"] for r in out.rows} == set(expected)
        if not refresh:
            truth = sorted(host.procs, key=lambda p: host.procs[p]["memory_info"]["rss"])
            assert set(expected) == set(truth[-4:])
