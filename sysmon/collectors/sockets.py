"""Sockets: counts by protocol every tick, TCP by state every ``tcp_states_interval_seconds``.

Every tick (four small files, ~0.1 ms, cost independent of the number of sockets):

* ``/proc/net/sockstat`` and ``sockstat6``: sockets in use per protocol (``TCP: inuse``,
  ``UDP6: inuse``, ...), all sockets (``sockets: used``), TCP ``tw`` (TIME_WAIT) and
  ``orphan`` (no longer attached to a file: closed by the program, still flushing);
* ``/proc/net/snmp`` ``Tcp: CurrEstab``: connections in ESTABLISHED *or* CLOSE_WAIT
  (RFC 1213's definition, which Linux keeps);
* ``/proc/net/protocols``: UNIX sockets (the ``UNIX`` and ``UNIX-STREAM`` rows).

TCP by state needs one look at every socket, and the kernel's walk costs more than the
sockets themselves: it visits every bucket of the established hash table, sized from RAM
(262,144 buckets on the 24 GiB development VM). Measured there, median wall time of one
count over IPv4+IPv6 (``bench/bench_new_collectors.py``)::

                                        ~260 sockets   ~20,000 sockets
    /proc/net/tcp{,6}, text parsed        24 ms           139 ms
    netlink INET_DIAG dump, all states     7 ms            46 ms

Both are far over a per-tick budget of ~2 ms, so states are counted only every
``tcp_states_interval_seconds`` (default 60; 0 = never) with ``INET_DIAG`` (one
``SOCK_DIAG_BY_FAMILY`` dump per address family; the kernel sends 72+ bytes per socket
instead of a 150-byte text line), falling back to parsing ``/proc/net/tcp{,6}`` where
netlink is refused (no ``tcp_diag`` module, a seccomp filter). The last count is emitted
on every tick in between (like cpu's ``freq_mhz``), so the series has no gaps; it is at
most one interval old.

Everything here is per network namespace: the agent sees its own namespace's sockets.
Absent files (not Linux, no IPv6) leave their fields out, with one INFO line if nothing
at all is there.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from collections.abc import Callable, Mapping
from typing import ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.hostfs import KernelFiles, Presence, is_absent, read_bytes
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "sockets"

TCP_STATES: dict[int, str] = {
    1: "established",
    2: "syn_sent",
    3: "syn_recv",
    4: "fin_wait1",
    5: "fin_wait2",
    6: "time_wait",
    7: "close",
    8: "close_wait",
    9: "last_ack",
    10: "listen",
    11: "closing",
    12: "new_syn_recv",
}
"""``include/net/tcp_states.h``; ``new_syn_recv`` (a request socket) is folded into
``syn_recv`` when counting, as ``ss`` does."""

_SOCKSTAT_PROTOCOLS = {
    b"TCP": "tcp",
    b"UDP": "udp",
    b"UDPLITE": "udplite",
    b"RAW": "raw",
    b"TCP6": "tcp6",
    b"UDP6": "udp6",
    b"UDPLITE6": "udplite6",
    b"RAW6": "raw6",
}

# netlink / sock_diag constants (linux/netlink.h, linux/sock_diag.h, linux/inet_diag.h)
NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST_DUMP = 0x301  # NLM_F_REQUEST | NLM_F_ROOT | NLM_F_MATCH
NLMSG_ERROR = 2
NLMSG_DONE = 3
_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_ALL_STATES = 0xFFF  # bits 1..11 (+ 0): every TCP state

StateCounter = Callable[[], dict[str, int]]


def parse_sockstat(data: bytes) -> dict[str, dict[str, int]]:
    """``{"TCP": {"inuse": 26, "orphan": 0, "tw": 135, ...}, "sockets": {"used": 140}}``."""
    out: dict[str, dict[str, int]] = {}
    for line in data.splitlines():
        head, _, rest = line.partition(b":")
        words = rest.split()
        values: dict[str, int] = {}
        for key, value in zip(words[::2], words[1::2], strict=False):
            try:
                values[key.decode("ascii")] = int(value)
            except ValueError:
                continue
        out[head.decode("ascii", "replace")] = values
    return out


def parse_snmp_tcp(data: bytes) -> dict[str, int]:
    """The ``Tcp:`` header/value line pair of ``/proc/net/snmp`` as a dict."""
    tcp = [line.split()[1:] for line in data.splitlines() if line.startswith(b"Tcp:")]
    if len(tcp) < 2:
        return {}
    out: dict[str, int] = {}
    for key, value in zip(tcp[0], tcp[1], strict=False):
        try:
            out[key.decode("ascii")] = int(value)
        except ValueError:
            continue
    return out


def parse_protocols_unix(data: bytes) -> int | None:
    """UNIX sockets in use: the ``sockets`` column of the ``UNIX*`` rows."""
    total: int | None = None
    for line in data.splitlines()[1:]:
        words = line.split()
        if len(words) > 2 and words[0] in (b"UNIX", b"UNIX-STREAM"):
            try:
                total = (total or 0) + int(words[2])
            except ValueError:
                continue
    return total


def _add_state(counts: dict[str, int], code: int) -> None:
    name = TCP_STATES.get(code)
    if name is None:
        return
    if name == "new_syn_recv":
        name = "syn_recv"
    counts[name] = counts.get(name, 0) + 1


def parse_proc_tcp(data: bytes, counts: dict[str, int]) -> None:
    """Add the states of one ``/proc/net/tcp`` or ``tcp6`` table to ``counts``."""
    for line in data.splitlines()[1:]:
        words = line.split(None, 4)
        if len(words) > 3:
            try:
                _add_state(counts, int(words[3], 16))
            except ValueError:
                continue


def parse_diag(buf: bytes, counts: dict[str, int]) -> bool:
    """Add the states of one netlink datagram of an ``INET_DIAG`` dump to ``counts``.

    Returns True at ``NLMSG_DONE``. The state is byte 1 of ``struct inet_diag_msg``,
    right after the 16-byte ``nlmsghdr``; nothing else of the message is decoded.
    """
    off = 0
    end = len(buf)
    while off + _NLMSG_HDR.size <= end:
        length, kind, _, _, _ = _NLMSG_HDR.unpack_from(buf, off)
        if kind == NLMSG_DONE:
            return True
        if kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", buf, off + _NLMSG_HDR.size)
            raise OSError(-err, f"INET_DIAG dump failed: {os.strerror(-err)}")
        if kind == SOCK_DIAG_BY_FAMILY and length >= _NLMSG_HDR.size + 2:
            _add_state(counts, buf[off + _NLMSG_HDR.size + 1])
        if length < _NLMSG_HDR.size:
            break
        off += (length + 3) & ~3
    return False


def netlink_tcp_states() -> dict[str, int]:
    """TCP sockets per state of this network namespace, by ``INET_DIAG`` (IPv4 + IPv6)."""
    counts: dict[str, int] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
            sock.settimeout(5.0)
            # struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid
            req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES)
            req += bytes(48)
            sock.send(_NLMSG_HDR.pack(_NLMSG_HDR.size + len(req), SOCK_DIAG_BY_FAMILY,
                                      NLM_F_REQUEST_DUMP, 1, 0) + req)  # fmt: skip
            while not parse_diag(sock.recv(1 << 16), counts):
                pass
    return counts


def proc_tcp_states(proc_root: str) -> dict[str, int]:
    """TCP sockets per state from ``/proc/net/tcp`` and ``tcp6`` (the fallback)."""
    counts: dict[str, int] = {}
    found = False
    for name in ("tcp", "tcp6"):
        try:
            data = read_bytes(os.path.join(proc_root, "net", name), 1 << 17)
        except OSError as exc:
            if not is_absent(exc):
                raise
            continue
        found = True
        parse_proc_tcp(data, counts)
    if not found:
        raise FileNotFoundError(os.path.join(proc_root, "net", "tcp"))
    return counts


@register("sockets")
class SocketsCollector:
    """Socket counts per protocol, TCP connection states."""

    class Options(CollectorOptions):
        proc_root: str = Field(default="/proc", description="Where procfs is mounted")
        tcp_states_interval_seconds: float = Field(
            default=60.0,
            ge=0,
            le=86400,
            description="How often TCP sockets are counted per state (a walk of the "
            "kernel's whole connection table: 7-50 ms); 0 = never",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("count", "sockets", "Sockets in use (totals: every family, "
                   "sockstat's 'sockets: used')", labels=("protocol",), integer=True),
        MetricInfo("tcp_established", "connections",
                   "TCP connections ESTABLISHED or CLOSE_WAIT (snmp CurrEstab)", integer=True),
        MetricInfo("tcp_time_wait", "sockets", "TCP sockets in TIME_WAIT", integer=True),
        MetricInfo("tcp_orphan", "sockets", "TCP sockets no longer attached to a file",
                   integer=True),
        MetricInfo("tcp_sockets", "sockets", "TCP sockets per state (IPv4+IPv6), counted "
                   "every tcp_states_interval_seconds", labels=("state",), integer=True),
    )  # fmt: skip

    def __init__(
        self,
        source: object,
        options: Options,
        state_counter: StateCounter | None = None,
    ) -> None:
        self._options = options
        self._net = os.path.join(options.proc_root, "net")
        self._counter = state_counter or netlink_tcp_states
        self._fallback = state_counter is None
        self._states: dict[str, int] | None = None
        self._states_at: float | None = None
        self._states_off = False
        self._presence = Presence(logger, METRIC)
        self._files = KernelFiles()

    def _read(self, name: str) -> bytes | None:
        try:
            return self._files.read(os.path.join(self._net, name))
        except OSError as exc:
            if not is_absent(exc):
                raise
            return None

    def collect(self, monotonic: float) -> Collected:
        samples: list[Sample] = []
        sockstat = self._read("sockstat")
        sockstat6 = self._read("sockstat6")
        snmp = self._read("snmp")
        protocols = self._read("protocols")
        if sockstat is None and snmp is None and protocols is None:
            self._presence.absent(f"no {self._net}/sockstat, snmp or protocols")
            return Collected()
        self._presence.present()

        stats = parse_sockstat(sockstat or b"")
        stats.update(parse_sockstat(sockstat6 or b""))
        for head, proto in _SOCKSTAT_PROTOCOLS.items():
            inuse = stats.get(head.decode(), {}).get("inuse")
            if inuse is not None:
                samples.append(Sample(METRIC, "count", float(inuse), (("protocol", proto),)))
        if protocols is not None:
            unix = parse_protocols_unix(protocols)
            if unix is not None:
                samples.append(Sample(METRIC, "count", float(unix), (("protocol", "unix"),)))
        used = stats.get("sockets", {}).get("used")
        if used is not None:
            samples.append(Sample(METRIC, "count", float(used)))
        tcp = stats.get("TCP", {})
        if "tw" in tcp:
            samples.append(Sample(METRIC, "tcp_time_wait", float(tcp["tw"])))
        if "orphan" in tcp:
            samples.append(Sample(METRIC, "tcp_orphan", float(tcp["orphan"])))
        estab = parse_snmp_tcp(snmp or b"").get("CurrEstab")
        if estab is not None:
            samples.append(Sample(METRIC, "tcp_established", float(estab)))

        states = self._tcp_states(monotonic)
        if states is not None:
            for state in sorted(set(TCP_STATES.values()) - {"new_syn_recv"}):
                n = states.get(state, 0)
                samples.append(Sample(METRIC, "tcp_sockets", float(n), (("state", state),)))
            samples.append(Sample(METRIC, "tcp_sockets", float(sum(states.values()))))
        return Collected(samples=tuple(samples))

    def _tcp_states(self, now: float) -> Mapping[str, int] | None:
        """The last per-state count, recounted when ``tcp_states_interval_seconds`` passed."""
        interval = self._options.tcp_states_interval_seconds
        if interval <= 0 or self._states_off:
            return None
        last = self._states_at
        if last is not None and 0 <= now - last < interval:
            return self._states
        self._states_at = now
        try:
            self._states = self._counter()
        except OSError as exc:
            if not self._fallback:
                raise
            # netlink refused (no tcp_diag, seccomp, EPERM): the text tables from now on.
            self._fallback = False
            root = self._options.proc_root
            self._counter = lambda: proc_tcp_states(root)
            logger.info(
                "sockets: INET_DIAG unavailable (%s); counting TCP states from %s/tcp{,6}",
                exc,
                self._net,
                extra={"collector": METRIC, "error": repr(exc)},
            )
            try:
                self._states = self._counter()
            except OSError as exc2:
                if not is_absent(exc2):
                    raise
                logger.info(
                    "sockets: no TCP state source either; tcp_sockets not reported",
                    extra={"collector": METRIC},
                )
                self._states_off = True
                self._states = None
        return self._states

    def close(self) -> None:
        """The kept file descriptors (each state count opens and closes its own netlink
        socket)."""
        self._files.close()
