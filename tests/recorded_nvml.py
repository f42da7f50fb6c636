"""A fake NVML layer answering from the readings recorded on a real NVIDIA H200 (``tests/fixtures/gpu/``).

No GPU runs where the tests run, so the collector's NVML calls are answered from what ``nvidia-smi`` printed on a
real H200 (``nvidia-smi -q -x`` and the ``--query-gpu`` / ``--query-compute-apps`` CSVs; see the fixture's
README.md), in NVML's own units: MiB become bytes, W milliwatts, the PCIe KB/s stay KB/s, clocks stay MHz. Errors
are the real :mod:`pynvml` exception classes, raised by code as the binding raises them.
"""

from __future__ import annotations

import csv
import dataclasses
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

__all__ = ["RECORDING", "FakeNvml", "RecordedGpu", "load_recording"]

RECORDING = Path(__file__).parent / "fixtures" / "gpu"
_MIB = 1 << 20


@dataclass(frozen=True)
class RecordedGpu:
    """One GPU as recorded, in the units nvidia-smi printed."""

    name: str
    uuid: str
    utilization_gpu_percent: int
    utilization_memory_percent: int
    memory_total_mib: int
    memory_used_mib: int
    memory_reserved_mib: int
    temperature_c: int
    power_draw_w: float
    power_limit_w: float
    sm_clock_mhz: int
    memory_clock_mhz: int
    ecc_corrected: int
    ecc_uncorrected: int
    clocks_event_mask: int
    pcie_tx_kb_s: int
    pcie_rx_kb_s: int
    processes: tuple[tuple[int, int], ...] = ()
    """(pid, used MiB) of the compute processes."""
    graphics_processes: tuple[tuple[int, int], ...] = ()

    def but(self, **changes: Any) -> RecordedGpu:
        """A copy with ``changes`` (another GPU like this one, a throttled one...)."""
        return dataclasses.replace(self, **changes)


def _number(text: str | None) -> float:
    """``143771 MiB``, ``90.93 W``, ``0 %``, ``38`` → the number."""
    assert text is not None
    return float(text.strip().split()[0])


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f, skipinitialspace=True)]


def load_recording(directory: Path = RECORDING) -> list[RecordedGpu]:
    """The recorded GPUs: the query CSV for what it holds, the XML report for the rest (reserved memory, PCIe
    throughput, corrected ECC errors); the XML and the CSV name the same GPUs."""
    report = ET.parse(directory / "nvidia-smi-q.xml").getroot()
    xml_gpus = {gpu.findtext("uuid"): gpu for gpu in report.iter("gpu")}
    apps = _csv(directory / "compute-apps.csv")
    gpus = []
    for row in _csv(directory / "query-gpu.csv"):
        xml = xml_gpus[row["uuid"]]
        assert xml.findtext("product_name") == row["name"]
        volatile = xml.find("ecc_errors/volatile")
        assert volatile is not None
        corrected = sum(int(_number(e.text)) for e in volatile if e.tag.endswith("_correctable"))
        gpus.append(
            RecordedGpu(
                name=row["name"],
                uuid=row["uuid"],
                utilization_gpu_percent=int(_number(row["utilization.gpu [%]"])),
                utilization_memory_percent=int(_number(row["utilization.memory [%]"])),
                memory_total_mib=int(_number(row["memory.total [MiB]"])),
                memory_used_mib=int(_number(row["memory.used [MiB]"])),
                memory_reserved_mib=int(_number(xml.findtext("fb_memory_usage/reserved"))),
                temperature_c=int(_number(row["temperature.gpu"])),
                power_draw_w=_number(row["power.draw [W]"]),
                power_limit_w=_number(row["power.limit [W]"]),
                sm_clock_mhz=int(_number(row["clocks.current.sm [MHz]"])),
                memory_clock_mhz=int(_number(row["clocks.current.memory [MHz]"])),
                ecc_corrected=corrected,
                ecc_uncorrected=int(row["ecc.errors.uncorrected.volatile.total"]),
                clocks_event_mask=int(row["clocks_event_reasons.active"], 16),
                pcie_tx_kb_s=int(_number(xml.findtext("pci/tx_util"))),
                pcie_rx_kb_s=int(_number(xml.findtext("pci/rx_util"))),
                processes=tuple((int(a["pid"]), int(_number(a["used_gpu_memory [MiB]"]))) for a in apps),
            )
        )
    return gpus


@dataclass
class FakeNvml:
    """NVML over recorded GPUs (the collector's ``nvml=``).

    ``init_error``: the NVML error code ``nvmlInit`` fails with. ``failing``: GPU index → the error code every call
    on that device fails with once its name is read. ``unsupported``: NVML functions that answer NOT_SUPPORTED.
    """

    gpus: list[RecordedGpu]
    init_error: int | None = None
    failing: dict[int, int] = field(default_factory=dict)
    unsupported: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def nvmlInit(self) -> None:
        self.calls.append("nvmlInit")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.calls.append("nvmlShutdown")

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self.gpus[handle].name

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self.gpus[handle].uuid

    def _gpu(self, handle: int, function: str) -> RecordedGpu:
        if handle in self.failing:
            raise pynvml.NVMLError(self.failing[handle])
        if function in self.unsupported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self.gpus[handle]

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=gpu.utilization_gpu_percent, memory=gpu.utilization_memory_percent)

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> SimpleNamespace:
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        total, used, reserved = (
            gpu.memory_total_mib * _MIB,
            gpu.memory_used_mib * _MIB,
            gpu.memory_reserved_mib * _MIB,
        )
        if version is None:  # v1 counts the driver's reservation as used
            return SimpleNamespace(total=total, used=used + reserved, free=total - used - reserved)
        assert version == pynvml.nvmlMemory_v2
        return SimpleNamespace(total=total, reserved=reserved, used=used, free=total - used - reserved)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return self._gpu(handle, "nvmlDeviceGetTemperature").temperature_c

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return round(self._gpu(handle, "nvmlDeviceGetPowerUsage").power_draw_w * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return round(self._gpu(handle, "nvmlDeviceGetEnforcedPowerLimit").power_limit_w * 1000)

    def nvmlDeviceGetClockInfo(self, handle: int, type: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetClockInfo")
        return {pynvml.NVML_CLOCK_SM: gpu.sm_clock_mhz, pynvml.NVML_CLOCK_MEM: gpu.memory_clock_mhz}[type]

    def nvmlDeviceGetTotalEccErrors(self, handle: int, errorType: int, counterType: int) -> int:
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEccErrors")
        assert counterType == pynvml.NVML_VOLATILE_ECC
        return gpu.ecc_corrected if errorType == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else gpu.ecc_uncorrected

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksEventReasons").clocks_event_mask

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: int) -> int:
        return self._gpu(handle, "nvmlDeviceGetCurrentClocksThrottleReasons").clocks_event_mask

    def nvmlDeviceGetPcieThroughput(self, device: int, counter: int) -> int:
        gpu = self._gpu(device, "nvmlDeviceGetPcieThroughput")
        return {pynvml.NVML_PCIE_UTIL_TX_BYTES: gpu.pcie_tx_kb_s, pynvml.NVML_PCIE_UTIL_RX_BYTES: gpu.pcie_rx_kb_s}[
            counter
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        gpu = self._gpu(handle, "nvmlDeviceGetComputeRunningProcesses")
        return [SimpleNamespace(pid=pid, usedGpuMemory=mib * _MIB) for pid, mib in gpu.processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        gpu = self._gpu(handle, "nvmlDeviceGetGraphicsRunningProcesses")
        return [SimpleNamespace(pid=pid, usedGpuMemory=mib * _MIB) for pid, mib in gpu.graphics_processes]
