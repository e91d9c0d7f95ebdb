"""Sockets collector on recorded ``/proc/net`` trees and a recorded INET_DIAG dump."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

from sysmon.collectors.sockets import (
    SocketsCollector,
    StateCounter,
    netlink_tcp_states,
    parse_diag,
    proc_tcp_states,
)

from .fakes import FIXTURES, label_values, labelled, totals

TREES = FIXTURES / "proc_net"
ALL_STATES = {"established", "syn_sent", "syn_recv", "fin_wait1", "fin_wait2", "time_wait",
              "close", "close_wait", "last_ack", "listen", "closing"}  # fmt: skip


def make(
    root: Path | str, counter: StateCounter | None = None, **options: float
) -> SocketsCollector:
    opts = SocketsCollector.Options(proc_root=str(root), **options)
    return SocketsCollector(None, opts, counter)


class CountingCounter:
    def __init__(self, result: dict[str, int] | Exception) -> None:
        self.result = result
        self.calls = 0

    def __call__(self) -> dict[str, int]:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return dict(self.result)


def test_recorded_host_counts_by_protocol() -> None:
    counter = CountingCounter({"listen": 14, "established": 2, "time_wait": 10})
    out = make(TREES / "recorded", counter).collect(1.0)
    by_proto = {p: labelled(out, "protocol", p)["count"] for p in label_values(out, "protocol")}
    assert by_proto == {"tcp": 14.0, "udp": 0.0, "udplite": 0.0, "raw": 0.0, "tcp6": 2.0,
                        "udp6": 0.0, "udplite6": 0.0, "raw6": 0.0, "unix": 11.0}  # fmt: skip
    total = totals(out)
    assert total["count"] == 44.0  # sockstat "sockets: used"
    assert total["tcp_established"] == 2.0  # snmp CurrEstab
    assert total["tcp_time_wait"] == 10.0
    assert total["tcp_orphan"] == 0.0
    assert total["tcp_sockets"] == 26.0
    assert label_values(out, "state") == ALL_STATES  # every state, 0 when none
    assert labelled(out, "state", "listen") == {"tcp_sockets": 14.0}
    assert labelled(out, "state", "close_wait") == {"tcp_sockets": 0.0}


def test_host_without_ipv6_and_hand_written_states() -> None:
    collector = make(TREES / "no_ipv6", lambda: proc_tcp_states(str(TREES / "no_ipv6")))
    out = collector.collect(1.0)
    assert label_values(out, "protocol") == {"tcp", "udp", "udplite", "raw", "unix"}
    assert labelled(out, "protocol", "unix")["count"] == 285.0  # UNIX-STREAM + UNIX
    assert labelled(out, "protocol", "udp")["count"] == 4.0
    assert totals(out)["tcp_orphan"] == 2.0
    states = {s: labelled(out, "state", s)["tcp_sockets"] for s in label_values(out, "state")}
    assert {s: n for s, n in states.items() if n} == {
        "listen": 2.0, "established": 3.0, "close_wait": 2.0, "fin_wait2": 1.0,
        "syn_recv": 1.0, "time_wait": 1.0, "closing": 1.0, "last_ack": 1.0,
    }  # fmt: skip
    assert totals(out)["tcp_sockets"] == 12.0


def test_states_counted_every_interval_and_repeated_in_between() -> None:
    counter = CountingCounter({"established": 3})
    collector = make(TREES / "recorded", counter, tcp_states_interval_seconds=60)
    first = collector.collect(1000.0)
    counter.result = {"established": 7}
    second = collector.collect(1030.0)
    assert counter.calls == 1
    assert labelled(second, "state", "established") == labelled(first, "state", "established")
    third = collector.collect(1060.0)
    assert counter.calls == 2
    assert labelled(third, "state", "established") == {"tcp_sockets": 7.0}


def test_states_off() -> None:
    counter = CountingCounter({"established": 3})
    out = make(TREES / "recorded", counter, tcp_states_interval_seconds=0).collect(1.0)
    assert counter.calls == 0
    assert "tcp_sockets" not in totals(out) and not label_values(out, "state")
    assert totals(out)["tcp_established"] == 2.0  # the cheap per-tick numbers stay


def test_netlink_refused_falls_back_to_proc_tables(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from sysmon.collectors import sockets

    def refused() -> dict[str, int]:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(sockets, "netlink_tcp_states", refused)
    collector = make(TREES / "no_ipv6", None, tcp_states_interval_seconds=1)
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.sockets"):
        out = collector.collect(1.0)
        collector.collect(2.0)
    assert labelled(out, "state", "listen") == {"tcp_sockets": 2.0}
    assert len([r for r in caplog.records if "INET_DIAG unavailable" in r.getMessage()]) == 1


def test_an_injected_counter_failing_fails_the_tick() -> None:
    counter = CountingCounter(OSError(5, "I/O error"))
    with pytest.raises(OSError):
        make(TREES / "recorded", counter).collect(1.0)


def test_no_proc_net_is_empty_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = make(tmp_path, CountingCounter({}))
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.sockets"):
        assert collector.collect(1.0).samples == ()
        assert collector.collect(2.0).samples == ()
    assert len([r for r in caplog.records if "not available" in r.getMessage()]) == 1


def test_recorded_inet_diag_dump_matches_the_recorded_tables() -> None:
    counts: dict[str, int] = {}
    for name in ("tcp_diag_inet.bin", "tcp_diag_inet6.bin"):
        assert parse_diag((TREES / "recorded" / name).read_bytes(), counts) is True
    # recorded right after net/tcp{,6}: 12 + 2 listening, 2 established, 10 time_wait
    assert counts == proc_tcp_states(str(TREES / "recorded"))
    assert counts == {"listen": 14, "established": 2, "time_wait": 10}


def test_parse_diag_error_message() -> None:
    import struct

    err = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -13) + bytes(16)
    with pytest.raises(OSError, match="INET_DIAG dump failed"):
        parse_diag(err, {})


@pytest.mark.live
def test_live_netlink_sees_a_listening_socket_and_a_connection() -> None:
    try:
        before = netlink_tcp_states()
    except OSError as exc:
        pytest.skip(f"INET_DIAG not available here: {exc}")
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        with socket.create_connection(srv.getsockname()) as cli:
            conn, _ = srv.accept()
            with conn:
                during = netlink_tcp_states()
                text = proc_tcp_states("/proc")
                out = make("/proc").collect(time.monotonic())
    # other processes may open/close sockets meanwhile: compare loosely
    assert during.get("listen", 0) >= 1 and during.get("established", 0) >= 2
    assert abs(during.get("listen", 0) - text.get("listen", 0)) <= 2
    assert cli is not None and before is not None
    assert labelled(out, "state", "established")["tcp_sockets"] >= 2
    assert totals(out)["tcp_established"] >= 2
    assert labelled(out, "protocol", "tcp")["count"] >= 3
