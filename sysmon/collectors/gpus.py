"""GPUs: utilisation, memory, temperature and power of NVIDIA (NVML) and AMD (sysfs) GPUs.

**NVIDIA** through NVML, the library behind ``nvidia-smi``, via the ``nvidia-ml-py``
package (module ``pynvml``; optional extra ``sysmon[gpu]``). It is imported lazily on
the first tick, so hosts without it pay nothing; no package, or no driver
(``nvmlInit`` fails), turns the NVIDIA part off for the life of the agent (restart it
after installing a driver). The NVML module is injectable (``nvml=``) so tests run on
recorded values without a GPU. A reading the card does not support (power on many
consumer cards, temperature on some vGPUs) raises ``NVMLError_NotSupported`` and is left
out. Power is ``nvmlDeviceGetPowerUsage`` (milliwatts) / 1000.

**AMD** through amdgpu's sysfs files under ``/sys/class/drm/card<N>/device/``:
``gpu_busy_percent``, ``mem_info_vram_used``, ``mem_info_vram_total`` and the card's
hwmon ``temp1_input`` (millidegrees, the "edge" sensor) and ``power1_average`` or
``power1_input`` (microwatts). Cards without ``gpu_busy_percent`` (Intel, other
drivers) are ignored. The card list is re-read every ``cards_refresh_seconds``.

Label ``gpu``: ``nvidia<index>`` (NVML's index, as ``nvidia-smi`` numbers them) and the
DRM card name for AMD (``card0``). Totals: mean utilisation, summed memory and power,
the hottest temperature, and ``count``.

Per-process GPU memory (NVIDIA only) comes as ``Collected.rows`` when ``process_rows``
is on: ``{"gpu", "pid", "name", "used_memory_bytes", "type"}``. It is off by default
because ``serialize.snapshot_document`` shows the rows of the first collector that has
any as the ``/current`` process table, and ``gpus`` sorts before ``processes``.

Absent: no GPU of either kind: no samples, one INFO line.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from sysmon.collectors.base import CollectorOptions
from sysmon.collectors.hostfs import Presence, is_absent, read_bytes
from sysmon.collectors.registry import register
from sysmon.models import Collected, MetricInfo, Sample

logger = logging.getLogger(__name__)

METRIC = "gpus"
_CARD = re.compile(r"^card\d+$")
_HWMON = re.compile(r"^hwmon\d+$")


def _gpu_samples(gpu: str, values: Mapping[str, float]) -> list[Sample]:
    labels = (("gpu", gpu),)
    return [Sample(METRIC, field, value, labels) for field, value in values.items()]


class _Nvidia:
    """The NVML side: initialised once, then one set of calls per device per tick."""

    def __init__(self, nvml: Any, proc_root: str, process_rows: bool) -> None:
        self.nvml = nvml
        self.proc_root = proc_root
        self.process_rows = process_rows
        self.handles: list[Any] = []

    def start(self) -> str | None:
        """Initialise NVML; ``None`` on success, else why NVIDIA GPUs are not monitored."""
        nvml = self.nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return f"NVML: {exc}"
        try:
            count = int(nvml.nvmlDeviceGetCount())
            self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except nvml.NVMLError as exc:
            self.stop()
            return f"NVML device list: {exc}"
        return None if self.handles else "NVML: no device"

    def stop(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError as exc:
            logger.debug("nvmlShutdown failed", extra={"collector": METRIC, "error": repr(exc)})
        self.handles = []

    def read(self) -> tuple[dict[str, dict[str, float]], list[dict[str, object]]]:
        nvml = self.nvml
        gpus: dict[str, dict[str, float]] = {}
        rows: list[dict[str, object]] = []
        for index, handle in enumerate(self.handles):
            gpu = f"nvidia{index}"
            values: dict[str, float] = {}

            def attempt(fn: Any, *args: Any, _h: Any = handle, _gpu: str = gpu) -> Any:
                return self._attempt(fn, _h, _gpu, *args)

            util = attempt(nvml.nvmlDeviceGetUtilizationRates)
            if util is not None:
                values["utilization_percent"] = float(util.gpu)
            mem = attempt(nvml.nvmlDeviceGetMemoryInfo)
            if mem is not None:
                values["memory_used_bytes"] = float(mem.used)
                values["memory_total_bytes"] = float(mem.total)
                if mem.total:
                    values["memory_percent"] = mem.used / mem.total * 100.0
            temp = attempt(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU)
            if temp is not None:
                values["temperature_celsius"] = float(temp)
            power = attempt(nvml.nvmlDeviceGetPowerUsage)
            if power is not None:
                values["power_watts"] = float(power) / 1000.0
            gpus[gpu] = values
            if self.process_rows:
                rows.extend(self._processes(gpu, attempt))
        return gpus, rows

    def _attempt(self, fn: Any, handle: Any, gpu: str, *args: Any) -> Any:
        """``fn(handle, *args)``, or ``None`` when NVML says no (not supported, GPU lost)."""
        try:
            return fn(handle, *args)
        except self.nvml.NVMLError as exc:
            logger.debug(
                "NVML call failed",
                extra={"collector": METRIC, "gpu": gpu, "call": getattr(fn, "__name__", "?"),
                       "error": repr(exc)},
            )  # fmt: skip
            return None

    def _processes(self, gpu: str, attempt: Any) -> list[dict[str, object]]:
        nvml = self.nvml
        seen: dict[int, dict[str, object]] = {}
        used_of: dict[int, int] = {}
        for kind, fn in (
            ("compute", nvml.nvmlDeviceGetComputeRunningProcesses),
            ("graphics", nvml.nvmlDeviceGetGraphicsRunningProcesses),
        ):
            for proc in attempt(fn) or ():
                pid = int(proc.pid)
                used = proc.usedGpuMemory  # None under Windows WDDM / when unknown
                row = seen.get(pid)
                if row is not None:  # both compute and graphics: one row
                    row["type"] = "compute+graphics"
                    continue
                used_of[pid] = 0 if used is None else int(used)
                seen[pid] = {
                    "gpu": gpu,
                    "pid": pid,
                    "name": self._comm(pid),
                    "used_memory_bytes": None if used is None else int(used),
                    "type": kind,
                }
        return [seen[pid] for pid in sorted(seen, key=lambda p: (-used_of[p], p))]

    def _comm(self, pid: int) -> str:
        try:
            return read_bytes(os.path.join(self.proc_root, str(pid), "comm")).decode().strip()
        except (OSError, UnicodeDecodeError):
            return ""


def _read_int(path: str) -> int | None:
    try:
        return int(read_bytes(path).strip())
    except OSError as exc:
        if is_absent(exc) or isinstance(exc, PermissionError):
            return None
        raise
    except ValueError:
        return None


class _Amd:
    """amdgpu cards under ``<sys_root>/class/drm``."""

    def __init__(self, sys_root: str) -> None:
        self.drm = os.path.join(sys_root, "class", "drm")
        self.cards: dict[str, str] = {}
        """card name -> its ``device`` directory."""

    def refresh(self) -> None:
        cards: dict[str, str] = {}
        try:
            names = sorted(n for n in os.listdir(self.drm) if _CARD.match(n))
        except OSError:
            names = []
        for name in names:
            device = os.path.join(self.drm, name, "device")
            if os.path.exists(os.path.join(device, "gpu_busy_percent")):
                cards[name] = device
        self.cards = cards

    def read(self) -> dict[str, dict[str, float]]:
        gpus: dict[str, dict[str, float]] = {}
        for name, device in self.cards.items():
            values: dict[str, float] = {}
            busy = _read_int(os.path.join(device, "gpu_busy_percent"))
            if busy is not None:
                values["utilization_percent"] = float(busy)
            used = _read_int(os.path.join(device, "mem_info_vram_used"))
            total = _read_int(os.path.join(device, "mem_info_vram_total"))
            if used is not None and total is not None:
                values["memory_used_bytes"] = float(used)
                values["memory_total_bytes"] = float(total)
                if total:
                    values["memory_percent"] = used / total * 100.0
            hwmon = self._hwmon(device)
            if hwmon is not None:
                temp = _read_int(os.path.join(hwmon, "temp1_input"))
                if temp is not None:
                    values["temperature_celsius"] = temp / 1000.0
                power = _read_int(os.path.join(hwmon, "power1_average"))
                if power is None:
                    power = _read_int(os.path.join(hwmon, "power1_input"))
                if power is not None:
                    values["power_watts"] = power / 1e6
            gpus[name] = values
        return gpus

    @staticmethod
    def _hwmon(device: str) -> str | None:
        try:
            names = sorted(n for n in os.listdir(os.path.join(device, "hwmon")) if _HWMON.match(n))
        except OSError:
            return None
        return os.path.join(device, "hwmon", names[0]) if names else None


@register("gpus")
class GpusCollector:
    """NVIDIA and AMD GPU utilisation, memory, temperature, power."""

    class Options(CollectorOptions):
        nvidia: bool = Field(default=True, description="Read NVIDIA GPUs through NVML")
        amd: bool = Field(default=True, description="Read amdgpu cards from sysfs")
        sys_root: str = Field(default="/sys", description="Where sysfs is mounted")
        proc_root: str = Field(default="/proc", description="Where procfs is mounted")
        cards_refresh_seconds: float = Field(
            default=60.0, ge=0, le=86400,
            description="How often /sys/class/drm is re-listed for amdgpu cards",
        )  # fmt: skip
        process_rows: bool = Field(
            default=False,
            description="Per-process GPU memory rows (NVIDIA); see the module docstring",
        )

    name: ClassVar[str]
    fields: ClassVar[tuple[MetricInfo, ...]] = (
        MetricInfo("utilization_percent", "%", "Time the GPU was busy (totals: mean)",
                   labels=("gpu",)),
        MetricInfo("memory_used_bytes", "bytes", "GPU memory in use", labels=("gpu",),
                   integer=True),
        MetricInfo("memory_total_bytes", "bytes", "GPU memory size", labels=("gpu",),
                   integer=True),
        MetricInfo("memory_percent", "%", "memory used / total", labels=("gpu",)),
        MetricInfo("temperature_celsius", "°C", "GPU temperature (totals: the hottest)",
                   labels=("gpu",)),
        MetricInfo("power_watts", "W", "Power draw (totals: sum)", labels=("gpu",)),
        MetricInfo("count", "GPUs", "GPUs reported", integer=True),
    )  # fmt: skip

    def __init__(self, source: object, options: Options, nvml: Any | None = None) -> None:
        self._options = options
        self._nvml_module = nvml
        self._nvidia: _Nvidia | None = None
        self._nvidia_off: str | None = None if options.nvidia else "disabled in config"
        self._amd = _Amd(options.sys_root) if options.amd else None
        self._cards_at: float | None = None
        self._presence = Presence(logger, METRIC)

    def _start_nvidia(self) -> None:
        nvml = self._nvml_module
        if nvml is None:
            try:
                nvml = importlib.import_module("pynvml")
            except ImportError:
                self._nvidia_off = "nvidia-ml-py not installed (pip install 'sysmon[gpu]')"
                return
        nvidia = _Nvidia(nvml, self._options.proc_root, self._options.process_rows)
        why = nvidia.start()
        if why is None:
            self._nvidia = nvidia
            logger.info(
                "gpus: NVML started, %d NVIDIA GPU(s)",
                len(nvidia.handles),
                extra={"collector": METRIC},
            )
        else:
            self._nvidia_off = why

    def collect(self, monotonic: float) -> Collected:
        if self._nvidia is None and self._nvidia_off is None:
            self._start_nvidia()
        gpus: dict[str, dict[str, float]] = {}
        rows: list[dict[str, object]] = []
        if self._nvidia is not None:
            nv, rows = self._nvidia.read()
            gpus.update(nv)
        amd = self._amd
        if amd is not None:
            last = self._cards_at
            if last is None or not 0 <= monotonic - last < self._options.cards_refresh_seconds:
                amd.refresh()
                self._cards_at = monotonic
            gpus.update(amd.read())
        if not gpus:
            amd_why = "no amdgpu card" if amd is not None else "amd disabled in config"
            self._presence.absent(f"NVIDIA: {self._nvidia_off}; AMD: {amd_why}")
            return Collected()
        self._presence.present()
        samples: list[Sample] = []
        for gpu, values in gpus.items():
            samples.extend(_gpu_samples(gpu, values))
        samples.extend(_totals(gpus.values()))
        return Collected(samples=tuple(samples), rows=tuple(rows))

    def close(self) -> None:
        if self._nvidia is not None:
            self._nvidia.stop()
            self._nvidia = None


def _totals(per_gpu: Any) -> list[Sample]:
    values: list[Mapping[str, float]] = list(per_gpu)
    out: list[Sample] = [Sample(METRIC, "count", float(len(values)))]

    def present(field: str) -> list[float]:
        return [v[field] for v in values if field in v]

    util = present("utilization_percent")
    if util:
        out.append(Sample(METRIC, "utilization_percent", sum(util) / len(util)))
    used, total = present("memory_used_bytes"), present("memory_total_bytes")
    if used and total:
        out.append(Sample(METRIC, "memory_used_bytes", sum(used)))
        out.append(Sample(METRIC, "memory_total_bytes", sum(total)))
        if sum(total):
            out.append(Sample(METRIC, "memory_percent", sum(used) / sum(total) * 100.0))
    temps = present("temperature_celsius")
    if temps:
        out.append(Sample(METRIC, "temperature_celsius", max(temps)))
    power = present("power_watts")
    if power:
        out.append(Sample(METRIC, "power_watts", sum(power)))
    return out
