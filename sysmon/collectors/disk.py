"""Disk: per-mount usage, per-device I/O rates, and totals that do not double count.

Mounts. Pseudo filesystems (tmpfs, overlay, proc, cgroup*, ...) and mounts under
excluded prefixes are skipped. When one device is mounted several times (bind mounts,
btrfs subvolumes, a container runtime re-mounting ``/``), only the shortest mountpoint is
kept: every mount of it reports the same filesystem, so summing them would count it twice.

Devices. psutil's ``perdisk`` lists whole disks *and* their partitions on Linux. Every
listed device gets its own samples, but the totals sum only "leaf" physical devices:

* a partition is skipped when its whole disk is also listed (``sda1`` of ``sda``,
  ``nvme0n1p2`` of ``nvme0n1``, ``mmcblk0p1`` of ``mmcblk0``): its I/O is already in
  the disk's counters;
* stacked devices (``dm-N`` for LVM/crypt, ``mdN`` for software RAID) are skipped when
  any other device is present: their I/O also appears on the disks underneath;
* ``exclude_devices`` (default: loop, ram, zram, floppy, CD) are dropped everywhere.

A total rate is emitted only when every contributing device has a rate this tick (so a
counter reset on one disk makes the total absent for one tick instead of dipping).
``busy_percent`` of the totals is the maximum over all emitted devices: the busiest disk
is the bottleneck, and averaging would hide it.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterable, Mapping
from typing import ClassVar

from pydantic import Field, field_validator

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.rates import RateTracker
from sysmon.collectors.registry import register
from sysmon.collectors.source import ITEM_ERRORS, DiskIO, DiskPartition, DiskUsage, SystemSource
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "disk"

DEFAULT_EXCLUDE_FSTYPES = [
    "tmpfs", "devtmpfs", "devfs", "ramfs", "overlay", "overlayfs", "aufs", "squashfs",
    "proc", "sysfs", "cgroup*", "pstore", "securityfs", "debugfs", "tracefs", "configfs",
    "fusectl", "mqueue", "hugetlbfs", "devpts", "autofs", "binfmt_misc", "bpf", "nsfs",
    "rpc_pipefs", "efivarfs", "selinuxfs", "nfsd", "fuse.lxcfs", "fuse.gvfsd-fuse",
    "fuse.portal", "iso9660",
]  # fmt: skip
DEFAULT_EXCLUDE_MOUNTS = [
    "/proc", "/sys", "/dev", "/run/user", "/run/credentials", "/snap",
    "/var/lib/docker", "/var/lib/containers", "/var/lib/kubelet",
]  # fmt: skip
DEFAULT_EXCLUDE_DEVICES = r"^(loop|ram|zram|fd|sr)\d+$"

_PARTITION_P = re.compile(r"^(?P<disk>.*\d)p\d+$")  # nvme0n1p1, mmcblk0p1, loop0p1
_PARTITION_N = re.compile(r"^(?P<disk>.*\D)\d+$")  # sda1, vda2, xvda1, hdb3
_STACKED = re.compile(r"^(dm-\d+|md\d+)$")

_RATE_FIELDS = (
    ("read_bytes_per_sec", "read_bytes"),
    ("write_bytes_per_sec", "write_bytes"),
    ("read_ops_per_sec", "read_count"),
    ("write_ops_per_sec", "write_count"),
)


def parent_disk(name: str, present: Iterable[str] | Mapping[str, object]) -> str | None:
    """The whole disk ``name`` is a partition of, if that disk is in ``present``.

    Name-based (no sysfs): ``sda1``->``sda``, ``nvme0n1p1``->``nvme0n1``. A disk whose
    name merely ends in a digit (``nvme0n1``, ``md0``) has no listed parent, so it stays.
    """
    for pattern in (_PARTITION_P, _PARTITION_N):
        m = pattern.match(name)
        if m and m.group("disk") in present:
            return m.group("disk")
    return None


def total_devices(names: Iterable[str]) -> list[str]:
    """Devices whose I/O is summed into the totals (see module docstring)."""
    names = list(names)
    present = set(names)
    leaves = [n for n in names if parent_disk(n, present) is None]
    physical = [n for n in leaves if not _STACKED.match(n)]
    return physical or leaves


def fstype_excluded(fstype: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(fstype, p) for p in patterns)


def mount_excluded(mountpoint: str, prefixes: Iterable[str]) -> bool:
    """Prefix match on whole path components: ``/run`` excludes ``/run/x``, not ``/running``."""
    for prefix in prefixes:
        p = prefix.rstrip("/")
        if not p:  # "/" excludes everything
            return True
        if mountpoint == p or mountpoint.startswith(p + "/"):
            return True
    return False


def select_mounts(
    partitions: Iterable[DiskPartition], exclude_fstypes: list[str], exclude_mounts: list[str]
) -> list[DiskPartition]:
    """Drop pseudo/excluded mounts, keep the shortest mountpoint per device."""
    best: dict[str, DiskPartition] = {}
    for part in partitions:
        if fstype_excluded(part.fstype, exclude_fstypes):
            continue
        if mount_excluded(part.mountpoint, exclude_mounts):
            continue
        # Mounts without a real device name cannot be deduplicated: key by mountpoint.
        key = part.device if part.device and part.device != "none" else part.mountpoint
        kept = best.get(key)
        if kept is None or (len(part.mountpoint), part.mountpoint) < (
            len(kept.mountpoint),
            kept.mountpoint,
        ):
            best[key] = part
    return sorted(best.values(), key=lambda p: p.mountpoint)


def usage_percent(used: float, free: float) -> float:
    """psutil's definition: share of the space available to unprivileged users."""
    denom = used + free
    return used / denom * 100.0 if denom > 0 else 0.0


@register("disk")
class DiskCollector:
    """Mount usage and device I/O."""

    class Options(CollectorOptions):
        exclude_fstypes: list[str] = Field(
            default_factory=lambda: list(DEFAULT_EXCLUDE_FSTYPES),
            description="Filesystem types to skip; shell-style patterns (cgroup*)",
        )
        exclude_mounts: list[str] = Field(
            default_factory=lambda: list(DEFAULT_EXCLUDE_MOUNTS),
            description="Mountpoint prefixes (whole path components) to skip",
        )
        all_partitions: bool = Field(
            default=False,
            description="psutil disk_partitions(all=True): needed inside containers "
            "where / is an overlay that all=False hides",
        )
        include_devices: str | None = Field(
            default=None, description="Regex; if set only matching devices are reported"
        )
        exclude_devices: str | None = Field(
            default=DEFAULT_EXCLUDE_DEVICES, description="Regex of devices never reported"
        )
        mounts_refresh_seconds: float = Field(
            default=30.0,
            ge=0,
            le=3600,
            description="How often the mount list is re-read (usage is read every tick); "
            "0 = every tick",
        )

        @field_validator("include_devices", "exclude_devices")
        @classmethod
        def _valid_regex(cls, value: str | None) -> str | None:
            if value is not None:
                try:
                    re.compile(value)
                except re.error as exc:
                    raise ValueError(f"invalid regular expression: {exc}") from exc
            return value

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("read_bytes_per_sec", "bytes/s", "Bytes read", "rate", ("device",)),
        MetricInfo("write_bytes_per_sec", "bytes/s", "Bytes written", "rate", ("device",)),
        MetricInfo("read_ops_per_sec", "ops/s", "Read operations", "rate", ("device",)),
        MetricInfo("write_ops_per_sec", "ops/s", "Write operations", "rate", ("device",)),
        MetricInfo("busy_percent", "%", "Time the device was busy (totals: max)", "rate",
                   ("device",)),
        MetricInfo("total_bytes", "bytes", "Filesystem size", labels=("mount",), integer=True),
        MetricInfo("used_bytes", "bytes", "Used space", labels=("mount",), integer=True),
        MetricInfo("free_bytes", "bytes", "Space available to unprivileged users",
                   labels=("mount",), integer=True),
        MetricInfo("percent", "%", "used / (used + free)", labels=("mount",)),
    )  # fmt: skip

    def __init__(self, source: SystemSource, options: Options) -> None:
        self._source = source
        self._options = options
        self._include = re.compile(options.include_devices) if options.include_devices else None
        self._exclude = re.compile(options.exclude_devices) if options.exclude_devices else None
        self._rates: RateTracker[tuple[str, str]] = RateTracker()
        self._mounts: list[DiskPartition] | None = None
        self._mounts_at = 0.0

    def _device_wanted(self, name: str) -> bool:
        if self._exclude is not None and self._exclude.search(name):
            return False
        return self._include is None or bool(self._include.search(name))

    def collect(self, monotonic: float) -> Collected:
        samples: list[Sample] = []
        self._collect_usage(samples, monotonic)
        self._collect_io(samples, monotonic)
        return Collected(samples=tuple(samples))

    def _current_mounts(self, now: float) -> list[DiskPartition]:
        """The selected mounts, re-read every ``mounts_refresh_seconds``.

        Listing partitions parses ``/proc/mounts`` and resolves every device path, the
        dearest part of this collector, while mounts change rarely; usage is still read
        every tick. A mount added or removed shows up within one refresh period.
        """
        opts = self._options
        mounts = self._mounts
        age = now - self._mounts_at
        if mounts is None or not 0 <= age < opts.mounts_refresh_seconds:
            mounts = select_mounts(
                self._source.disk_partitions(all=opts.all_partitions),
                opts.exclude_fstypes,
                opts.exclude_mounts,
            )
            self._mounts, self._mounts_at = mounts, now
        return mounts

    def _collect_usage(self, samples: list[Sample], now: float) -> None:
        mounts = self._current_mounts(now)
        total = used = free = 0
        seen = 0
        for part in mounts:
            try:
                usage: DiskUsage = self._source.disk_usage(part.mountpoint)
            except ITEM_ERRORS as exc:  # unreadable/stale mount: skip it, keep the rest
                logger.debug(
                    "disk_usage failed",
                    extra={"collector": "disk", "mount": part.mountpoint, "error": repr(exc)},
                )
                continue
            labels = (("mount", part.mountpoint),)
            samples.append(Sample(METRIC, "total_bytes", float(usage.total), labels))
            samples.append(Sample(METRIC, "used_bytes", float(usage.used), labels))
            samples.append(Sample(METRIC, "free_bytes", float(usage.free), labels))
            samples.append(Sample(METRIC, "percent", usage_percent(usage.used, usage.free), labels))
            total += usage.total
            used += usage.used
            free += usage.free
            seen += 1
        if seen:
            samples.append(Sample(METRIC, "total_bytes", float(total)))
            samples.append(Sample(METRIC, "used_bytes", float(used)))
            samples.append(Sample(METRIC, "free_bytes", float(free)))
            samples.append(Sample(METRIC, "percent", usage_percent(used, free)))

    def _collect_io(self, samples: list[Sample], now: float) -> None:
        counters: Mapping[str, DiskIO] = self._source.disk_io_counters()
        names = [n for n in counters if self._device_wanted(n)]
        rates = self._rates
        per_device: dict[str, dict[str, float | None]] = {}
        busiest: float | None = None
        for dev in names:
            io = counters[dev]
            labels = (("device", dev),)
            values: dict[str, float | None] = {
                field: rates.rate((dev, attr), getattr(io, attr), now)
                for field, attr in _RATE_FIELDS
            }
            busy_rate = None
            if io.busy_time is not None:
                busy_rate = rates.rate((dev, "busy_time"), io.busy_time, now)
            # One counter going backwards means the device was reset: drop all of them.
            if any(v is None for v in values.values()) or (
                io.busy_time is not None and busy_rate is None
            ):
                values = dict.fromkeys(values)
                busy_rate = None
            for field, r in values.items():
                if r is not None:
                    samples.append(Sample(METRIC, field, r, labels))
            if busy_rate is not None:
                # busy_time is in ms: ms per second / 10 = percent of the interval.
                busy = min(100.0, busy_rate / 10.0)
                samples.append(Sample(METRIC, "busy_percent", busy, labels))
                busiest = busy if busiest is None else max(busiest, busy)
            per_device[dev] = values
        rates.end_tick()

        contributors = total_devices(names)
        if contributors:
            for field, _ in _RATE_FIELDS:
                parts = [per_device[d][field] for d in contributors]
                if all(p is not None for p in parts):
                    samples.append(Sample(METRIC, field, sum(p for p in parts if p is not None)))
        if busiest is not None:
            samples.append(Sample(METRIC, "busy_percent", busiest))

    def close(self) -> None:
        self._mounts = None
