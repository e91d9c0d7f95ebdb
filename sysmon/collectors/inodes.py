"""Inodes: per-mount inode usage (``statvfs`` ``f_files``/``f_ffree``, what ``df -i`` shows).

A filesystem can refuse new files with space to spare when it runs out of inodes (mail
spools, caches, CI workspaces full of tiny files on ext4, whose inode count is fixed at
``mkfs``). ``percent`` is the number to alert on.

Mounts are chosen exactly as the disk collector chooses them (its ``select_mounts``,
imported, with the same defaults and the same options): pseudo filesystems and excluded
prefixes skipped, one mountpoint per device. Filesystems without a fixed inode table
(btrfs, vfat, some network filesystems) report ``f_files == 0``; they are skipped, since
"0 of 0 inodes" would read as 0 % or 100 % depending on taste, both wrong. The totals sum
the mounts that were reported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import ClassVar, Protocol

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.disk import DEFAULT_EXCLUDE_FSTYPES, DEFAULT_EXCLUDE_MOUNTS, select_mounts
from sysmon.collectors.registry import register
from sysmon.collectors.source import ITEM_ERRORS, DiskPartition, SystemSource
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "inodes"


class StatvfsResult(Protocol):
    """The two ``os.statvfs_result`` fields used here (tests pass plain objects)."""

    @property
    def f_files(self) -> int: ...

    @property
    def f_ffree(self) -> int: ...


@register("inodes")
class InodesCollector:
    """Inode usage per mount and summed over mounts."""

    class Options(CollectorOptions):
        exclude_fstypes: list[str] = Field(
            default_factory=lambda: list(DEFAULT_EXCLUDE_FSTYPES),
            description="Filesystem types to skip; shell-style patterns (same as disk)",
        )
        exclude_mounts: list[str] = Field(
            default_factory=lambda: list(DEFAULT_EXCLUDE_MOUNTS),
            description="Mountpoint prefixes (whole path components) to skip (same as disk)",
        )
        all_partitions: bool = Field(
            default=False, description="psutil disk_partitions(all=True), as for disk"
        )
        mounts_refresh_seconds: float = Field(
            default=30.0,
            ge=0,
            le=3600,
            description="How often the mount list is re-read (inodes are read every "
            "tick); 0 = every tick",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo(
            "total", "inodes", "Inodes of the filesystem (f_files)", labels=("mount",), integer=True
        ),
        MetricInfo(
            "used", "inodes", "Inodes in use (f_files - f_ffree)", labels=("mount",), integer=True
        ),
        MetricInfo("free", "inodes", "Free inodes (f_ffree)", labels=("mount",), integer=True),
        MetricInfo("percent", "%", "used / total", labels=("mount",)),
    )

    def __init__(
        self,
        source: SystemSource,
        options: Options,
        statvfs: Callable[[str], StatvfsResult] = os.statvfs,
    ) -> None:
        self._source = source
        self._options = options
        self._statvfs = statvfs
        self._mounts: list[DiskPartition] | None = None
        self._mounts_at = 0.0
        self._no_inodes: set[str] = set()

    def _current_mounts(self, now: float) -> list[DiskPartition]:
        """The disk collector's mount selection, re-read every ``mounts_refresh_seconds``."""
        opts = self._options
        age = now - self._mounts_at
        if self._mounts is None or not 0 <= age < opts.mounts_refresh_seconds:
            self._mounts = select_mounts(
                self._source.disk_partitions(all=opts.all_partitions),
                opts.exclude_fstypes,
                opts.exclude_mounts,
            )
            self._mounts_at = now
        return self._mounts

    def collect(self, monotonic: float) -> Collected:
        samples: list[Sample] = []
        sum_total = sum_free = 0
        for part in self._current_mounts(monotonic):
            mount = part.mountpoint
            try:
                st = self._statvfs(mount)
            except ITEM_ERRORS as exc:  # stale NFS, unmounted meanwhile: skip this one
                logger.debug(
                    "statvfs failed",
                    extra={"collector": METRIC, "mount": mount, "error": repr(exc)},
                )
                continue
            total, free = int(st.f_files), int(st.f_ffree)
            if total <= 0:
                if mount not in self._no_inodes:
                    self._no_inodes.add(mount)
                    logger.debug(
                        "no inode table, skipped",
                        extra={"collector": METRIC, "mount": mount, "fstype": part.fstype},
                    )
                continue
            free = min(max(free, 0), total)
            labels = (("mount", mount),)
            samples.extend(_usage(total, free, labels))
            sum_total += total
            sum_free += free
        if sum_total:
            samples.extend(_usage(sum_total, sum_free, ()))
        return Collected(samples=tuple(samples))

    def close(self) -> None:
        self._mounts = None


def _usage(total: int, free: int, labels: tuple[tuple[str, str], ...]) -> list[Sample]:
    used = total - free
    return [
        Sample(METRIC, "total", float(total), labels),
        Sample(METRIC, "used", float(used), labels),
        Sample(METRIC, "free", float(free), labels),
        Sample(METRIC, "percent", used / total * 100.0, labels),
    ]
