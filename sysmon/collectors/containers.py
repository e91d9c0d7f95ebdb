"""Containers: CPU, memory, I/O and pids per cgroup (cgroup v2), named after what runs there.

Docker, Podman, containerd/Kubernetes and systemd all put each container or service in
its own cgroup, and cgroup v2 keeps hierarchical accounting there: a cgroup's numbers
include everything below it. So the collector picks a set of *disjoint* cgroups that
correspond to "things that run" and reads four small files of each per tick:

* ``cpu.stat`` ``usage_usec``: cumulative CPU time; its rate / 10,000 is ``cpu_percent``
  (100 = one core busy, like the processes table);
* ``memory.current``: bytes charged (anonymous memory and page cache);
* ``io.stat``: ``rbytes=``/``wbytes=`` per device, summed, as rates;
* ``pids.current``: tasks (processes and threads).

A file missing because its controller is not enabled for that cgroup (no ``memory`` in
the parent's ``cgroup.subtree_control``) leaves that field out.

**Which cgroups.** The tree under ``cgroup_root`` is walked (sorted, at most
``max_depth`` levels, re-walked every ``refresh_seconds`` or when a cgroup vanished):

* a container scope (``docker-<id>.scope``, ``libpod-<id>.scope``,
  ``cri-containerd-<id>.scope``, ``crio-<id>.scope``) or a directory named by a 64-hex
  container id (Docker's and Kubernetes' cgroupfs driver) is taken, named by the short
  id (12 hex digits, what ``docker ps`` shows);
* with ``services: true``, any other systemd unit (``*.service``, ``*.scope``) is taken
  under its unit name (``nginx.service``, ``user@1000.service``, ``session-2.scope``),
  and so is a leaf directory that is neither, under its path (``/mygroup``). Off by
  default: a systemd host has 30-60 running units, ~2 ms of reads per tick;
* ``*.slice`` and other directories (units too, when they are not taken: rootless
  Podman nests containers below ``user@1000.service``) are descended into;
* a taken cgroup is not descended into (its children are already in its numbers), and
  one whose ``cgroup.events`` says ``populated 0`` (nothing runs) is skipped.

At most ``max_cgroups`` are read (the first ones of the sorted walk; one INFO line says
so when the cap cuts): the cost is ~4 small reads per cgroup per tick.

Absent: ``cgroup_root`` is not a cgroup v2 hierarchy (no ``cgroup.controllers``: cgroup
v1, or a hybrid host whose v2 tree is at ``/sys/fs/cgroup/unified``; point
``cgroup_root`` there to get CPU per unit): no samples, one INFO line.
"""

from __future__ import annotations

import logging
import os
import re
from typing import ClassVar, NamedTuple

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.hostfs import Presence, is_absent, read_bytes
from sysmon.collectors.rates import RateTracker
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "containers"

_CONTAINER_SCOPE = re.compile(
    r"^(?:docker|libpod|cri-containerd|crio|containerd)-([0-9a-f]{12,64})\.scope$"
)
_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")
SHORT_ID = 12


class Cgroup(NamedTuple):
    path: str
    """Absolute directory of the cgroup."""
    name: str
    """The ``container`` label."""


def cgroup_name(dirname: str, relpath: str) -> tuple[str, str]:
    """``(label, kind)`` of a cgroup directory; kind is ``container``, ``unit`` or ``other``."""
    m = _CONTAINER_SCOPE.match(dirname)
    if m:
        return m.group(1)[:SHORT_ID], "container"
    if _CONTAINER_ID.match(dirname):
        return dirname[:SHORT_ID], "container"
    if dirname.endswith((".service", ".scope")):
        return dirname, "unit"
    return "/" + relpath, "other"


def _populated(path: str) -> bool:
    """``cgroup.events`` ``populated 1``; a cgroup without that file counts as populated."""
    try:
        data = read_bytes(os.path.join(path, "cgroup.events"))
    except OSError:
        return True
    for line in data.splitlines():
        if line.startswith(b"populated "):
            return line.split()[1] != b"0"
    return True


def walk_cgroups(
    root: str, max_depth: int, limit: int, services: bool = True
) -> tuple[list[Cgroup], bool]:
    """The cgroups to report (see module docstring) and whether ``limit`` cut the walk.

    With ``services`` off only containers are taken; units are then descended into like
    slices (rootless Podman puts containers below ``user@1000.service``).
    """
    found: list[Cgroup] = []

    def visit(path: str, rel: str, depth: int) -> bool:
        try:
            with os.scandir(path) as it:
                subdirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
        except OSError:
            return True  # vanished or unreadable mid-walk: skip it
        for name in subdirs:
            child, child_rel = os.path.join(path, name), f"{rel}/{name}" if rel else name
            label, kind = cgroup_name(name, child_rel)
            if not (kind == "container" or (services and kind == "unit")):
                if depth >= max_depth:
                    continue  # too deep to tell; not taken
                try:
                    with os.scandir(child) as it:
                        leaf = not any(e.is_dir(follow_symlinks=False) for e in it)
                except OSError:
                    continue
                if not leaf:
                    if not visit(child, child_rel, depth + 1):
                        return False
                    continue
                if not services or kind != "other" or name.endswith(".slice"):
                    continue  # a leaf that is no container (or an empty slice)
            if not _populated(child):
                continue
            if len(found) >= limit:
                return False
            found.append(Cgroup(child, label))
        return True

    complete = visit(root, "", 1)
    return found, not complete


def parse_flat_keyed(data: bytes, key: bytes) -> int | None:
    """The value of ``key`` in a ``key value`` per line file (``cpu.stat``)."""
    for line in data.splitlines():
        k, _, v = line.partition(b" ")
        if k == key:
            try:
                return int(v)
            except ValueError:
                return None
    return None


def parse_io_stat(data: bytes) -> tuple[int, int]:
    """``(rbytes, wbytes)`` summed over the devices of an ``io.stat``."""
    rbytes = wbytes = 0
    for line in data.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition(b"=")
            if key == b"rbytes":
                rbytes += int(value)
            elif key == b"wbytes":
                wbytes += int(value)
    return rbytes, wbytes


@register("containers")
class ContainersCollector:
    """Per-container / per-service resource use from cgroup v2."""

    class Options(CollectorOptions):
        cgroup_root: str = Field(
            default="/sys/fs/cgroup",
            description="Mount point of the cgroup v2 hierarchy (hybrid hosts: "
            "/sys/fs/cgroup/unified)",
        )
        services: bool = Field(
            default=False,
            description="Also report systemd units (*.service, *.scope) and other leaf "
            "cgroups, not only containers (~4 file reads per cgroup per tick)",
        )
        max_cgroups: int = Field(
            default=100, ge=1, le=10_000, description="At most this many cgroups are read"
        )
        max_depth: int = Field(
            default=6, ge=1, le=32, description="How deep below cgroup_root the walk goes"
        )
        refresh_seconds: float = Field(
            default=10.0,
            ge=0,
            le=3600,
            description="How often the cgroup tree is re-walked (new containers show up "
            "within this period); 0 = every tick",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("cpu_percent", "%", "CPU time used (100 = one core; totals: sum)",
                   "rate", ("container",)),
        MetricInfo("memory_bytes", "bytes", "Memory charged to the cgroup (memory.current)",
                   labels=("container",), integer=True),
        MetricInfo("io_read_bytes_per_sec", "bytes/s", "Bytes read from block devices",
                   "rate", ("container",)),
        MetricInfo("io_write_bytes_per_sec", "bytes/s", "Bytes written to block devices",
                   "rate", ("container",)),
        MetricInfo("pids", "tasks", "Processes and threads (pids.current)",
                   labels=("container",), integer=True),
        MetricInfo("count", "cgroups", "Cgroups reported", integer=True),
    )  # fmt: skip

    def __init__(self, source: object, options: Options) -> None:
        self._options = options
        self._root = options.cgroup_root
        self._cgroups: list[Cgroup] | None = None
        self._walked_at = 0.0
        self._cap_logged = False
        self._rates: RateTracker[tuple[str, str]] = RateTracker()
        self._presence = Presence(logger, METRIC)

    def _current(self, now: float) -> list[Cgroup] | None:
        opts = self._options
        age = now - self._walked_at
        if 0 <= age < opts.refresh_seconds:
            if self._cgroups is not None:
                return self._cgroups
            if self._presence.available is False:
                return None  # looked again only every refresh_seconds
        self._walked_at = now
        if not os.path.exists(os.path.join(self._root, "cgroup.controllers")):
            self._presence.absent(f"{self._root} is not a cgroup v2 hierarchy")
            self._cgroups = None
            return None
        self._presence.present()
        self._cgroups, cut = walk_cgroups(
            self._root, opts.max_depth, opts.max_cgroups, opts.services
        )
        if cut and not self._cap_logged:
            self._cap_logged = True
            logger.info(
                "containers: more than %d cgroups; only the first %d are reported "
                "(raise collectors.containers.max_cgroups)",
                opts.max_cgroups,
                opts.max_cgroups,
                extra={"collector": METRIC, "max_cgroups": opts.max_cgroups},
            )
        return self._cgroups

    def collect(self, monotonic: float) -> Collected:
        cgroups = self._current(monotonic)
        if cgroups is None:
            return Collected()
        samples: list[Sample] = []
        sums: dict[str, float] = {}
        reported = 0
        vanished = False
        for cg in cgroups:
            values = self._read(cg, monotonic)
            if values is None:
                vanished = True
                continue
            reported += 1
            labels = (("container", cg.name),)
            for field, value in values.items():
                samples.append(Sample(METRIC, field, value, labels))
                sums[field] = sums.get(field, 0.0) + value
        self._rates.end_tick()
        if vanished:
            self._cgroups = None  # re-walk next tick: something stopped
        for field, total in sums.items():
            samples.append(Sample(METRIC, field, total))
        samples.append(Sample(METRIC, "count", float(reported)))
        return Collected(samples=tuple(samples))

    def _read(self, cg: Cgroup, now: float) -> dict[str, float] | None:
        """One cgroup's fields, or ``None`` if it no longer exists."""
        values: dict[str, float] = {}
        try:
            cpu = parse_flat_keyed(read_bytes(os.path.join(cg.path, "cpu.stat")), b"usage_usec")
        except OSError as exc:
            if is_absent(exc):
                return None
            raise
        if cpu is not None:
            rate = self._rates.rate((cg.path, "cpu"), cpu, now)
            if rate is not None:
                values["cpu_percent"] = rate / 10_000.0
        for field, filename in (("memory_bytes", "memory.current"), ("pids", "pids.current")):
            data = self._optional(cg.path, filename)
            if data is not None and data.strip().isdigit():
                values[field] = float(int(data))
        io = self._optional(cg.path, "io.stat")
        if io is not None:
            rbytes, wbytes = parse_io_stat(io)
            for field, key, counter in (
                ("io_read_bytes_per_sec", "rbytes", rbytes),
                ("io_write_bytes_per_sec", "wbytes", wbytes),
            ):
                rate = self._rates.rate((cg.path, key), counter, now)
                if rate is not None:
                    values[field] = rate
        return values

    @staticmethod
    def _optional(path: str, filename: str) -> bytes | None:
        try:
            return read_bytes(os.path.join(path, filename))
        except OSError as exc:
            if is_absent(exc):
                return None
            raise

    def close(self) -> None:
        self._cgroups = None
