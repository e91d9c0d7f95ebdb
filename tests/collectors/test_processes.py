from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from sysmon.collectors.processes import DETAILS_TTL, ProcessesCollector
from sysmon.collectors.redact import MAX_CHARS
from sysmon.collectors.source import parse_linux_stat

from .fakes import FakeSource, run_ticks, totals

GiB = 1024**3
MiB = 1024**2
ROW_KEYS = {
    "pid", "name", "user", "cpu_percent", "memory_percent", "rss_bytes", "status",
    "threads", "create_time", "ppid", "cmdline",
}  # fmt: skip


def make(state: dict[str, Any], **opts: Any) -> tuple[ProcessesCollector, FakeSource]:
    source = FakeSource(state)
    return ProcessesCollector(source, ProcessesCollector.Options(**opts)), source


def by_pid(rows: Any) -> dict[int, dict[str, Any]]:
    return {r["pid"]: dict(r) for r in rows}


def test_rows_and_totals_over_three_ticks(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    first, second, third = run_ticks(collector, source, ticks)
    assert totals(first) == {"count": 6, "threads": 19}
    assert all(set(r) == ROW_KEYS for r in first.rows)
    # first sighting: cpu 0.0, rows still there, ordered by memory as tie-break
    assert [r["pid"] for r in first.rows] == [100, 200, 1, 300, 400, 500]
    assert {r["cpu_percent"] for r in first.rows} == {0.0}

    rows = by_pid(second.rows)
    assert [r["pid"] for r in second.rows][:3] == [100, 200, 1]
    assert rows[100] == {
        "pid": 100, "name": "postgres", "user": "postgres", "cpu_percent": 150.0,
        "memory_percent": pytest.approx(100 * 500 * MiB / (8 * GiB), abs=0.01),
        "rss_bytes": 500 * MiB, "status": "sleeping", "threads": 8,
        "create_time": 1699990100.0, "ppid": None, "cmdline": "postgres -D /var/lib/postgresql",
    }  # fmt: skip
    assert rows[200]["cpu_percent"] == 25.0
    assert rows[200]["cmdline"] == "python3 app.py --password=***"
    assert rows[600]["cpu_percent"] == 0.0  # new process: no baseline yet
    assert rows[600]["memory_percent"] == 25.0
    assert rows[300]["name"] == "a-very-long-process-name"  # comm was cut to 15 chars
    assert rows[300]["cmdline"] == "/usr/bin/a-very-long-process-name --token ***"
    assert totals(second) == {"count": 7, "threads": 20}

    rows = by_pid(third.rows)
    assert rows[600]["cpu_percent"] == 100.0
    assert rows[300]["cpu_percent"] == 50.0
    # pid 200 was reused by a new process: no rate from the old one's counters
    assert rows[200]["cpu_percent"] == 0.0 and rows[200]["create_time"] == 1699990800.0


def test_access_denied_fields_and_details(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    rows = by_pid(run_ticks(collector, source, ticks[:2])[1].rows)
    # pid 500: cpu/memory denied, details denied -> row kept with neutral values
    assert rows[500]["user"] is None and rows[500]["cmdline"] == ""
    assert rows[500]["cpu_percent"] == 0.0 and rows[500]["rss_bytes"] == 0


def test_process_vanishing_between_listing_and_details(ticks: list[dict[str, Any]]) -> None:
    ticks[0]["process_details"]["100"] = {"error": "NoSuchProcess"}
    ticks[0]["process_details"]["1"] = {"error": "ZombieProcess"}
    collector, _source = make(ticks[0])
    rows = by_pid(collector.collect(1.0).rows)
    assert rows[100]["name"] == "postgres" and rows[100]["user"] is None
    assert rows[1]["cmdline"] == ""


def test_details_are_fetched_once_per_process(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    run_ticks(collector, source, ticks[:2])
    # 6 processes on tick 1 (pid 500 denied -> retried) + pid 600 and pid 500 on tick 2
    assert source.calls.count("process_details") == 8


def test_top_n_is_union_of_cpu_and_memory(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0], top_n=1)
    rows = run_ticks(collector, source, ticks[:2])[1].rows
    # top CPU is postgres (150 %), top memory is stress (2 GiB)
    assert [r["pid"] for r in rows] == [100, 600]


def test_cmdline_options(ticks: list[dict[str, Any]]) -> None:
    collector, _ = make(ticks[0], include_cmdline=False)
    assert {r["cmdline"] for r in collector.collect(1.0).rows} == {""}
    collector, _source = make(ticks[0], cmdline_max_chars=10)
    rows = by_pid(collector.collect(1.0).rows)
    assert rows[200]["cmdline"] == "python3 a…"


def test_listing_failure_fails_the_collector(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    source.fail["processes"] = PermissionError("/proc hidden")
    with pytest.raises(PermissionError):
        collector.collect(1.0)


def test_cmdline_is_capped_before_redaction(ticks: list[dict[str, Any]]) -> None:
    # Redaction is linear and only ever sees the capped text (details in test_redact.py).
    ticks[0]["process_details"]["200"]["cmdline"] = ["app", "--password", "Q" * 1_000_000]
    collector, _source = make(ticks[0], cmdline_max_chars=40)
    assert by_pid(collector.collect(1.0).rows)[200]["cmdline"] == "app --password ***…"
    ProcessesCollector.Options(cmdline_max_chars=MAX_CHARS)
    with pytest.raises(ValidationError, match="cmdline_max_chars"):
        ProcessesCollector.Options(cmdline_max_chars=MAX_CHARS + 1)


def _exec_state(ticks: list[dict[str, Any]], name: str, cmdline: list[str]) -> dict[str, Any]:
    """Tick 0 with pid 100 (postgres) turned into ``name``/``cmdline`` by an exec: same
    pid and start time, new kernel name and argv."""
    state = copy.deepcopy(ticks[0])
    for proc in state["processes"]:
        if proc["pid"] == 100:
            proc["name"] = name
    state["process_details"]["100"] = {"cmdline": cmdline, "username": "postgres"}
    return state


def test_exec_refreshes_name_and_cmdline(ticks: list[dict[str, Any]]) -> None:
    """After ``exec`` the row shows the new program at once (the kernel name changed),
    not the one the process started as."""
    collector, source = make(ticks[0])
    before = by_pid(collector.collect(1000.0).rows)[100]
    assert (before["name"], before["cmdline"]) == ("postgres", "postgres -D /var/lib/postgresql")
    source.set_state(_exec_state(ticks, "python3", ["python3", "worker.py", "--token", "s3"]))
    after = by_pid(collector.collect(1001.0).rows)[100]
    assert (after["name"], after["cmdline"]) == ("python3", "python3 worker.py --token ***")
    assert after["create_time"] == before["create_time"]


def test_exec_keeping_the_name_is_seen_within_the_ttl(ticks: list[dict[str, Any]]) -> None:
    """An exec that keeps the kernel name (postgres -> postgres with other args) shows
    once the details are due again (``DETAILS_TTL``), and not before."""
    collector, source = make(ticks[0])
    collector.collect(1000.0)
    source.set_state(_exec_state(ticks, "postgres", ["postgres", "--single"]))
    soon = by_pid(collector.collect(1001.0).rows)[100]
    assert soon["cmdline"] == "postgres -D /var/lib/postgresql"
    later = by_pid(collector.collect(1000.0 + DETAILS_TTL).rows)[100]
    assert later["cmdline"] == "postgres --single"


def test_a_renamed_kernel_thread_keeps_its_details_without_a_read(
    ticks: list[dict[str, Any]],
) -> None:
    """kworkers change their name with the work they do; that is not an exec, so the
    row follows the new name without reading details again (no argv, no new user)."""
    state = copy.deepcopy(ticks[0])
    for proc in state["processes"]:
        if proc["pid"] == 400:
            proc["name"], proc["ppid"] = "kworker/0:1-ev", 2
    state["process_details"]["400"] = {"cmdline": [], "username": "root"}
    collector, source = make(state)
    first = by_pid(collector.collect(1000.0).rows)[400]
    assert (first["name"], first["user"], first["cmdline"]) == ("kworker/0:1-ev", "root", "")
    for proc in state["processes"]:
        if proc["pid"] == 400:
            proc["name"] = "kworker/0:1-mm"
    state["process_details"]["400"] = {"cmdline": ["must", "not", "be", "read"]}
    source.set_state(state)
    asked: list[int] = []
    real = source.process_details

    def recording(pid: int, create_time: float, *, cmdline: bool) -> Any:
        asked.append(pid)
        return real(pid, create_time, cmdline=cmdline)

    source.process_details = recording  # type: ignore[method-assign]
    renamed = by_pid(collector.collect(1001.0).rows)[400]
    assert (renamed["name"], renamed["user"], renamed["cmdline"]) == ("kworker/0:1-mm", "root", "")
    assert 400 not in asked


def test_rows_carry_the_parent_pid(ticks: list[dict[str, Any]]) -> None:
    state = copy.deepcopy(ticks[0])
    for proc in state["processes"]:
        proc["ppid"] = 0 if proc["pid"] == 1 else 1
    collector, _ = make(state)
    rows = by_pid(collector.collect(1000.0).rows)
    assert rows[1]["ppid"] == 0 and rows[100]["ppid"] == 1


def test_linux_stat_parser_reads_the_parent_pid() -> None:
    stat = (
        b"4242 (my (odd) name) S 77 4242 4242 0 -1 4194560 100 0 0 0 25 5 0 0 20 0 3 0 "
        b"1000 1000000 256 18446744073709551615"
    )
    info = parse_linux_stat(4242, stat, clock_ticks=100.0, page_size=4096, boot=1.7e9)
    assert (info.ppid, info.name, info.num_threads, info.rss) == (
        77,
        "my (odd) name",
        3,
        256 * 4096,
    )
