from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from sysmon.collectors.disk import DiskCollector, mount_excluded, parent_disk, total_devices

from .fakes import FakeSource, label_values, labelled, run_ticks, totals


def make(state: dict[str, Any], **opts: Any) -> tuple[DiskCollector, FakeSource]:
    source = FakeSource(state)
    return DiskCollector(source, DiskCollector.Options(**opts)), source


def test_mounts_skip_pseudo_excluded_and_duplicate(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    first = run_ticks(collector, source, ticks[:1])[0]
    # tmpfs, overlay, cgroup2, squashfs and the bind mount of /dev/vda1 are gone
    assert label_values(first, "mount") == {"/", "/boot/efi", "/data"}
    assert labelled(first, "mount", "/") == pytest.approx(
        {"total_bytes": 100_000, "used_bytes": 40_000, "free_bytes": 55_000,
         "percent": 100 * 40_000 / 95_000}
    )  # fmt: skip
    assert totals(first) == pytest.approx(
        {"total_bytes": 301_000, "used_bytes": 190_100, "free_bytes": 105_900,
         "percent": 100 * 190_100 / 296_000}
    )  # fmt: skip


def test_duplicate_device_keeps_shortest_mountpoint(ticks: list[dict[str, Any]]) -> None:
    state = ticks[0]
    state["disk_partitions"] = [
        {"device": "/dev/sdb1", "mountpoint": "/mnt/long/path", "fstype": "ext4"},
        {"device": "/dev/sdb1", "mountpoint": "/mnt/b", "fstype": "ext4"},
        {"device": "/dev/sdb1", "mountpoint": "/mnt/a", "fstype": "ext4"},
    ]
    state["disk_usage"] = {p: {"total": 10, "used": 5, "free": 5} for p in ("/mnt/a", "/mnt/b")}
    collector, _source = make(state)
    assert label_values(collector.collect(1.0), "mount") == {"/mnt/a"}


def test_unreadable_mount_is_skipped_not_fatal(ticks: list[dict[str, Any]]) -> None:
    ticks[0]["disk_usage"]["/data"] = {"error": "PermissionError"}
    collector, _source = make(ticks[0])
    first = collector.collect(1.0)
    assert label_values(first, "mount") == {"/", "/boot/efi"}
    assert totals(first)["total_bytes"] == 101_000


def test_device_rates_and_totals_without_double_counting(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0])
    first, second, third = run_ticks(collector, source, ticks)
    assert label_values(first, "device") == set()  # no rates before the second tick
    assert label_values(second, "device") == {"vda", "vda1", "vda15", "vdb"}  # loop0 excluded
    assert labelled(second, "device", "vda") == pytest.approx(
        {"read_bytes_per_sec": 1_048_576, "write_bytes_per_sec": 2_097_152,
         "read_ops_per_sec": 100, "write_ops_per_sec": 300, "busy_percent": 25.0}
    )  # fmt: skip
    t2 = totals(second)
    # vda + vdb only: vda1/vda15 are partitions of vda
    assert t2["read_bytes_per_sec"] == pytest.approx(1_048_576 + 524_288)
    assert t2["write_bytes_per_sec"] == pytest.approx(2_097_152)
    assert t2["read_ops_per_sec"] == pytest.approx(150)
    assert t2["write_ops_per_sec"] == pytest.approx(310)
    assert t2["busy_percent"] == pytest.approx(60.0)  # the busiest device (vdb)
    # tick 3: vdb's counters went backwards -> vdb silent, totals absent, max busy from vda
    assert "vdb" not in label_values(third, "device")
    t3 = totals(third)
    assert "read_bytes_per_sec" not in t3
    assert t3["busy_percent"] == pytest.approx(10.0)


def test_no_busy_time_platform(ticks: list[dict[str, Any]]) -> None:
    for t in ticks:
        for io in t["disk_io_counters"].values():
            del io["busy_time"]
    collector, source = make(ticks[0])
    second = run_ticks(collector, source, ticks[:2])[1]
    assert "busy_percent" not in totals(second)
    assert "busy_percent" not in labelled(second, "device", "vda")


def test_include_devices_regex(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0], include_devices=r"^vdb$")
    second = run_ticks(collector, source, ticks[:2])[1]
    assert label_values(second, "device") == {"vdb"}
    assert totals(second)["read_bytes_per_sec"] == pytest.approx(524_288)


def test_bad_regex_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="invalid regular expression"):
        DiskCollector.Options(include_devices="(")


@pytest.mark.parametrize(
    ("name", "present", "parent"),
    [
        ("sda1", {"sda", "sda1"}, "sda"),
        ("sda1", {"sda1"}, None),  # whole disk not listed: the partition counts
        ("nvme0n1p2", {"nvme0n1", "nvme0n1p2"}, "nvme0n1"),
        ("nvme0n1", {"nvme0n1", "nvme0n1p2"}, None),
        ("mmcblk0p1", {"mmcblk0", "mmcblk0p1"}, "mmcblk0"),
        ("xvda1", {"xvda", "xvda1"}, "xvda"),
        ("md0", {"md0"}, None),
        ("dm-0", {"dm-0"}, None),
    ],
)
def test_parent_disk(name: str, present: set[str], parent: str | None) -> None:
    assert parent_disk(name, present) == parent


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["sda", "sda1", "sda2", "sdb"], ["sda", "sdb"]),
        (["sda", "sda1", "dm-0", "dm-1"], ["sda"]),  # LVM on sda: counted on sda
        (["md0", "sda", "sdb"], ["sda", "sdb"]),
        (["dm-0"], ["dm-0"]),  # only stacked devices visible: use them
        (["nvme0n1", "nvme0n1p1", "nvme1n1"], ["nvme0n1", "nvme1n1"]),
    ],
)
def test_total_devices(names: list[str], expected: list[str]) -> None:
    assert total_devices(names) == expected


@pytest.mark.parametrize(
    ("mount", "excluded"),
    [("/run/user/1000", True), ("/running", False), ("/sys", True), ("/", False),
     ("/snap/core/1", True), ("/srv", False)],
)  # fmt: skip
def test_mount_prefixes_match_whole_components(mount: str, excluded: bool) -> None:
    assert mount_excluded(mount, DiskCollector.Options().exclude_mounts) is excluded


def test_mount_list_is_reread_only_every_refresh_period(ticks: list[dict[str, Any]]) -> None:
    """Usage is read every tick, the mount list every ``mounts_refresh_seconds``."""
    collector, source = make(ticks[0], mounts_refresh_seconds=30)
    assert label_values(collector.collect(1000.0), "mount") == {"/", "/boot/efi", "/data"}
    source.state["disk_partitions"] = [
        p for p in source.state["disk_partitions"] if p["mountpoint"] != "/data"
    ]
    source.state["disk_usage"]["/"]["used"] = 41_000
    within = collector.collect(1029.0)
    assert labelled(within, "mount", "/")["used_bytes"] == 41_000  # usage is fresh
    assert label_values(within, "mount") == {"/", "/boot/efi", "/data"}  # list is cached
    assert source.calls.count("disk_partitions") == 1
    assert label_values(collector.collect(1030.0), "mount") == {"/", "/boot/efi"}
    assert source.calls.count("disk_partitions") == 2
    # A monotonic clock that went backwards (a new collector run) also refreshes.
    collector.collect(1000.0)
    assert source.calls.count("disk_partitions") == 3


def test_mount_refresh_zero_reads_every_tick(ticks: list[dict[str, Any]]) -> None:
    collector, source = make(ticks[0], mounts_refresh_seconds=0)
    run_ticks(collector, source, ticks)
    assert source.calls.count("disk_partitions") == len(ticks)
