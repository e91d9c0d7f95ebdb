"""File-handle collector on recorded ``/proc/sys/fs/file-nr`` (tests/fixtures/proc_sys_fs)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sysmon.collectors.files import FilesCollector

from .fakes import FIXTURES, totals

TREES = FIXTURES / "proc_sys_fs"


def make(root: Path | str) -> FilesCollector:
    return FilesCollector(None, FilesCollector.Options(proc_root=str(root)))


def test_recorded_host() -> None:
    out = totals(make(TREES / "recorded").collect(1.0))
    assert out == {
        "allocated": 1572.0,
        "max": 2466116.0,
        "percent": pytest.approx(1572 / 2466116 * 100),
    }


def test_systemd_unlimited_max() -> None:
    out = totals(make(TREES / "unlimited").collect(1.0))
    assert out["allocated"] == 1824.0
    assert out["max"] == float(2**63 - 1)
    assert 0.0 < out["percent"] < 1e-12


def test_missing_file_is_empty_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = make(tmp_path)
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.files"):
        assert collector.collect(1.0).samples == ()
        assert collector.collect(2.0).samples == ()
    assert len([r for r in caplog.records if "not available" in r.getMessage()]) == 1


def test_garbage_fails_the_tick(tmp_path: Path) -> None:
    (tmp_path / "sys" / "fs").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "file-nr").write_text("12\n")
    with pytest.raises(ValueError, match="file-nr"):
        make(tmp_path).collect(1.0)


@pytest.mark.live
def test_live_file_handles() -> None:
    with open("/proc/sys/fs/file-nr") as f:
        before = int(f.read().split()[0])
    out = totals(make("/proc").collect(1.0))
    assert out["allocated"] >= 1 and abs(out["allocated"] - before) < 10_000
    assert out["max"] >= out["allocated"]
