"""GPU findings for the status summary, from readings of the recorded H200 (``tests/fixtures/gpu/``, a recording
of a real GPU: none runs here) read through the collector and a fake NVML, then changed the way a GPU goes wrong."""

from __future__ import annotations

import pynvml
import pytest
from recorded_nvml import FakeNvml, RecordedGpu, load_recording

from crucible_monitor.collectors.gpu import GpuCollector
from crucible_monitor.config import GpuConfig
from crucible_monitor.findings.gpu import gpu_findings
from crucible_monitor.schemas import GpuProcess, GpuReading

pytestmark = pytest.mark.anyio

H200 = load_recording()[0]
MIB = 1 << 20


async def _reading(gpu: RecordedGpu = H200, *, failing: dict[int, int] | None = None) -> GpuReading:
    collector = GpuCollector(GpuConfig(enabled=True), nvml=FakeNvml([gpu], failing=failing or {}))
    await collector.collect()
    (reading,) = collector.latest
    return reading


async def test_the_idle_recorded_h200_has_no_finding() -> None:
    assert gpu_findings([await _reading()]) == []


async def test_uncorrected_ecc_errors_are_critical_since_the_counter_left_zero() -> None:
    reading = await _reading(H200.but(ecc_uncorrected=2, ecc_corrected=5))
    asked = []

    def since_above(metric: str, labels: dict[str, str], threshold: float) -> float | None:
        asked.append((metric, labels, threshold))
        return 1_700_000_000.0

    (finding,) = gpu_findings([reading], since_above=since_above)
    assert finding.severity == "critical" and finding.subject == "gpu:0"
    assert "2 uncorrected ECC memory errors" in finding.problem and "5 corrected" in finding.problem
    assert finding.since == "2023-11-14T22:13:20+00:00"
    assert asked == [
        ("gpu_ecc_errors_total", {"gpu": "0", "uuid": H200.uuid, "name": H200.name, "type": "uncorrected"}, 0.5)
    ]
    assert "gpu_ecc_errors_total" in finding.hint


async def test_thermal_throttling_is_a_warning_and_the_power_cap_is_not() -> None:
    hot = H200.but(clocks_event_mask=pynvml.nvmlClocksEventReasonHwThermalSlowdown, temperature_c=91)
    (finding,) = gpu_findings([await _reading(hot)])
    assert finding.severity == "warning"
    assert finding.problem.startswith("throttled: hw_thermal_slowdown (too hot")
    assert "temperature 91 celsius" in finding.problem and "SM clock 345 MHz" in finding.problem
    assert finding.value is not None and finding.value.value == 91
    capped = H200.but(clocks_event_mask=pynvml.nvmlClocksEventReasonSwPowerCap)
    assert gpu_findings([await _reading(capped)]) == []


async def test_the_power_brake_and_a_hardware_slowdown_are_findings_too() -> None:
    mask = pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown | pynvml.nvmlClocksEventReasonHwSlowdown
    (finding,) = gpu_findings([await _reading(H200.but(clocks_event_mask=mask))])
    assert "hw_slowdown" in finding.problem and "hw_power_brake_slowdown" in finding.problem


async def test_memory_nearly_full_is_a_warning_naming_what_holds_it() -> None:
    total = H200.memory_total_mib
    full = (await _reading(H200.but(memory_used_mib=int(total * 0.96)))).model_copy(
        update={"processes": (GpuProcess(pid=42, name="vllm", memory_bytes=100_000 * MIB),)}
    )
    (finding,) = gpu_findings([full])
    assert finding.severity == "warning"
    assert finding.problem.startswith("memory 96.0 % used (") and "threshold 95 %" in finding.problem
    assert "held by vllm (pid 42)" in finding.problem
    assert finding.value is not None and finding.value.unit == "ratio"
    assert gpu_findings([await _reading(H200.but(memory_used_mib=int(total * 0.94)))]) == []


async def test_a_lost_gpu_is_critical_and_the_others_are_judged_on_their_own() -> None:
    lost = await _reading(failing={0: pynvml.NVML_ERROR_GPU_IS_LOST})
    assert lost.lost
    busy = await _reading(H200.but(memory_used_mib=H200.memory_total_mib))
    other = busy.model_copy(update={"index": 1})
    findings = gpu_findings([lost, other])
    assert [(f.severity, f.subject) for f in findings] == [
        ("critical", "gpu:0"),
        ("warning", "gpu:1"),
    ]
    assert "GPU is lost" in findings[0].problem
    assert gpu_findings([await _reading(failing={0: pynvml.NVML_ERROR_UNKNOWN})]) == []  # the blind spot says it
