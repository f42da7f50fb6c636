"""NVIDIA GPUs through NVML (``nvidia-ml-py``, which loads the driver's ``libnvidia-ml.so.1``).

Per GPU (labels ``gpu``, the NVML index, ``uuid`` and ``name``): utilisation of the GPU and of its memory
controller, memory used and total, temperature, power draw and its enforced limit, SM and memory clocks, ECC errors
since the driver loaded, each clock event (throttle) reason as a 0/1 flag, PCIe throughput, and the GPU memory of
its processes by process name (``comm`` from procfs, as the top-processes snapshot names them). Values are in base
units: NVML's MiB, mW, MHz and KB/s become bytes, watts, hertz and bytes per second.

A host without NVML, without the driver or without a GPU has none "present": ``gpu_devices 0``, one INFO line, no
error and no blind spot; the collector looks again every cycle. A field a device does not support is skipped. Any
other NVML error on one device is a blind spot naming the device (``gpu_up 0``), and the other devices go on. NVML
failing as a whole (a driver and library of different versions, no permission) fails the collector.

The NVML layer is injected (``nvml=``, :mod:`pynvml` by default), so tests can feed recorded readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pynvml

from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
from crucible_monitor.config import GpuConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind, MetricSpec, Sample
from crucible_monitor.schemas import GpuProcess, GpuReading

__all__ = ["CATALOGUE", "THROTTLE_REASONS", "GpuCollector", "Nvml", "samples_of"]

logger = logging.getLogger(__name__)

_G, _C = MetricKind.GAUGE, MetricKind.COUNTER
_GPU = ("gpu", "uuid", "name")
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("gpu_devices", _G, "devices", "NVIDIA GPUs NVML sees; 0 without NVML, the driver or a GPU."),
    MetricSpec("gpu_up", _G, "boolean", "1 when NVML read the GPU this cycle, 0 when it failed on it.", _GPU),
    MetricSpec("gpu_utilization_ratio", _G, "ratio", "Share of time a kernel ran on the GPU.", _GPU),
    MetricSpec("gpu_memory_utilization_ratio", _G, "ratio", "Share of time the memory controller was busy.", _GPU),
    MetricSpec("gpu_memory_used_bytes", _G, "bytes", "GPU memory allocated (reserved memory excluded).", _GPU),
    MetricSpec("gpu_memory_total_bytes", _G, "bytes", "GPU memory in all.", _GPU),
    MetricSpec("gpu_memory_used_ratio", _G, "ratio", "GPU memory used over total.", _GPU),
    MetricSpec("gpu_temperature_celsius", _G, "celsius", "GPU core temperature.", _GPU),
    MetricSpec("gpu_power_watts", _G, "watts", "Power draw of the board.", _GPU),
    MetricSpec("gpu_power_limit_watts", _G, "watts", "The power limit the driver enforces.", _GPU),
    MetricSpec("gpu_sm_clock_hertz", _G, "hertz", "Streaming multiprocessor clock.", _GPU),
    MetricSpec("gpu_memory_clock_hertz", _G, "hertz", "Memory clock.", _GPU),
    MetricSpec(
        "gpu_ecc_errors_total",
        _C,
        "errors",
        "ECC errors since the driver loaded (volatile), by type: corrected or uncorrected.",
        (*_GPU, "type"),
    ),
    MetricSpec(
        "gpu_throttle_reason",
        _G,
        "boolean",
        "1 while the clock event (throttle) reason is active: gpu_idle, sw_power_cap, hw_slowdown, "
        "hw_thermal_slowdown, hw_power_brake_slowdown, sw_thermal_slowdown, ...",
        (*_GPU, "reason"),
    ),
    MetricSpec("gpu_pcie_tx_bytes_per_second", _G, "bytes/s", "PCIe throughput sent by the GPU.", _GPU),
    MetricSpec("gpu_pcie_rx_bytes_per_second", _G, "bytes/s", "PCIe throughput received by the GPU.", _GPU),
    MetricSpec(
        "gpu_process_memory_bytes",
        _G,
        "bytes",
        "GPU memory held by the processes of one name (comm); beyond top_processes: (other).",
        (*_GPU, "process"),
    ),
)

THROTTLE_REASONS: dict[str, int] = {
    "gpu_idle": pynvml.nvmlClocksEventReasonGpuIdle,
    "applications_clocks_setting": pynvml.nvmlClocksEventReasonApplicationsClocksSetting,
    "sw_power_cap": pynvml.nvmlClocksEventReasonSwPowerCap,
    "hw_slowdown": pynvml.nvmlClocksEventReasonHwSlowdown,
    "sync_boost": pynvml.nvmlClocksEventReasonSyncBoost,
    "sw_thermal_slowdown": pynvml.nvmlClocksEventReasonSwThermalSlowdown,
    "hw_thermal_slowdown": pynvml.nvmlClocksEventReasonHwThermalSlowdown,
    "hw_power_brake_slowdown": pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown,
    "display_clocks_setting": pynvml.nvmlClocksEventReasonDisplayClockSetting,
}
"""The clock event reasons NVML reports, by the name of their flag (bits of a 64-bit mask)."""

_ABSENT = {pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, pynvml.NVML_ERROR_DRIVER_NOT_LOADED}
_UNSUPPORTED = {pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_FUNCTION_NOT_FOUND}
_LOST = {pynvml.NVML_ERROR_GPU_IS_LOST, pynvml.NVML_ERROR_RESET_REQUIRED}
_NO_PROCESSES = {*_UNSUPPORTED, pynvml.NVML_ERROR_NO_PERMISSION}
_KIB = 1 << 10  # NVML's PCIe "KB/s" are KiB, like its MiB of memory
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:+@-]")
_COMM_MAX = 15  # the kernel's TASK_COMM_LEN less its NUL
_OTHER = "(other)"
_UNKNOWN = "(unknown)"


class Nvml(Protocol):
    """The part of :mod:`pynvml` the collector calls (errors are :class:`pynvml.NVMLError`)."""

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...
    def nvmlDeviceGetName(self, handle: Any) -> str: ...
    def nvmlDeviceGetUUID(self, handle: Any) -> str: ...
    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any: ...
    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: int | None = None) -> Any: ...
    def nvmlDeviceGetTemperature(self, handle: Any, sensor: int) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int: ...
    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int: ...
    def nvmlDeviceGetClockInfo(self, handle: Any, type: int) -> int: ...
    def nvmlDeviceGetTotalEccErrors(self, handle: Any, errorType: int, counterType: int) -> int: ...
    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int: ...
    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: Any) -> int: ...
    def nvmlDeviceGetPcieThroughput(self, device: Any, counter: int) -> int: ...
    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]: ...
    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: Any) -> list[Any]: ...


_Reader = Callable[[Nvml, Any], dict[str, Any]]


def _utilization(nvml: Nvml, handle: Any) -> dict[str, Any]:
    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
    return {"utilization_ratio": rates.gpu / 100, "memory_utilization_ratio": rates.memory / 100}


def _memory(nvml: Nvml, handle: Any) -> dict[str, Any]:
    try:  # v2 counts the driver's reservation apart from what is used, as nvidia-smi does
        memory = nvml.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2)
    except pynvml.NVMLError as exc:
        if exc.value not in {*_UNSUPPORTED, pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH}:
            raise
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    return {"memory_used_bytes": int(memory.used), "memory_total_bytes": int(memory.total)}


def _ecc(nvml: Nvml, handle: Any) -> dict[str, Any]:
    read = nvml.nvmlDeviceGetTotalEccErrors
    return {
        "ecc_corrected": read(handle, pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, pynvml.NVML_VOLATILE_ECC),
        "ecc_uncorrected": read(handle, pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, pynvml.NVML_VOLATILE_ECC),
    }


def _throttle(nvml: Nvml, handle: Any) -> dict[str, Any]:
    try:
        mask = nvml.nvmlDeviceGetCurrentClocksEventReasons(handle)
    except pynvml.NVMLError as exc:
        if exc.value != pynvml.NVML_ERROR_FUNCTION_NOT_FOUND:
            raise
        mask = nvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle)  # drivers before 535: the same bits
    return {"throttle_reasons": tuple(name for name, bit in THROTTLE_REASONS.items() if mask & bit)}


_FIELDS: tuple[tuple[str, _Reader], ...] = (
    ("utilisation", _utilization),
    ("memory", _memory),
    (
        "temperature",
        lambda n, h: {"temperature_celsius": float(n.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))},
    ),
    ("power draw", lambda n, h: {"power_watts": n.nvmlDeviceGetPowerUsage(h) / 1000}),
    ("power limit", lambda n, h: {"power_limit_watts": n.nvmlDeviceGetEnforcedPowerLimit(h) / 1000}),
    ("SM clock", lambda n, h: {"sm_clock_hertz": n.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM) * 1e6}),
    ("memory clock", lambda n, h: {"memory_clock_hertz": n.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM) * 1e6}),
    ("ECC errors", _ecc),
    ("throttle reasons", _throttle),
    (
        "PCIe tx",
        lambda n, h: {
            "pcie_tx_bytes_per_second": float(n.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_TX_BYTES) * _KIB)
        },
    ),
    (
        "PCIe rx",
        lambda n, h: {
            "pcie_rx_bytes_per_second": float(n.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_RX_BYTES) * _KIB)
        },
    ),
)


def samples_of(reading: GpuReading, *, top_processes: int = 10) -> list[Sample]:
    """The samples of one GPU's reading; its processes summed by name, the ``top_processes`` largest kept."""
    labels = {"gpu": str(reading.index), "uuid": reading.uuid, "name": reading.name}
    out = [Sample("gpu_up", 0.0 if reading.error else 1.0, labels)]
    gauges = {
        "gpu_utilization_ratio": reading.utilization_ratio,
        "gpu_memory_utilization_ratio": reading.memory_utilization_ratio,
        "gpu_memory_used_bytes": reading.memory_used_bytes,
        "gpu_memory_total_bytes": reading.memory_total_bytes,
        "gpu_memory_used_ratio": reading.memory_used_ratio,
        "gpu_temperature_celsius": reading.temperature_celsius,
        "gpu_power_watts": reading.power_watts,
        "gpu_power_limit_watts": reading.power_limit_watts,
        "gpu_sm_clock_hertz": reading.sm_clock_hertz,
        "gpu_memory_clock_hertz": reading.memory_clock_hertz,
        "gpu_pcie_tx_bytes_per_second": reading.pcie_tx_bytes_per_second,
        "gpu_pcie_rx_bytes_per_second": reading.pcie_rx_bytes_per_second,
    }
    out += [Sample(metric, float(value), labels) for metric, value in gauges.items() if value is not None]
    for kind, count in (("corrected", reading.ecc_corrected), ("uncorrected", reading.ecc_uncorrected)):
        if count is not None:
            out.append(Sample("gpu_ecc_errors_total", float(count), {**labels, "type": kind}))
    if reading.throttle_reasons is not None:
        active = set(reading.throttle_reasons)
        out += [
            Sample("gpu_throttle_reason", 1.0 if reason in active else 0.0, {**labels, "reason": reason})
            for reason in THROTTLE_REASONS
        ]
    if top_processes:
        by_name: defaultdict[str, int] = defaultdict(int)
        for process in reading.processes:
            if process.memory_bytes is not None:
                by_name[process.name] += process.memory_bytes
        ranked = sorted(by_name.items(), key=lambda item: (-item[1], item[0]))
        kept, rest = ranked[:top_processes], ranked[top_processes:]
        if rest:
            kept.append((_OTHER, sum(memory for _, memory in rest)))
        out += [Sample("gpu_process_memory_bytes", float(memory), {**labels, "process": name}) for name, memory in kept]
    return out


class GpuCollector:
    """Reads every GPU NVML sees; keeps the last readings as :attr:`latest`."""

    name = "gpu"
    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(
        self,
        config: GpuConfig,
        *,
        nvml: Nvml | None = None,
        procfs: Path = Path("/proc"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._nvml: Nvml = nvml if nvml is not None else pynvml
        self._procfs = procfs
        self._clock = clock
        self._initialised = False
        self._absent: str | None = None
        self._known: dict[int, tuple[str, str]] = {}
        self._problems = Problems(self.name, "gpu")
        self.latest: list[GpuReading] = []
        """The readings of the last cycle, one per GPU (empty when none is present)."""

    @property
    def absent(self) -> str | None:
        """Why no GPU is present (NVML's own words), or None when NVML sees one."""
        return self._absent

    async def aclose(self) -> None:
        """Let go of NVML (a later :meth:`collect` initialises it again)."""
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(pynvml.NVMLError):
                self._nvml.nvmlShutdown()

    async def collect(self) -> Collection:
        """Read every GPU once, in a thread (NVML calls block).

        Raises:
            CollectorError: NVML is there but cannot be used (no permission, a driver/library version mismatch).
        """
        ts = self._clock()
        try:
            readings = await asyncio.to_thread(self._read, ts)
        except CollectorError:
            self.latest = []  # no stale readings for the findings while NVML cannot be read
            raise
        self.latest = readings
        samples = [Sample("gpu_devices", float(len(readings)))]
        problems: list[str | BlindSpot] = []
        for reading in readings:
            samples += samples_of(reading, top_processes=self.config.top_processes)
            if reading.error:
                target = f"gpu {reading.index}"
                problems.append(BlindSpot(target, "collectors.gpu", f"{target} ({reading.uuid}): {reading.error}"))
        return self._problems.collection(samples, problems, ts)

    def _read(self, ts: float) -> list[GpuReading]:
        count = self._count()
        return [self._device(index, ts) for index in range(count)]

    def _count(self) -> int:
        """The GPUs NVML sees; 0 (logged once) without the library, the driver or a device."""
        try:
            if not self._initialised:
                self._nvml.nvmlInit()
                self._initialised = True
            count = self._nvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            if exc.value in _ABSENT:
                self._not_present(str(exc))
                return 0
            with contextlib.suppress(pynvml.NVMLError):
                if self._initialised:
                    self._nvml.nvmlShutdown()
            self._initialised = False
            raise CollectorError(f"NVML cannot be used: {exc}") from None
        if count == 0:
            self._not_present("NVML sees no GPU")
            return 0
        if self._absent is not None:
            logger.info("gpu: NVML now sees %d GPU(s)", count)
            self._absent = None
        return int(count)

    def _not_present(self, reason: str) -> None:
        if self._absent is None:
            logger.info("gpu: no NVIDIA GPU present (%s); gpu_devices is 0", reason)
        self._absent = reason

    def _device(self, index: int, ts: float) -> GpuReading:
        nvml = self._nvml
        uuid, name = self._known.get(index, (_UNKNOWN, _UNKNOWN))
        fields: dict[str, Any] = {}
        error = None
        what = "its handle"
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            what = "its name"
            uuid, name = str(nvml.nvmlDeviceGetUUID(handle)), str(nvml.nvmlDeviceGetName(handle))
            self._known[index] = (uuid, name)
            for field, read in _FIELDS:
                what = field
                try:
                    fields.update(read(nvml, handle))
                except pynvml.NVMLError as exc:
                    if exc.value not in _UNSUPPORTED:  # a field the device lacks is skipped, anything else is not
                        raise
            what = "its processes"
            fields["processes"] = self._processes(handle)
        except pynvml.NVMLError as exc:
            error = f"reading {what}: {exc}"
            fields["lost"] = exc.value in _LOST
        return GpuReading(index=index, uuid=uuid, name=name, ts=ts, error=error, **fields)

    def _processes(self, handle: Any) -> tuple[GpuProcess, ...]:
        """Compute and graphics processes by pid (one may be both), each named from procfs."""
        memory: dict[int, int | None] = {}
        for listing in (
            self._nvml.nvmlDeviceGetComputeRunningProcesses,
            self._nvml.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            try:
                found = listing(handle)
            except pynvml.NVMLError as exc:
                if exc.value not in _NO_PROCESSES:
                    raise
                continue
            for process in found:
                known = [m for m in (memory.get(process.pid), process.usedGpuMemory) if m is not None]
                memory[process.pid] = max(known) if known else None
        return tuple(GpuProcess(pid=pid, name=self._comm(pid), memory_bytes=used) for pid, used in memory.items())

    def _comm(self, pid: int) -> str:
        """The process's name; any user can set their own, so only plain characters reach the label."""
        try:
            comm = (self._procfs / str(pid) / "comm").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:  # gone, or in another pid namespace
            return _UNKNOWN
        return _UNSAFE.sub("_", comm)[:_COMM_MAX] or _UNKNOWN
