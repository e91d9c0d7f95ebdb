"""PSI collector on recorded ``/proc/pressure`` trees (tests/fixtures/proc_pressure)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from sysmon.collectors import pressure
from sysmon.collectors.pressure import PressureCollector, parse_pressure

from .fakes import FIXTURES, totals

TREES = FIXTURES / "proc_pressure"


def make(root: Path | str) -> PressureCollector:
    return PressureCollector(None, PressureCollector.Options(proc_root=str(root)))


def lay(root: Path, tick: str) -> Path:
    """Put the recorded ``tick`` tree at ``root`` (over the previous one), like a tick."""
    shutil.copytree(TREES / tick, root, dirs_exist_ok=True)
    return root


def test_averages_on_first_tick_and_stall_rates_from_the_second(tmp_path: Path) -> None:
    collector = make(lay(tmp_path, "tick1"))
    first = totals(collector.collect(1000.0))
    assert first["cpu_some_avg10"] == 66.68
    assert first["cpu_some_avg60"] == 55.66
    assert first["cpu_some_avg300"] == 26.51
    assert first["io_full_avg10"] == 5.77
    assert first["memory_full_avg300"] == 0.0
    assert len(first) == 18  # 3 resources x some/full x 3 windows, no rates yet
    assert not any(f.endswith("stall_percent") for f in first)

    lay(tmp_path, "tick2")
    second = totals(collector.collect(1001.0))
    # total went 129495941 -> 130338485 µs in one second: 842544 µs = 84.2544 %
    assert second["cpu_some_stall_percent"] == pytest.approx(84.2544)
    assert second["io_some_stall_percent"] == pytest.approx((15203833 - 15111105) / 1e4)
    assert second["io_full_stall_percent"] == pytest.approx((10403529 - 10382022) / 1e4)
    assert second["memory_some_stall_percent"] == 0.0
    assert second["cpu_full_stall_percent"] == 0.0
    assert second["io_some_avg10"] == 11.06


def test_rate_over_a_longer_interval_and_reset(tmp_path: Path) -> None:
    collector = make(lay(tmp_path, "tick1"))
    collector.collect(1000.0)
    lay(tmp_path, "tick2")
    second = totals(collector.collect(1004.0))
    assert second["cpu_some_stall_percent"] == pytest.approx(84.2544 / 4)
    # back to tick1's smaller counters: a reset, so no rate (never negative)
    lay(tmp_path, "tick1")
    third = totals(collector.collect(1005.0))
    assert "cpu_some_stall_percent" not in third
    assert third["memory_some_stall_percent"] == 0.0  # 0 -> 0 is not a reset


def test_kernel_without_cpu_full_line_omits_those_fields() -> None:
    collector = make(TREES / "linux_5_4")
    collector.collect(1.0)
    out = totals(collector.collect(2.0))
    assert out["cpu_some_avg10"] == 2.04
    assert not any(f.startswith("cpu_full") for f in out)
    assert out["io_full_avg60"] == 0.03
    assert out["io_full_stall_percent"] == 0.0


def test_no_pressure_directory_is_empty_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = make(tmp_path)
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.pressure"):
        for i in range(5):
            assert collector.collect(float(i)).samples == ()
    lines = [r for r in caplog.records if "not available" in r.getMessage()]
    assert len(lines) == 1
    assert "pressure" in lines[0].getMessage() and "cpu" in lines[0].getMessage()


def test_psi_disabled_at_boot_is_absent_not_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def eopnotsupp(self: object, path: str, size: int = 0) -> bytes:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP), path)

    monkeypatch.setattr(pressure.KernelFiles, "read", eopnotsupp)
    collector = make(TREES / "tick1")
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.pressure"):
        assert collector.collect(1.0).samples == ()
        assert collector.collect(2.0).samples == ()
    assert len([r for r in caplog.records if "not available" in r.getMessage()]) == 1


def test_other_read_errors_fail_the_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: object, path: str, size: int = 0) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    monkeypatch.setattr(pressure.KernelFiles, "read", denied)
    with pytest.raises(PermissionError):
        make(TREES / "tick1").collect(1.0)


def test_parse_skips_garbage() -> None:
    parsed = parse_pressure(b"some avg10=1.00 avg60=x total=5\nfull avg10=2.00 total=7\nbogus\n")
    assert parsed == {"full": {"avg10": 2.0, "total": 7.0}}


@pytest.mark.live
def test_live_pressure_on_this_host() -> None:
    if not os.path.exists("/proc/pressure/cpu"):
        pytest.skip("this kernel has no /proc/pressure (CONFIG_PSI off)")
    collector = make("/proc")
    collector.collect(time.monotonic())
    time.sleep(0.2)
    out = totals(collector.collect(time.monotonic()))
    assert 0.0 <= out["cpu_some_avg10"] <= 100.0
    assert 0.0 <= out["io_some_stall_percent"] <= 100.0
    assert "memory_some_stall_percent" in out
