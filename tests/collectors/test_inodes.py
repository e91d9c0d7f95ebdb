"""Inodes collector: the disk collector's mount selection plus recorded statvfs values."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

import pytest

from sysmon.collectors.inodes import InodesCollector

from .fakes import FIXTURES, FakeSource, label_values, labelled, totals


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "inodes" / "mounts.json").read_text())
    return doc


class FakeStatvfs:
    def __init__(self, table: dict[str, dict[str, int]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, path: str) -> Any:
        self.calls.append(path)
        if path not in self.table:
            raise FileNotFoundError(path)
        return SimpleNamespace(**self.table[path])


def make(doc: dict[str, Any], **options: Any) -> tuple[InodesCollector, FakeSource, FakeStatvfs]:
    source = FakeSource({"disk_partitions": doc["disk_partitions"]})
    statvfs = FakeStatvfs(doc["statvfs"])
    return InodesCollector(source, InodesCollector.Options(**options), statvfs), source, statvfs


def test_per_mount_and_totals_with_the_disk_collectors_mount_rules() -> None:
    collector, _, _ = make(load())
    out = collector.collect(1.0)
    # vfat/btrfs (f_files 0) skipped, tmpfs and /snap excluded, the bind mount deduplicated
    assert label_values(out, "mount") == {"/", "/srv/data"}
    root = labelled(out, "mount", "/")
    assert root == {
        "total": 16777216.0,
        "used": 16777216.0 - 16313531.0,
        "free": 16313531.0,
        "percent": pytest.approx((16777216 - 16313531) / 16777216 * 100),
    }
    assert labelled(out, "mount", "/srv/data")["used"] == 1800.0
    total = totals(out)
    assert total["total"] == 16777216.0 + 52428800.0
    assert total["used"] == (16777216 - 16313531) + 1800.0
    assert total["percent"] == pytest.approx(total["used"] / total["total"] * 100)


def test_options_are_the_disk_collectors() -> None:
    collector, _, statvfs = make(load(), exclude_mounts=["/srv"], exclude_fstypes=["vfat"])
    out = collector.collect(1.0)
    assert label_values(out, "mount") == {"/", "/run"}  # tmpfs no longer excluded
    assert "/srv/data" not in statvfs.calls


def test_mount_list_refresh_and_unreadable_mount() -> None:
    doc = load()
    collector, source, statvfs = make(doc)
    collector.collect(100.0)
    assert source.calls.count("disk_partitions") == 1
    del statvfs.table["/srv/data"]  # e.g. a stale network mount: skipped, rest reported
    out = collector.collect(110.0)
    assert label_values(out, "mount") == {"/"}
    assert totals(out)["total"] == 16777216.0
    assert source.calls.count("disk_partitions") == 1  # not re-read before 30 s
    collector.collect(131.0)
    assert source.calls.count("disk_partitions") == 2


def test_no_mounts_with_inodes_emits_nothing() -> None:
    doc = load()
    doc["disk_partitions"] = [p for p in doc["disk_partitions"] if p["fstype"] == "btrfs"]
    collector, _, _ = make(doc)
    assert collector.collect(1.0).samples == ()


@pytest.mark.live
def test_live_root_filesystem() -> None:
    from sysmon.collectors.source import PsutilSource

    collector = InodesCollector(PsutilSource(), InodesCollector.Options())
    out = collector.collect(1.0)
    st = os.statvfs("/")
    if st.f_files == 0:
        pytest.skip("/ has no inode table here (btrfs?)")
    mounts = label_values(out, "mount")
    assert mounts, "at least one real filesystem"
    for mount in mounts:
        values = labelled(out, "mount", mount)
        assert values["used"] + values["free"] == values["total"]
        assert 0.0 <= values["percent"] <= 100.0
