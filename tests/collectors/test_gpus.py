"""GPU collector: a fake NVML module with hand-written nvidia-smi values
(tests/fixtures/nvml) and a hand-written amdgpu sysfs tree (tests/fixtures/sys_class_drm)."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sysmon.collectors.gpus import GpusCollector

from .fakes import FIXTURES, label_values, labelled, totals

DRM = FIXTURES / "sys_class_drm"
MiB = 1048576


class FakeNvml:
    """The slice of ``pynvml`` the collector uses, fed from a JSON fixture.

    Errors are ``NVMLError`` subclasses like pynvml's (``NVMLError_NotSupported``...).
    """

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    class NVMLError_DriverNotLoaded(NVMLError):
        pass

    def __init__(self, devices: list[dict[str, Any]], init_error: bool = False) -> None:
        self.devices = devices
        self.init_error = init_error
        self.calls: list[str] = []

    def nvmlInit(self) -> None:
        self.calls.append("init")
        if self.init_error:
            raise self.NVMLError_DriverNotLoaded("Driver Not Loaded")

    def nvmlShutdown(self) -> None:
        self.calls.append("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.devices[index]

    def _get(self, handle: dict[str, Any], key: str) -> Any:
        value = handle.get(key)
        if value is None:
            raise self.NVMLError_NotSupported("Not Supported")
        return value

    def nvmlDeviceGetUtilizationRates(self, h: dict[str, Any]) -> Any:
        return SimpleNamespace(**self._get(h, "utilization"))

    def nvmlDeviceGetMemoryInfo(self, h: dict[str, Any]) -> Any:
        return SimpleNamespace(**self._get(h, "memory"))

    def nvmlDeviceGetTemperature(self, h: dict[str, Any], sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return int(self._get(h, "temperature"))

    def nvmlDeviceGetPowerUsage(self, h: dict[str, Any]) -> int:
        return int(self._get(h, "power_mw"))

    def nvmlDeviceGetComputeRunningProcesses(self, h: dict[str, Any]) -> list[Any]:
        return [SimpleNamespace(**p) for p in h.get("compute", [])]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: dict[str, Any]) -> list[Any]:
        return [SimpleNamespace(**p) for p in h.get("graphics", [])]


def nvml_devices() -> list[dict[str, Any]]:
    doc = json.loads((FIXTURES / "nvml" / "two_gpus.json").read_text())
    devices: list[dict[str, Any]] = doc["devices"]
    return devices


def make(nvml: Any = None, **options: Any) -> GpusCollector:
    options.setdefault("sys_root", str(DRM))
    return GpusCollector(None, GpusCollector.Options(**options), nvml=nvml)


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    for pid, comm in ((2211, "python"), (1733, "Xorg"), (3050, "python3")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
    return tmp_path


def test_nvidia_through_nvml(tmp_path: Path) -> None:
    out = make(FakeNvml(nvml_devices()), amd=False).collect(1.0)
    assert label_values(out, "gpu") == {"nvidia0", "nvidia1"}
    assert labelled(out, "gpu", "nvidia0") == {
        "utilization_percent": 37.0,
        "memory_used_bytes": 10240.0 * MiB,
        "memory_total_bytes": 24576.0 * MiB,
        "memory_percent": pytest.approx(10240 / 24576 * 100),
        "temperature_celsius": 45.0,
        "power_watts": 121.043,
    }
    t4 = labelled(out, "gpu", "nvidia1")
    assert "power_watts" not in t4  # NVMLError_NotSupported: left out
    assert t4["utilization_percent"] == 100.0
    assert totals(out) == {
        "count": 2.0,
        "utilization_percent": 68.5,  # mean
        "memory_used_bytes": (10240.0 + 14930.0) * MiB,
        "memory_total_bytes": (24576.0 + 15360.0) * MiB,
        "memory_percent": pytest.approx((10240 + 14930) / (24576 + 15360) * 100),
        "temperature_celsius": 62.0,  # hottest
        "power_watts": 121.043,
    }
    assert out.rows == ()  # process rows are opt-in


def test_nvidia_process_rows(proc: Path) -> None:
    out = make(FakeNvml(nvml_devices()), amd=False, process_rows=True, proc_root=str(proc))
    rows = [dict(r) for r in out.collect(1.0).rows]
    assert rows == [
        {"gpu": "nvidia0", "pid": 2211, "name": "python", "used_memory_bytes": 10276044800,
         "type": "compute"},
        {"gpu": "nvidia0", "pid": 1733, "name": "Xorg", "used_memory_bytes": 432013312,
         "type": "graphics"},
        {"gpu": "nvidia1", "pid": 3050, "name": "python3", "used_memory_bytes": 15623782400,
         "type": "compute+graphics"},
    ]  # fmt: skip


def test_amd_from_sysfs() -> None:
    out = make(nvidia=False).collect(1.0)
    assert label_values(out, "gpu") == {"card0", "card1"}  # Intel card2 and connectors skipped
    assert labelled(out, "gpu", "card0") == {
        "utilization_percent": 42.0,
        "memory_used_bytes": 2147483648.0,
        "memory_total_bytes": 17163091968.0,
        "memory_percent": pytest.approx(2147483648 / 17163091968 * 100),
        "temperature_celsius": 54.0,
        "power_watts": 87.0,  # power1_input (µW)
    }
    assert labelled(out, "gpu", "card1")["power_watts"] == 9.123  # power1_average
    assert labelled(out, "gpu", "card1")["temperature_celsius"] == 41.5
    assert totals(out)["count"] == 2.0
    assert totals(out)["power_watts"] == pytest.approx(96.123)


def test_nvidia_and_amd_together() -> None:
    out = make(FakeNvml(nvml_devices())).collect(1.0)
    assert label_values(out, "gpu") == {"nvidia0", "nvidia1", "card0", "card1"}
    assert totals(out)["count"] == 4.0


def test_no_driver_no_card_is_empty_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nvml = FakeNvml([], init_error=True)
    collector = make(nvml, sys_root=str(tmp_path), cards_refresh_seconds=0)
    with caplog.at_level(logging.INFO, logger="sysmon.collectors.gpus"):
        for i in range(3):
            assert collector.collect(float(i)).samples == ()
    assert nvml.calls == ["init"]  # not retried every tick
    lines = [r.getMessage() for r in caplog.records if "not available" in r.getMessage()]
    assert len(lines) == 1 and "Driver Not Loaded" in lines[0]
    collector.close()


def test_nvml_package_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes ``import pynvml`` fail
    collector = make(None, sys_root=str(tmp_path))
    assert collector.collect(1.0).samples == ()
    assert collector._nvidia_off is not None and "nvidia-ml-py" in collector._nvidia_off


def test_amd_card_list_refresh(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(DRM, tmp_path, dirs_exist_ok=True)
    shutil.rmtree(tmp_path / "class" / "drm" / "card1")
    collector = make(nvidia=False, sys_root=str(tmp_path), cards_refresh_seconds=60)
    assert label_values(collector.collect(100.0), "gpu") == {"card0"}
    shutil.copytree(DRM / "class" / "drm" / "card1", tmp_path / "class" / "drm" / "card1")
    assert label_values(collector.collect(130.0), "gpu") == {"card0"}
    assert label_values(collector.collect(160.0), "gpu") == {"card0", "card1"}


def test_close_shuts_nvml_down() -> None:
    nvml = FakeNvml(nvml_devices())
    collector = make(nvml, amd=False)
    collector.collect(1.0)
    collector.close()
    assert nvml.calls == ["init", "shutdown"]


@pytest.mark.live
def test_live_gpus_on_this_host() -> None:
    """Off without error where there is no GPU (this VM); real numbers where there is."""
    collector = GpusCollector(None, GpusCollector.Options())
    out = collector.collect(1.0)
    has_nvml = importlib.util.find_spec("pynvml") is not None
    amd_cards = [
        p for p in Path("/sys/class/drm").glob("card*/device/gpu_busy_percent") if p.exists()
    ]
    if not has_nvml and not amd_cards:
        assert out.samples == ()
    for s in out.samples:
        if s.field.endswith("percent"):
            assert 0.0 <= s.value <= 100.0
    collector.close()
