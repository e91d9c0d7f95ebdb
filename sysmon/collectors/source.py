"""The psutil seam: ``SystemSource`` and its real implementation ``PsutilSource``.

Collectors never import psutil for data; they call a ``SystemSource`` and get small,
typed, platform-neutral tuples back. A field the platform does not have (``iowait`` on
macOS, ``busy_time`` outside Linux, ``buffers``) is ``None`` rather than missing, so
collectors can leave it out of their output instead of guessing. Tests swap in a fake
(``tests/collectors/fakes.py``) that feeds psutil-shaped fixtures through the same
``*_from`` converters this module uses, so conversion code is exercised by unit tests.

Errors: a method either returns a value or raises. Per-item failures (one process gone,
one mount unreadable) raise one of ``ITEM_ERRORS``; collectors catch exactly those per
item and let anything else fail the whole collector for the tick.

Cost matters (the service ticks every second on a small box): ``processes`` reads one
``/proc/<pid>/stat`` per process on Linux instead of ``psutil.process_iter``, which opens
about four files per process (measured ~170 us vs ~20 us per process on a 2-vCPU VM).
``process_pids`` (one ``os.listdir``) and ``read_processes`` let a caller read only the
processes it needs this tick (the processes collector skips idle ones). Everything else
is plain psutil.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Collection, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import psutil

from sysmon.collectors.hostfs import KernelFiles, pread_all

logger = logging.getLogger(__name__)

ITEM_ERRORS: tuple[type[BaseException], ...] = (
    psutil.NoSuchProcess,  # includes ZombieProcess
    psutil.AccessDenied,
    OSError,
)
"""Exceptions that mean "this one item is unavailable right now", never "the host is"."""


class CpuTimes(NamedTuple):
    """Cumulative CPU seconds. Linux-only fields are ``None`` elsewhere."""

    user: float
    nice: float
    system: float
    idle: float
    iowait: float | None = None
    irq: float | None = None
    softirq: float | None = None
    steal: float | None = None
    guest: float | None = None
    guest_nice: float | None = None


class CpuStats(NamedTuple):
    ctx_switches: int
    interrupts: int


class VirtualMemory(NamedTuple):
    total: int
    available: int
    used: int
    percent: float
    buffers: int | None = None
    cached: int | None = None


class SwapMemory(NamedTuple):
    total: int
    used: int
    percent: float
    sin: int
    """Cumulative bytes swapped in (a counter)."""
    sout: int


class DiskPartition(NamedTuple):
    device: str
    mountpoint: str
    fstype: str


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


class DiskIO(NamedTuple):
    read_count: int
    write_count: int
    read_bytes: int
    write_bytes: int
    busy_time: int | None = None
    """Milliseconds spent doing I/O (Linux, FreeBSD); ``None`` where unavailable."""


class NetIO(NamedTuple):
    bytes_sent: int
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    errin: int
    errout: int
    dropin: int
    dropout: int


class NicStats(NamedTuple):
    isup: bool
    flags: frozenset[str]


class CpuReading(NamedTuple):
    """Everything the cpu collector needs from one read of ``/proc/stat``."""

    total: CpuTimes
    cores: list[CpuTimes] | None
    """Per logical CPU; ``None`` when not asked for."""
    stats: CpuStats


class MemoryReading(NamedTuple):
    virtual: VirtualMemory
    swap: SwapMemory | None
    """``None`` when swap statistics are unavailable (not when swap size is 0)."""


class ProcessInfo(NamedTuple):
    """The cheap per-process fields read for *every* process each tick.

    ``cpu_time`` is user + system CPU seconds (children excluded). A field that could
    not be read (access denied) is ``None``.
    """

    pid: int
    name: str
    status: str | None
    create_time: float
    cpu_time: float | None
    rss: int | None
    num_threads: int | None
    ppid: int | None = None
    """Parent pid (``None`` when unknown); a process re-parented to init shows 1."""


class ProcessDetails(NamedTuple):
    """The expensive fields, fetched only for the rows that are actually shown."""

    cmdline: tuple[str, ...] | None
    username: str | None


class SystemSource(Protocol):
    """Everything collectors read from the host.

    Implementations hold no per-collector state; two collectors may share one source.
    Counters (``cpu_times``, ``disk_io_counters``, ``net_io_counters``, ``cpu_stats``,
    swap ``sin``/``sout``) are cumulative; they may go backwards (reboot of a device,
    interface recreated), which collectors treat as a reset.
    """

    def cpu_times(self) -> CpuTimes: ...

    def cpu_times_percpu(self) -> list[CpuTimes]: ...

    def cpu_stats(self) -> CpuStats: ...

    def cpu_reading(self, percpu: bool) -> CpuReading:
        """``cpu_times``, ``cpu_times_percpu`` (if ``percpu``) and ``cpu_stats`` at once.

        On Linux all three come from ``/proc/stat``; one read instead of three (the
        kernel formats every IRQ counter on each read).
        """
        ...

    def cpu_freq(self) -> float | None:
        """Current frequency in MHz, or ``None`` when the host does not expose it."""
        ...

    def getloadavg(self) -> tuple[float, float, float] | None: ...

    def cpu_count(self, logical: bool = True) -> int | None: ...

    def boot_time(self) -> float: ...

    def virtual_memory(self) -> VirtualMemory: ...

    def swap_memory(self) -> SwapMemory | None:
        """``None`` when swap statistics are unavailable (not when swap size is 0)."""
        ...

    def memory_reading(self) -> MemoryReading:
        """``virtual_memory`` and ``swap_memory`` at once (one ``/proc/meminfo`` parse)."""
        ...

    def memory_total(self) -> int:
        """Physical memory in bytes (``virtual_memory().total``), without the rest."""
        ...

    def disk_partitions(self, all: bool = False) -> list[DiskPartition]: ...

    def disk_usage(self, path: str) -> DiskUsage: ...

    def disk_io_counters(self) -> Mapping[str, DiskIO]:
        """Per device (``perdisk``); on Linux both whole disks and their partitions."""
        ...

    def net_io_counters(self) -> Mapping[str, NetIO]: ...

    def net_if_stats(self) -> Mapping[str, NicStats]: ...

    def processes(self) -> Iterator[ProcessInfo]:
        """Every process that could be read; vanished ones are silently skipped."""
        ...

    def process_pids(self) -> set[int]:
        """The pids that exist right now (a fresh set), without reading any process.

        Much cheaper than ``processes`` (one directory listing on Linux, or none when the
        kernel says no task was created or reaped since the last one); callers use it to
        see which processes appeared or exited, then ``read_processes`` the ones they
        need.
        """
        ...

    def read_processes(self, pids: Collection[int]) -> Iterator[ProcessInfo]:
        """The cheap fields of just these processes, in no particular order.

        A pid that does not exist (any more) or cannot be read is silently skipped, so
        ``len(result) <= len(pids)``. A pid may name a different process than when it was
        listed (reused): callers compare ``create_time``.
        """
        ...

    def process_details(self, pid: int, create_time: float, *, cmdline: bool) -> ProcessDetails:
        """Command line (if ``cmdline``) and user of one process.

        Raises ``psutil.NoSuchProcess`` if ``pid`` is gone or now names a different
        process (``create_time`` differs), so a reused pid never borrows details.
        """
        ...


# --- converters: psutil-shaped objects (namedtuples, or anything with the attributes)
# into our tuples. Used by PsutilSource and by the test fake alike.


def _opt(obj: Any, attr: str) -> Any:
    return getattr(obj, attr, None)


def cpu_times_from(obj: Any) -> CpuTimes:
    return CpuTimes(
        user=float(obj.user),
        nice=float(getattr(obj, "nice", 0.0)),
        system=float(obj.system),
        idle=float(obj.idle),
        iowait=_opt(obj, "iowait"),
        irq=_opt(obj, "irq"),
        softirq=_opt(obj, "softirq"),
        steal=_opt(obj, "steal"),
        guest=_opt(obj, "guest"),
        guest_nice=_opt(obj, "guest_nice"),
    )


def cpu_stats_from(obj: Any) -> CpuStats:
    return CpuStats(ctx_switches=int(obj.ctx_switches), interrupts=int(obj.interrupts))


def virtual_memory_from(obj: Any) -> VirtualMemory:
    return VirtualMemory(
        total=int(obj.total),
        available=int(obj.available),
        used=int(obj.used),
        percent=float(obj.percent),
        buffers=_opt(obj, "buffers"),
        cached=_opt(obj, "cached"),
    )


def swap_memory_from(obj: Any) -> SwapMemory:
    return SwapMemory(
        total=int(obj.total),
        used=int(obj.used),
        percent=float(obj.percent),
        sin=int(obj.sin),
        sout=int(obj.sout),
    )


def disk_partition_from(obj: Any) -> DiskPartition:
    return DiskPartition(device=obj.device, mountpoint=obj.mountpoint, fstype=obj.fstype)


def disk_usage_from(obj: Any) -> DiskUsage:
    return DiskUsage(total=int(obj.total), used=int(obj.used), free=int(obj.free))


def disk_io_from(obj: Any) -> DiskIO:
    busy = _opt(obj, "busy_time")
    return DiskIO(
        read_count=int(obj.read_count),
        write_count=int(obj.write_count),
        read_bytes=int(obj.read_bytes),
        write_bytes=int(obj.write_bytes),
        busy_time=None if busy is None else int(busy),
    )


def net_io_from(obj: Any) -> NetIO:
    return NetIO(
        bytes_sent=int(obj.bytes_sent),
        bytes_recv=int(obj.bytes_recv),
        packets_sent=int(obj.packets_sent),
        packets_recv=int(obj.packets_recv),
        errin=int(obj.errin),
        errout=int(obj.errout),
        dropin=int(obj.dropin),
        dropout=int(obj.dropout),
    )


def process_info_from(info: Mapping[str, Any]) -> ProcessInfo:
    """From a ``process_iter(attrs=...)`` ``info`` dict; ``None`` values = access denied."""
    times = info.get("cpu_times")
    mem = info.get("memory_info")
    return ProcessInfo(
        pid=int(info["pid"]),
        name=info.get("name") or "",
        status=info.get("status"),
        create_time=float(info.get("create_time") or 0.0),
        cpu_time=None if times is None else float(times.user + times.system),
        rss=None if mem is None else int(mem.rss),
        num_threads=info.get("num_threads"),
        ppid=info.get("ppid"),
    )


def nic_stats_from(obj: Any) -> NicStats:
    flags = getattr(obj, "flags", "") or ""
    return NicStats(isup=bool(obj.isup), flags=frozenset(f for f in flags.split(",") if f))


# --- the real thing

# Same strings as psutil's STATUS_* constants (psutil/_pslinux.py PROC_STATUSES).
_LINUX_STATUS = {
    "R": "running",
    "S": "sleeping",
    "D": "disk-sleep",
    "T": "stopped",
    "t": "tracing-stop",
    "Z": "zombie",
    "X": "dead",
    "x": "dead",
    "K": "wake-kill",
    "W": "waking",
    "I": "idle",
    "P": "parked",
}

_PROCESS_ATTRS = [
    "pid",
    "name",
    "status",
    "create_time",
    "cpu_times",
    "memory_info",
    "num_threads",
    "ppid",
]


def parse_linux_stat(
    pid: int, data: bytes, clock_ticks: float, page_size: int, boot: float
) -> ProcessInfo:
    """Parse one ``/proc/<pid>/stat`` line (see proc(5)).

    The command name sits in parentheses and may itself contain spaces or ``)``, so the
    fields are split after the *last* ``)``. Field numbers below are proc(5)'s. This runs
    for every process every tick, hence positional construction and no helpers.
    """
    rpar = data.rfind(b")")
    f = data[rpar + 2 :].split(None, 22)  # f[0] is field 3 (state); stop after field 24
    return ProcessInfo(
        pid,
        data[data.find(b"(") + 1 : rpar].decode("utf-8", "replace"),
        _LINUX_STATUS_B.get(f[0], "unknown"),
        boot + int(f[19]) / clock_ticks,  # field 22, start time in ticks since boot
        (int(f[11]) + int(f[12])) / clock_ticks,  # fields 14, 15: utime + stime (ticks)
        int(f[21]) * page_size,  # field 24, rss in pages
        int(f[17]),  # field 20, threads
        int(f[1]),  # field 4, parent pid
    )


_LINUX_STATUS_B = {k.encode("ascii"): v for k, v in _LINUX_STATUS.items()}


def parse_proc_stat(data: bytes, clock_ticks: float, percpu: bool) -> CpuReading:
    """``/proc/stat`` into the values psutil's Linux ``cpu_times``, ``cpu_times(percpu=True)``
    and ``cpu_stats`` return (same fields, same ``float(ticks) / CLK_TCK`` arithmetic).
    """
    total: CpuTimes | None = None
    cores: list[CpuTimes] | None = [] if percpu else None
    ctxt = intr = None
    for line in data.splitlines():
        if line.startswith(b"cpu"):
            values = line.split()
            times = CpuTimes(*[float(x) / clock_ticks for x in values[1:11]])
            if total is None:
                total = times
            elif cores is not None:
                cores.append(times)
        elif line.startswith(b"ctxt"):
            ctxt = int(line.split()[1])
        elif line.startswith(b"intr"):
            intr = int(line.split(None, 2)[1])
    if total is None or ctxt is None or intr is None:
        raise ValueError("unexpected /proc/stat format")
    return CpuReading(total, cores, CpuStats(ctxt, intr))


def _percent1(used: int, total: int) -> float:
    """psutil's ``usage_percent(used, total, round_=1)``."""
    if not total:
        return 0.0
    return round(float(used) / total * 100, 1)


def parse_meminfo(meminfo: bytes, vmstat: bytes) -> MemoryReading | None:
    """``/proc/meminfo`` + ``/proc/vmstat`` into psutil's Linux ``virtual_memory`` and
    ``swap_memory`` values, or ``None`` when the host needs one of psutil's fallbacks
    (no ``MemAvailable``, a zero or out-of-range value, missing fields): the caller then
    asks psutil itself, so the numbers are psutil's in every case.
    """
    mems: dict[bytes, int] = {}
    for line in meminfo.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            mems[fields[0]] = int(fields[1]) * 1024
    try:
        total = mems[b"MemTotal:"]
        avail = mems[b"MemAvailable:"]
        buffers = mems[b"Buffers:"]
        cached = mems[b"Cached:"] + mems.get(b"SReclaimable:", 0)
        swap_total = mems[b"SwapTotal:"]
        swap_free = mems[b"SwapFree:"]
    except KeyError:
        return None
    if avail <= 0 or avail > total:
        return None
    sin = sout = None
    for line in vmstat.splitlines():
        if line.startswith(b"pswpin"):
            sin = int(line.split(b" ")[1]) * 4 * 1024
        elif line.startswith(b"pswpout"):
            sout = int(line.split(b" ")[1]) * 4 * 1024
            if sin is not None:
                break
    if sin is None or sout is None:
        return None
    swap_used = swap_total - swap_free
    return MemoryReading(
        VirtualMemory(total, avail, total - avail, _percent1(total - avail, total), buffers,
                      cached),
        SwapMemory(swap_total, swap_used, _percent1(swap_used, swap_total), sin, sout),
    )  # fmt: skip


_SECTOR_BYTES = 512
"""``/proc/diskstats`` counts 512-byte sectors whatever the device's sector size (psutil's
``DISK_SECTOR_SIZE``)."""


def parse_diskstats(data: bytes) -> dict[str, DiskIO]:
    """``/proc/diskstats`` as psutil's Linux ``disk_io_counters(perdisk=True,
    nowrap=False)`` reads it: the 14-field (and 18/20-field, 4.18+/5.5+) disk lines, the
    7-field partition lines of 2.6 and the 15-field lines of 2.4."""
    out: dict[str, DiskIO] = {}
    for line in data.splitlines():
        f = line.split()
        n = len(f)
        if n == 14 or n >= 18:
            name, reads, rbytes, writes, wbytes, busy = f[2], f[3], f[5], f[7], f[9], f[12]
        elif n == 15:
            name, reads, rbytes, writes, wbytes, busy = f[3], f[2], f[6], f[8], f[10], f[13]
        elif n == 7:
            name, reads, rbytes, writes, wbytes, busy = f[2], f[3], f[4], f[5], f[6], b"0"
        else:
            raise ValueError(f"unexpected /proc/diskstats line {line[:80]!r}")
        out[name.decode()] = DiskIO(
            int(reads), int(writes), int(rbytes) * _SECTOR_BYTES, int(wbytes) * _SECTOR_BYTES,
            int(busy),
        )  # fmt: skip
    return out


def parse_net_dev(data: bytes) -> dict[str, NetIO]:
    """``/proc/net/dev`` as psutil's Linux ``net_io_counters(pernic=True, nowrap=False)``
    reads it (16 counters per interface after the last ``:`` of its line)."""
    out: dict[str, NetIO] = {}
    for line in data.splitlines()[2:]:
        colon = line.rfind(b":")
        f = line[colon + 1 :].split()
        if colon <= 0 or len(f) != 16:
            raise ValueError(f"unexpected /proc/net/dev line {line[:80]!r}")
        out[line[:colon].strip().decode()] = NetIO(
            int(f[8]), int(f[0]), int(f[9]), int(f[1]), int(f[2]), int(f[10]), int(f[3]),
            int(f[11]),
        )  # fmt: skip
    return out


_USER_TTL = 300.0
"""Seconds a uid's user name is reused before ``getpwuid`` is asked again."""


def _read_at(pid: int, dirfd: int, name: str) -> bytes:
    """One file of ``/proc/<pid>``, opened relative to its directory's descriptor; the
    errors as psutil raises them (gone: ``NoSuchProcess``, refused: ``AccessDenied``)."""
    try:
        fd = os.open(name, os.O_RDONLY, dir_fd=dirfd)
        try:
            return pread_all(fd)
        finally:
            os.close(fd)
    except (FileNotFoundError, ProcessLookupError):
        raise psutil.NoSuchProcess(pid) from None
    except PermissionError:
        raise psutil.AccessDenied(pid) from None


def parse_cmdline(data: bytes) -> tuple[str, ...]:
    """``/proc/<pid>/cmdline`` as psutil's Linux ``cmdline()`` splits it: NUL-separated,
    or space-separated when a process rewrote its arguments into one string."""
    text = os.fsdecode(data)
    if not text:
        return ()  # a zombie or a kernel thread
    sep = "\x00" if text.endswith("\x00") else " "
    if text.endswith(sep):
        text = text[:-1]
    args = text.split(sep)
    if sep == "\x00" and len(args) == 1 and " " in text:
        args = text.split(" ")
    return tuple(args)


def parse_real_uid(status: bytes) -> int:
    """The real uid from ``/proc/<pid>/status`` (``Uid:`` real, effective, saved, fs)."""
    at = status.find(b"\nUid:")
    if at < 0:
        raise ValueError("no Uid line")
    return int(status[at + 5 :].split(None, 1)[0])


_PIDS_MAX_AGE = 10.0
"""Seconds a ``/proc`` listing may be reused under an unchanged task token, at most."""


def _fd_budget() -> int:
    """How many ``/proc/<pid>/stat`` descriptors to keep open: a quarter of the soft
    ``RLIMIT_NOFILE`` (1024 -> 256), at most 4096, so the cache never starves the store,
    the HTTP server or the notifiers of descriptors."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 0
    if soft < 0:  # RLIM_INFINITY
        return 4096
    return max(0, min(4096, soft // 4))


def _close_fds(fds: dict[int, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


class PsutilSource:
    """``SystemSource`` over the installed psutil (7.2.x).

    On Linux the files read every tick (``/proc/stat``, ``meminfo``, ``vmstat``,
    ``diskstats``, ``net/dev``, ``loadavg``) are parsed here, with psutil's arithmetic
    (checked against psutil on recorded files), through descriptors kept open
    (``KernelFiles``); psutil answers where a file is missing or unusual. Those counters
    are 64-bit on a 64-bit kernel; on a 32-bit one a wrap is a backwards step, which the
    collectors treat as a reset (one rate missing), as they do a re-created device or a
    reboot. Off Linux, ``disk_io_counters``/``net_io_counters`` use psutil's ``nowrap``.
    """

    def __init__(self, procfs: str = "/proc") -> None:
        self._procfs = procfs
        self._linux_fast = sys.platform.startswith("linux") and os.path.exists(
            f"{procfs}/self/stat"
        )
        self._boot: float | None = None
        self._users: dict[int, tuple[str, float]] = {}
        """uid -> (user name, monotonic time it was looked up)."""
        self._files = KernelFiles()
        """``/proc/stat``, ``meminfo``, ``vmstat``, ``loadavg``, ``diskstats``, ``net/dev``:
        read every tick through descriptors kept open."""
        # /proc/<pid>/stat descriptors kept open between ticks, by pid (see
        # ``_linux_read``); closed by ``close`` or when the source is collected.
        self._stat_fds: dict[int, int] = {}
        # For each listed pid read before, the bytes last read and what they parsed to.
        self._stat_memo: dict[int, tuple[bytes, ProcessInfo]] = {}
        self._stat_lock = threading.Lock()
        self._fd_budget = _fd_budget()
        # The last ``/proc`` listing and the ``/proc/loadavg`` task token it was taken
        # under (see ``_linux_pids``).
        self._pids: set[int] | None = None
        self._pids_token: bytes | None = None
        self._pids_at = 0.0
        self._pids_gate = True
        self._finalizer = weakref.finalize(self, _close_fds, self._stat_fds)
        if self._linux_fast:
            self._clock_ticks = float(os.sysconf("SC_CLK_TCK"))
            self._page_size = int(os.sysconf("SC_PAGE_SIZE"))

    def close(self) -> None:
        """Close the cached ``/proc`` descriptors (also done when garbage collected)."""
        with self._stat_lock:
            _close_fds(self._stat_fds)
            self._stat_memo.clear()
        self._files.close()

    def cpu_times(self) -> CpuTimes:
        return cpu_times_from(psutil.cpu_times())

    def cpu_reading(self, percpu: bool) -> CpuReading:
        if self._linux_fast:
            try:
                data = self._files.read(f"{self._procfs}/stat")
                return parse_proc_stat(data, self._clock_ticks, percpu)
            except ValueError:
                pass  # unusual format: let psutil deal with it
        return CpuReading(
            self.cpu_times(), self.cpu_times_percpu() if percpu else None, self.cpu_stats()
        )

    def cpu_times_percpu(self) -> list[CpuTimes]:
        return [cpu_times_from(t) for t in psutil.cpu_times(percpu=True)]

    def cpu_stats(self) -> CpuStats:
        return cpu_stats_from(psutil.cpu_stats())

    def cpu_freq(self) -> float | None:
        freq_fn = getattr(psutil, "cpu_freq", None)
        if freq_fn is None:
            return None
        try:
            freq = freq_fn()
        except (OSError, NotImplementedError, RuntimeError) as exc:
            logger.debug("cpu_freq unavailable", extra={"error": repr(exc)})
            return None
        if freq is None or not freq.current or freq.current <= 0:
            return None
        return float(freq.current)

    def getloadavg(self) -> tuple[float, float, float] | None:
        fn = getattr(psutil, "getloadavg", None)
        if fn is None:
            return None
        try:
            one, five, fifteen = fn()
        except (OSError, NotImplementedError) as exc:
            logger.debug("getloadavg unavailable", extra={"error": repr(exc)})
            return None
        return (float(one), float(five), float(fifteen))

    def cpu_count(self, logical: bool = True) -> int | None:
        return psutil.cpu_count(logical=logical)

    def boot_time(self) -> float:
        return float(psutil.boot_time())

    def virtual_memory(self) -> VirtualMemory:
        return virtual_memory_from(psutil.virtual_memory())

    def swap_memory(self) -> SwapMemory | None:
        try:
            return swap_memory_from(psutil.swap_memory())
        except (OSError, RuntimeError, NotImplementedError) as exc:
            logger.debug("swap_memory unavailable", extra={"error": repr(exc)})
            return None

    def memory_reading(self) -> MemoryReading:
        if self._linux_fast:
            try:
                reading = parse_meminfo(
                    self._files.read(f"{self._procfs}/meminfo"),
                    self._files.read(f"{self._procfs}/vmstat"),
                )
            except (OSError, ValueError, IndexError):
                reading = None
            if reading is not None:
                return reading
        return MemoryReading(self.virtual_memory(), self.swap_memory())

    def memory_total(self) -> int:
        if self._linux_fast:
            try:
                first = self._files.head(f"{self._procfs}/meminfo", 128).split(b"\n", 1)[0]
                name, value = first.split()[:2]
                if name == b"MemTotal:":
                    return int(value) * 1024
            except (OSError, ValueError, IndexError):
                pass
        return self.virtual_memory().total

    def disk_partitions(self, all: bool = False) -> list[DiskPartition]:
        return [disk_partition_from(p) for p in psutil.disk_partitions(all=all)]

    def disk_usage(self, path: str) -> DiskUsage:
        return disk_usage_from(psutil.disk_usage(path))

    def disk_io_counters(self) -> Mapping[str, DiskIO]:
        if self._linux_fast:
            try:
                return parse_diskstats(self._files.read(f"{self._procfs}/diskstats"))
            except (OSError, ValueError):
                pass  # unusual format or no diskstats: let psutil deal with it
        raw = psutil.disk_io_counters(perdisk=True, nowrap=True)
        return {name: disk_io_from(v) for name, v in (raw or {}).items()}

    def net_io_counters(self) -> Mapping[str, NetIO]:
        if self._linux_fast:
            try:
                return parse_net_dev(self._files.read(f"{self._procfs}/net/dev"))
            except (OSError, ValueError):
                pass
        raw = psutil.net_io_counters(pernic=True, nowrap=True)
        return {name: net_io_from(v) for name, v in (raw or {}).items()}

    def net_if_stats(self) -> Mapping[str, NicStats]:
        return {name: nic_stats_from(v) for name, v in psutil.net_if_stats().items()}

    def processes(self) -> Iterator[ProcessInfo]:
        if self._linux_fast:
            # Ascending pids, like ``process_iter``.
            with self._stat_lock:
                return iter(self._linux_read(sorted(self._linux_pids())))
        return self._psutil_processes()

    def process_pids(self) -> set[int]:
        if self._linux_fast:
            with self._stat_lock:
                return set(self._linux_pids())
        return set(psutil.pids())

    def read_processes(self, pids: Collection[int]) -> Iterator[ProcessInfo]:
        if self._linux_fast:
            # Read eagerly under the lock: the descriptor cache must stay consistent even
            # if a caller stops iterating early or two callers overlap.
            with self._stat_lock:
                return iter(self._linux_read(pids))
        return self._psutil_read(pids)

    def _tasks_token(self) -> bytes | None:
        """``nr_threads`` and the last allocated pid from ``/proc/loadavg``, or ``None``.

        Every new process or thread takes a pid, which moves the last pid; a task can
        only disappear from ``/proc`` when it is reaped, which lowers ``nr_threads``. So
        while this token stays the same, no task was created and none was reaped, and
        the ``/proc`` listing cannot have changed. (The last pid is that of the reader's
        pid namespace, ``nr_threads`` counts every namespace; see ``_linux_pids`` for the
        cases this misses.)
        """
        try:
            fields = self._files.read(f"{self._procfs}/loadavg").split()
            threads, last = fields[3].partition(b"/")[2], fields[4]
        except (OSError, IndexError):
            return None
        if not threads.isdigit() or not last.isdigit() or int(last) == 0:
            return None  # not a Linux kernel's loadavg (gVisor prints zeros): never trust
        return threads + b" " + last

    def _linux_pids(self) -> set[int]:
        """The pids in ``/proc``; closes cached descriptors of pids no longer listed.

        Listing ``/proc`` makes the kernel walk every pid and look up its dentry: 0.3-0.7
        ms for 1,100 processes in a tight loop, ~1.5 ms on a tick 1 s after the previous
        one (cold caches), as much as reading ``/proc/<pid>/stat`` of ~200 processes. So the
        listing is reused while the ``/proc/loadavg`` task token (``_tasks_token``, one
        small read) is unchanged, and taken again at least every ``_PIDS_MAX_AGE``
        seconds in any case. The token is read *before* listing, so a task created
        during the listing changes the next token. What the token can miss, and the
        max age bounds: a process created and another reaped in the same interval, both
        in a pid namespace the reader cannot see (an agent in a container reading the
        host's ``/proc``). If a listing taken under an unchanged token (before and
        after it) differs from the previous one, the kernel does not keep the token's
        promise and the shortcut is switched off for good.

        Must hold ``_stat_lock``. The returned set is not a copy.
        """
        token = self._tasks_token() if self._pids_gate else None
        now = time.monotonic()
        cached_pids = self._pids
        if (
            token is not None
            and token == self._pids_token
            and cached_pids is not None
            and now - self._pids_at < _PIDS_MAX_AGE
        ):
            return cached_pids
        pids = set(map(int, filter(str.isdigit, os.listdir(self._procfs))))
        if (
            token is not None
            and token == self._pids_token
            and cached_pids is not None
            and pids != cached_pids
            and self._tasks_token() == token
        ):
            self._pids_gate = False
            token = None
            logger.info("/proc/loadavg does not track process changes; listing every time")
        if pids != cached_pids:
            cached, memo = self._stat_fds, self._stat_memo
            for pid in cached.keys() - pids:  # exited (their reads would fail anyway)
                with contextlib.suppress(OSError):
                    os.close(cached.pop(pid))
            for pid in memo.keys() - pids:
                del memo[pid]
        self._pids, self._pids_token, self._pids_at = pids, token, now
        return pids

    def _linux_read(self, pids: Collection[int]) -> list[ProcessInfo]:
        """One ``/proc/<pid>/stat`` read per requested pid. Must hold ``_stat_lock``.

        The descriptors stay open between ticks and are re-read with ``pread`` at offset
        0 (the kernel formats the file afresh on each read): that skips a path lookup,
        an open and a close per process and halves the cost of the listing (measured
        1.46 -> 0.80 ms for ~100 processes). An open descriptor is bound to the process,
        not to the number: once the process exits, reads fail with ESRCH, even if the
        pid is reused, so a reused pid is reopened and never read through a stale fd.
        At most ``_fd_budget`` descriptors are kept; further processes are opened and
        closed on each read. Descriptors of pids that are no longer listed are closed by
        the next listing (``_linux_pids``).

        Bytes identical to the previous read of the same pid (an idle process: same
        times, rss, threads and state) return the previous ``ProcessInfo`` object without
        parsing again (~2 us saved per read). Parsing is a pure function of the bytes, so
        this cannot change a result, and the pid and start time are in the bytes, so it
        cannot mix up two processes. Entries of pids no longer listed are dropped by the
        next listing.
        """
        # Boot time is read once: process keys (pid, create_time) must stay stable even
        # if the kernel's btime shifts by a second after an NTP step.
        if self._boot is None:
            self._boot = self.boot_time()
        boot, ticks, page = self._boot, self._clock_ticks, self._page_size
        procfs = self._procfs
        cached, memo = self._stat_fds, self._stat_memo
        budget = self._fd_budget
        out: list[ProcessInfo] = []
        append = out.append
        pread, read, close = os.pread, os.read, os.close
        for pid in pids:
            fd = cached.get(pid)
            data = b""
            if fd is not None:
                try:
                    data = pread(fd, 4096, 0)
                except OSError:  # the process behind this descriptor is gone
                    del cached[pid]
                    with contextlib.suppress(OSError):
                        close(fd)
                    fd = None
            if fd is None:
                try:
                    fd = os.open(f"{procfs}/{pid}/stat", os.O_RDONLY)
                except OSError:  # exited since it was listed: not an error
                    continue
                try:
                    data = read(fd, 4096)
                except OSError:
                    close(fd)
                    continue
                if len(cached) < budget:
                    cached[pid] = fd
                else:
                    close(fd)
            last = memo.get(pid)
            if last is not None and last[0] == data:
                append(last[1])
                continue
            try:
                info = parse_linux_stat(pid, data, ticks, page, boot)
            except (ValueError, IndexError) as exc:
                logger.debug("unparsable stat", extra={"pid": pid, "error": repr(exc)})
                continue
            memo[pid] = (data, info)
            append(info)
        return out

    def _psutil_processes(self) -> Iterator[ProcessInfo]:
        for proc in psutil.process_iter(_PROCESS_ATTRS, ad_value=None):
            yield process_info_from(proc.info)

    def _psutil_read(self, pids: Collection[int]) -> Iterator[ProcessInfo]:
        for pid in pids:
            try:
                info = psutil.Process(pid).as_dict(_PROCESS_ATTRS, ad_value=None)
            except psutil.NoSuchProcess:  # gone since it was listed
                continue
            yield process_info_from(info)

    def process_details(self, pid: int, create_time: float, *, cmdline: bool) -> ProcessDetails:
        if self._linux_fast:
            return self._linux_details(pid, create_time, cmdline)
        proc = psutil.Process(pid)
        with proc.oneshot():
            # psutil derives create_time from the same stat field; allow rounding only.
            if abs(proc.create_time() - create_time) > 1.0:
                raise psutil.NoSuchProcess(pid, msg="pid reused")
            args: tuple[str, ...] | None = None
            if cmdline:
                try:
                    args = tuple(proc.cmdline())
                except psutil.AccessDenied:
                    args = None
            try:
                user: str | None = proc.username()
            except (psutil.AccessDenied, KeyError):
                user = None
        return ProcessDetails(cmdline=args, username=user)

    def _linux_details(self, pid: int, create_time: float, want_cmdline: bool) -> ProcessDetails:
        """``process_details`` from ``/proc`` with psutil's results, at a third of the
        system calls (it ran ~3 times a second: every shown row once a minute).

        Every file is opened relative to a descriptor of ``/proc/<pid>``, which stays
        bound to that process: if it exits and the pid is reused, reads fail instead of
        returning the new process's data. The start time in ``stat`` is checked against
        ``create_time`` as psutil's path does. The user name of a uid is cached for
        ``_USER_TTL`` seconds (psutil reads ``/etc/passwd`` on each call)."""
        try:
            dirfd = os.open(f"{self._procfs}/{pid}", os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, ProcessLookupError):
            raise psutil.NoSuchProcess(pid) from None
        try:
            if self._boot is None:
                self._boot = self.boot_time()
            stat = _read_at(pid, dirfd, "stat")
            info = parse_linux_stat(pid, stat, self._clock_ticks, self._page_size, self._boot)
            if abs(info.create_time - create_time) > 1.0:
                raise psutil.NoSuchProcess(pid, msg="pid reused")
            args: tuple[str, ...] | None = None
            if want_cmdline:
                try:
                    args = parse_cmdline(_read_at(pid, dirfd, "cmdline"))
                except psutil.AccessDenied:
                    args = None
                if args == () and info.status == "zombie":
                    raise psutil.ZombieProcess(pid, info.name, info.ppid)  # as psutil
            try:
                user: str | None = self._user_name(parse_real_uid(_read_at(pid, dirfd, "status")))
            except (psutil.AccessDenied, ValueError):
                user = None
        finally:
            os.close(dirfd)
        return ProcessDetails(cmdline=args, username=user)

    def _user_name(self, uid: int) -> str:
        now = time.monotonic()
        hit = self._users.get(uid)
        if hit is not None and now - hit[1] < _USER_TTL:
            return hit[0]
        import pwd  # POSIX only, like this path

        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)  # as psutil: the number when no user has it
        if len(self._users) > 4096:
            self._users.clear()
        self._users[uid] = (name, now)
        return name
