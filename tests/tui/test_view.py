"""Panels and process rows from canned API documents (the shapes of docs/CONTRACTS.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sysmon.tui.client import NOT_YET, status_message, transport_message
from sysmon.tui.view import (
    alerts_text,
    cpu_text,
    disk_text,
    header_text,
    health_text,
    memory_text,
    network_text,
    order_processes,
    process_cells,
    server_sort,
)

GiB = 1024**3
SNAPSHOT: dict[str, Any] = {
    "timestamp": 1_800_000_100.0,
    "metrics": {
        "cpu": {
            "total": {
                "percent": 12.5,
                "user_percent": 8.0,
                "system_percent": 4.5,
                "load_1": 0.3,
                "load_5": 0.25,
                "load_15": 0.2,
            },
            "core": {"1": {"percent": 95.0}, "0": {"percent": 10.0}, "10": {"percent": 0.0}},
        },
        "memory": {
            "total": {
                "percent": 41.0,
                "used_bytes": 3 * GiB,
                "total_bytes": 8 * GiB,
                "available_bytes": 5 * GiB,
                "swap_total_bytes": 2 * GiB,
                "swap_used_bytes": 0,
                "swap_percent": 0.0,
            }
        },
        "disk": {
            "total": {"read_bytes_per_sec": 2048.0, "write_bytes_per_sec": 0.0},
            "device": {"sda": {"read_bytes_per_sec": 2048.0, "busy_percent": 3.0}},
            "mount": {"/": {"percent": 50.0, "used_bytes": 20 * GiB, "total_bytes": 40 * GiB}},
        },
        "network": {
            "total": {"bytes_recv_per_sec": 3 * 1024**2, "bytes_sent_per_sec": 1024.0},
            "interface": {
                "lo": {"bytes_recv_per_sec": 10.0, "bytes_sent_per_sec": 10.0},
                "eth0": {"bytes_recv_per_sec": 3 * 1024**2, "bytes_sent_per_sec": 1024.0},
            },
        },
        "processes": {"total": {"count": 210, "threads": 900}},
    },
    "processes": [],
    "errors": {},
}


def lines(text: Any) -> list[str]:
    return [line.rstrip() for line in text.plain.split("\n")]


def test_cpu_panel_total_cores_in_numeric_order_and_load() -> None:
    shown = lines(cpu_text(SNAPSHOT))
    assert shown[0].startswith("Total ") and "12.5%" in shown[0]
    assert "usr 8.0%  sys 4.5%" in shown[0] and "wait" not in shown[0]  # absent, not 0
    assert [line.split()[0] for line in shown[1:4]] == ["0", "1", "10"]
    assert shown[2].endswith("95.0%")
    assert shown[4] == "load 0.30 0.25 0.20  210 procs 900 threads"


def test_many_cores_share_lines() -> None:
    snapshot = {"metrics": {"cpu": {"core": {str(i): {"percent": 1.0} for i in range(32)}}}}
    shown = lines(cpu_text(snapshot))
    assert len(shown) == 1 + 8 + 1  # total, 32 cores in 4 columns, load
    assert shown[-1] == "load - - -"  # a snapshot without totals shows dashes, not zeros


def test_memory_panel() -> None:
    shown = lines(memory_text(SNAPSHOT))
    assert "41.0%" in shown[0] and shown[0].endswith("3.0 GiB / 8.0 GiB")
    assert shown[1].strip() == "avail 5.0 GiB"
    assert shown[2].startswith("Swap ") and shown[2].endswith("0 B / 2.0 GiB")
    assert shown[3].split() == ["in", "-", "out", "-"]


def test_no_swap_says_so() -> None:
    snapshot = {"metrics": {"memory": {"total": {"swap_total_bytes": 0}}}}
    assert lines(memory_text(snapshot))[-1] == "Swap none"


def test_disk_panel_mounts_then_devices_then_all() -> None:
    shown = lines(disk_text(SNAPSHOT))
    assert shown[0].startswith("/ ") and "50.0%" in shown[0]
    assert shown[0].endswith("20.0 GiB / 40.0 GiB")
    assert shown[1].split() == ["sda", "R", "2.0", "KiB/s", "W", "-", "busy", "3.0%"]
    assert shown[2].split() == ["all", "R", "2.0", "KiB/s", "W", "0", "B/s"]


def test_disk_panel_caps_long_lists() -> None:
    mounts = {f"/m{i:02d}": {"percent": 1.0} for i in range(12)}
    shown = lines(disk_text({"metrics": {"disk": {"mount": mounts}}}, max_rows=8))
    assert shown[8] == "+4 more"


def test_network_panel_busiest_first_then_total() -> None:
    shown = lines(network_text(SNAPSHOT))
    assert [line.split()[0] for line in shown] == ["eth0", "lo", "total"]
    assert shown[0].split() == ["eth0", "↓", "3.0", "MiB/s", "↑", "1.0", "KiB/s"]


def test_alerts_firing_first_with_age_from_the_server_clock() -> None:
    alerts = [
        {"rule": "cpu_high", "state": "pending", "severity": "warning", "metric": "cpu.percent",
         "labels": {}, "value": 85.0, "operator": ">", "threshold": 80, "since": 1_800_000_090.0},
        {"rule": "disk_high", "state": "firing", "severity": "critical", "metric": "disk.percent",
         "labels": {"mount": "/"}, "value": 91.5, "operator": ">", "threshold": 85,
         "since": 1_799_999_000.0, "firing_since": 1_800_000_000.0, "silenced": True},
    ]  # fmt: skip
    shown = lines(alerts_text(alerts, now=1_800_000_100.0))
    assert shown == [
        "FIRING   critical disk_high  disk.percent{mount=/} = 91.5 > 85  for 1m40s  (silenced)",
        "PENDING  warning  cpu_high  cpu.percent = 85 > 80  for 10s",
    ]
    assert alerts_text([], now=None).plain == "no active alerts"


@pytest.mark.parametrize(
    ("health", "text"),
    [
        (None, "health: unknown"),
        ({"status": "ok", "problems": []}, "health: ok"),
        (
            {"status": "degraded", "problems": ["agent unreachable", "writes pending"]},
            "health: degraded - agent unreachable; writes pending",
        ),
    ],
)
def test_health_line(health: dict[str, Any] | None, text: str) -> None:
    assert health_text(health).plain == text


def test_header_names_host_uptime_and_url() -> None:
    system = {"hostname": "db1", "os": "Linux 6.1", "cpu_count": 4, "boot_time": 1_799_913_700.0}
    text = header_text(system, SNAPSHOT, "http://127.0.0.1:8000").plain
    assert text.startswith("sysmon top  db1  Linux 6.1  4 cores  up 1d00h  ")
    assert text.endswith("  http://127.0.0.1:8000")


ROWS = [
    {"pid": 30, "name": "postgres", "cpu_percent": 50.0, "cmdline": "postgres: writer"},
    {"pid": 4, "name": "Xorg", "cpu_percent": 20.0},
    {"pid": 100, "name": "python3", "cpu_percent": 5.0, "cmdline": "python3 -m app"},
    {"pid": 7, "name": "bash", "cpu_percent": 1.0, "cmdline": "bash -c 'PG=1 psql'"},
]


@pytest.mark.parametrize(
    ("sort", "needle", "pids"),
    [
        ("cpu", "", [30, 4, 100, 7]),  # the server's order is kept
        ("memory", "", [30, 4, 100, 7]),
        ("pid", "", [4, 7, 30, 100]),
        ("name", "", [7, 30, 100, 4]),  # case-insensitive: bash, postgres, python3, Xorg
        ("cpu", "PY", [100]),  # case-insensitive name match
        ("cpu", "psql", [7]),  # the command line counts too
        ("pid", "p", [7, 30, 100]),
        ("cpu", "nothing", []),
    ],
)
def test_order_and_filter(sort: Any, needle: str, pids: list[int]) -> None:
    assert [r["pid"] for r in order_processes(ROWS, sort, needle)] == pids


def test_server_sort_for_local_orders_is_the_widest_table() -> None:
    assert [server_sort(s) for s in ("cpu", "memory", "pid", "name")] == [
        "cpu",
        "memory",
        "cpu",
        "cpu",
    ]


def test_process_cells() -> None:
    row = {
        "pid": 42,
        "name": "sshd",
        "user": "root",
        "cpu_percent": 1.26,
        "memory_percent": 0.5,
        "rss_bytes": 5 * 1024**2,
        "status": "sleeping",
        "threads": 1,
        "cmdline": "sshd: /usr/sbin/sshd -D",
    }
    assert process_cells(row) == (
        "42", "root", "1.3", "0.5", "5.0 MiB", "1", "S", "sshd", "sshd: /usr/sbin/sshd -D",
    )  # fmt: skip
    # A viewer's row has no cmdline; a missing user is a dash.
    assert process_cells({"pid": 1, "name": "init"})[1:] == (
        "-", "-", "-", "-", "-", "-", "init", "",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("status", "detail", "has_token", "says"),
    [
        (401, "not authenticated", False, "pass --token TOKEN or set SYSMON_TOKEN"),
        (401, "not authenticated", True, "refused the token"),
        (403, "admin only", True, "403 forbidden: admin only"),
        (421, "", False, "allowed_hosts"),
        (503, "no collection yet", False, NOT_YET),
        (503, "alerting is not enabled", False, "503 alerting is not enabled"),
        (500, "", False, "HTTP 500"),
    ],
)
def test_error_answers_say_what_to_do(status: int, detail: str, has_token: bool, says: str) -> None:
    assert says in status_message(status, detail, has_token=has_token)


def chained(outer: Exception, inner: Exception) -> Exception:
    try:
        raise outer from inner
    except Exception as exc:
        return exc


def test_transport_errors_name_the_url_and_the_real_reason() -> None:
    # The async transport says "All connection attempts failed"; the cause says why.
    refused = chained(
        httpx.ConnectError("All connection attempts failed"),
        ConnectionRefusedError(111, "Connect call failed"),
    )
    assert isinstance(refused, httpx.ConnectError)
    assert transport_message(refused, "http://h:1") == (
        "cannot reach http://h:1: connection refused (is sysmon running? --url to point elsewhere)"
    )
    unreachable = chained(httpx.ConnectError("failed"), OSError(113, "No route to host"))
    assert isinstance(unreachable, httpx.ConnectError)
    assert (
        transport_message(unreachable, "http://h:1") == "cannot reach http://h:1: No route to host"
    )
    cut = httpx.RemoteProtocolError("peer closed connection without sending complete body")
    assert transport_message(cut, "http://h:1") == (
        "http://h:1 closed the connection (server restarting?)"
    )
    dns = httpx.ConnectError("[Errno -2] Name or service not known")
    assert transport_message(dns, "http://h:1") == (
        "cannot reach http://h:1: [Errno -2] Name or service not known"
    )
    assert transport_message(httpx.ReadTimeout("x"), "http://h:1") == (
        "http://h:1 did not answer in time"
    )
