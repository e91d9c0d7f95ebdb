"""System-wide open file handles, from ``/proc/sys/fs/file-nr``.

When the kernel's file table is full every ``open``, ``socket`` and ``accept`` on the
host fails with ``ENFILE``, whatever each process's own limit says; ``percent`` is the
number to alert on. ``file-nr`` holds three numbers: allocated handles, allocated but
unused (always 0 since Linux 2.6) and the maximum (``fs.file-max``). systemd sets that
maximum to 2^63-1 on many distributions, so ``percent`` is then ~0 and only
``allocated`` is informative.

Linux only; elsewhere (or with no such file) the collector reports nothing and says so
once at INFO.
"""

from __future__ import annotations

import logging
import os
from typing import ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.hostfs import KernelFiles, Presence, is_absent
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "files"


@register("files")
class FilesCollector:
    """Allocated vs maximum file handles of the whole system (totals only)."""

    class Options(CollectorOptions):
        proc_root: str = Field(default="/proc", description="Where procfs is mounted")

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("allocated", "files", "File handles allocated by the kernel", integer=True),
        MetricInfo("max", "files", "Maximum file handles (fs.file-max)", integer=True),
        MetricInfo("percent", "%", "allocated / max"),
    )

    def __init__(self, source: object, options: Options) -> None:
        self._path = os.path.join(options.proc_root, "sys", "fs", "file-nr")
        self._presence = Presence(logger, METRIC)
        self._files = KernelFiles()

    def collect(self, monotonic: float) -> Collected:
        try:
            data = self._files.read(self._path)
        except OSError as exc:
            if not is_absent(exc):
                raise
            self._presence.absent(f"{self._path}: {exc.strerror or exc}")
            return Collected()
        parts = data.split()
        if len(parts) < 3:
            raise ValueError(f"unexpected {self._path} content: {data[:80]!r}")
        self._presence.present()
        allocated, maximum = int(parts[0]), int(parts[2])
        samples = [
            Sample(METRIC, "allocated", float(allocated)),
            Sample(METRIC, "max", float(maximum)),
        ]
        if maximum > 0:
            samples.append(Sample(METRIC, "percent", allocated / maximum * 100.0))
        return Collected(samples=tuple(samples))

    def close(self) -> None:
        self._files.close()
