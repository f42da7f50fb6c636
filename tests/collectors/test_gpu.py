"""The GPU collector: without NVML through the real binding (no GPU and no NVIDIA driver on this machine), and with
a fake NVML layer answering from readings recorded on a real NVIDIA H200 (``tests/fixtures/gpu/``: ``nvidia-smi -q
-x`` and the query CSVs), because no GPU runs here. Process names come from the real procfs."""

from __future__ import annotations

import ctypes.util
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pynvml
import pytest
from helpers import assert_contract, values
from recorded_nvml import FakeNvml, RecordedGpu, load_recording
from supervisor_fixture import wait_until

from crucible_monitor.collectors import build_collectors
from crucible_monitor.collectors.gpu import THROTTLE_REASONS, GpuCollector
from crucible_monitor.config import Config, GpuConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import EventKind

pytestmark = pytest.mark.anyio

H200 = load_recording()[0]
GPU0 = (("gpu", "0"), ("name", "NVIDIA H200"), ("uuid", H200.uuid))
GPU_LABELS = ("gpu", "uuid", "name")
MIB = 1 << 20


def _collector(
    *gpus: RecordedGpu,
    top_processes: int = 10,
    init_error: int | None = None,
    failing: dict[int, int] | None = None,
    unsupported: set[str] | None = None,
) -> tuple[GpuCollector, FakeNvml]:
    nvml = FakeNvml(list(gpus), init_error=init_error, failing=failing or {}, unsupported=unsupported or set())
    return GpuCollector(GpuConfig(enabled=True, top_processes=top_processes), nvml=nvml, clock=lambda: 1000.0), nvml


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process whose pid the fake NVML reports as a GPU user."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        assert process.stdin is not None
        process.stdin.close()


async def test_without_nvml_the_real_binding_finds_no_gpu_present(caplog: pytest.LogCaptureFixture) -> None:
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("libnvidia-ml is installed here: the not-present path needs a host without it")
    with pytest.raises(pynvml.NVMLError_LibraryNotFound):  # the real binding really fails to load the library
        pynvml.nvmlInit()
    collector = GpuCollector(GpuConfig(enabled=True))
    with caplog.at_level(logging.INFO, logger="crucible_monitor.collectors.gpu"):
        first = await collector.collect()
        second = await collector.collect()
    for collection in (first, second):
        assert [(s.metric, s.value) for s in collection.samples] == [("gpu_devices", 0.0)]
        assert collection.events == [] and collection.blind == []
    assert collector.absent == "NVML Shared Library Not Found"
    assert collector.latest == []
    logged = [r for r in caplog.records if "no NVIDIA GPU" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.INFO


async def test_zero_devices_is_not_present_either() -> None:
    collector, _ = _collector()
    collection = await collector.collect()
    assert [(s.metric, s.value) for s in collection.samples] == [("gpu_devices", 0.0)]
    assert collection.blind == [] and collector.absent == "NVML sees no GPU"


async def test_a_missing_driver_is_not_present_and_a_version_mismatch_fails_the_collector() -> None:
    absent, _ = _collector(H200, init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    assert [s.value for s in (await absent.collect()).samples] == [0.0]
    broken, nvml = _collector(H200)
    await broken.collect()
    assert len(broken.latest) == 1
    await broken.aclose()  # the next collection initialises NVML again, and the driver was upgraded meanwhile
    nvml.init_error = pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH
    with pytest.raises(CollectorError, match="NVML cannot be used: RM has detected an NVML/RM version mismatch"):
        await broken.collect()
    assert broken.latest == []  # nothing stale for the findings


async def test_the_recorded_h200_comes_out_in_base_units() -> None:
    collector, _ = _collector(H200)
    collection = await collector.collect()
    assert_contract(collector, collection)
    assert collection.blind == [] and collection.events == []
    expected = {
        "gpu_up": 1,
        "gpu_utilization_ratio": 0.0,  # 0 %, idle
        "gpu_memory_utilization_ratio": 0.0,
        "gpu_memory_total_bytes": 143771 * MIB,
        "gpu_memory_used_bytes": 0,  # the driver's 616 MiB reservation is not "used", as nvidia-smi says
        "gpu_memory_used_ratio": 0.0,
        "gpu_temperature_celsius": 38,
        "gpu_power_watts": 90.93,
        "gpu_power_limit_watts": 700.0,
        "gpu_sm_clock_hertz": 345e6,
        "gpu_memory_clock_hertz": 3201e6,
        "gpu_pcie_tx_bytes_per_second": 1859 * 1024,
        "gpu_pcie_rx_bytes_per_second": 557 * 1024,
    }
    for metric, value in expected.items():
        assert values(collection.samples, metric) == {GPU0: pytest.approx(value)}, metric
    assert values(collection.samples, "gpu_devices") == {(): 1}
    assert values(collection.samples, "gpu_ecc_errors_total", without=GPU_LABELS) == {
        (("type", "corrected"),): 0,
        (("type", "uncorrected"),): 0,
    }
    flags = values(collection.samples, "gpu_throttle_reason", without=GPU_LABELS)
    assert flags[(("reason", "gpu_idle"),)] == 1  # 0x1: the recording's active reason
    assert sum(flags.values()) == 1 and len(flags) == len(THROTTLE_REASONS)
    assert values(collection.samples, "gpu_process_memory_bytes") == {}  # no compute process was running
    (reading,) = collector.latest
    assert (reading.name, reading.uuid, reading.memory_total_bytes) == ("NVIDIA H200", H200.uuid, 143771 * MIB)
    assert reading.throttle_reasons == ("gpu_idle",) and reading.error is None


async def test_throttle_reasons_are_named_flags() -> None:
    mask = pynvml.nvmlClocksEventReasonHwThermalSlowdown | pynvml.nvmlClocksEventReasonSwPowerCap
    collector, _ = _collector(H200.but(clocks_event_mask=mask))
    flags = values((await collector.collect()).samples, "gpu_throttle_reason", without=GPU_LABELS)
    assert {reason for ((_, reason),), on in flags.items() if on} == {"hw_thermal_slowdown", "sw_power_cap"}
    assert collector.latest[0].throttle_reasons == ("sw_power_cap", "hw_thermal_slowdown")


async def test_a_failing_device_is_a_blind_spot_and_the_other_goes_on() -> None:
    second = H200.but(uuid="GPU-11111111-1111-1111-1111-111111111111")
    collector, nvml = _collector(H200, second, failing={1: pynvml.NVML_ERROR_GPU_IS_LOST})
    collection = await collector.collect()
    assert_contract(collector, collection)
    up = values(collection.samples, "gpu_up", without=("uuid", "name"))
    assert up == {(("gpu", "0"),): 1, (("gpu", "1"),): 0}
    assert values(collection.samples, "gpu_temperature_celsius", without=("uuid", "name")) == {(("gpu", "0"),): 38}
    (spot,) = collection.blind
    assert (spot.target, spot.key) == ("gpu 1", "collectors.gpu")
    assert spot.error == f"gpu 1 ({second.uuid}): reading utilisation: GPU is lost"
    assert [e.kind for e in collection.events] == [EventKind.COLLECTOR_ERROR]
    assert collector.latest[1].error == "reading utilisation: GPU is lost" and collector.latest[1].lost
    assert (collector.latest[1].name, collector.latest[1].temperature_celsius) == ("NVIDIA H200", None)
    again = await collector.collect()
    assert again.events == [] and len(again.blind) == 1  # one event when it starts failing, not every cycle
    nvml.failing.clear()
    recovered = await collector.collect()
    assert recovered.blind == []
    assert values(recovered.samples, "gpu_up", without=("uuid", "name")) == {(("gpu", "0"),): 1, (("gpu", "1"),): 1}


async def test_a_field_the_device_does_not_support_is_skipped() -> None:
    collector, _ = _collector(H200, unsupported={"nvmlDeviceGetTotalEccErrors", "nvmlDeviceGetPcieThroughput"})
    collection = await collector.collect()
    metrics = {s.metric for s in collection.samples}
    assert "gpu_ecc_errors_total" not in metrics and "gpu_pcie_tx_bytes_per_second" not in metrics
    assert "gpu_temperature_celsius" in metrics and "gpu_throttle_reason" in metrics
    assert collection.blind == [] and collector.latest[0].ecc_uncorrected is None


async def test_memory_info_falls_back_to_v1_where_v2_is_missing() -> None:
    class OldDriver(FakeNvml):
        def nvmlDeviceGetMemoryInfo(self, handle: int, version: int | None = None) -> object:
            if version is not None:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
            return super().nvmlDeviceGetMemoryInfo(handle)

    collector = GpuCollector(GpuConfig(enabled=True), nvml=OldDriver([H200]))
    used = values((await collector.collect()).samples, "gpu_memory_used_bytes")
    assert used == {GPU0: 616 * MIB}  # v1 counts the reservation as used


async def test_per_process_memory_is_joined_with_the_process_name(sleeper: subprocess.Popen[bytes]) -> None:
    gone = 2**22 + 1  # above the default pid_max: no such process
    gpu = H200.but(processes=((sleeper.pid, 2048), (gone, 100)), graphics_processes=((sleeper.pid, 2048),))
    collector, _ = _collector(gpu)
    collection = await collector.collect()
    assert_contract(collector, collection, complete=True)
    name = Path(f"/proc/{sleeper.pid}/comm").read_text(encoding="utf-8").strip()
    assert name.startswith("python")
    memory = values(collection.samples, "gpu_process_memory_bytes", without=GPU_LABELS)
    assert memory == {(("process", name),): 2048 * MIB, (("process", "(unknown)"),): 100 * MIB}
    assert {(p.pid, p.name) for p in collector.latest[0].processes} == {(sleeper.pid, name), (gone, "(unknown)")}
    top, _ = _collector(gpu, top_processes=1)
    kept = values((await top.collect()).samples, "gpu_process_memory_bytes", without=GPU_LABELS)
    assert kept == {(("process", name),): 2048 * MIB, (("process", "(other)"),): 100 * MIB}


async def test_a_process_name_reaches_the_label_in_plain_characters_only() -> None:
    rename = "open('/proc/self/comm', 'w').write('evil \u27e6x\u27e7 ok'); import sys; sys.stdin.read()"
    process = subprocess.Popen([sys.executable, "-c", rename], stdin=subprocess.PIPE)
    comm = Path(f"/proc/{process.pid}/comm")
    try:
        wait_until(lambda: comm.read_text(encoding="utf-8").startswith("evil"), 10, "the process renamed itself")
        collector, _ = _collector(H200.but(processes=((process.pid, 10),)))
        collection = await collector.collect()
    finally:
        process.kill()
        process.wait()
        assert process.stdin is not None
        process.stdin.close()
    memory = values(collection.samples, "gpu_process_memory_bytes", without=GPU_LABELS)
    assert memory == {(("process", "evil__x__ok"),): 10 * MIB}


async def test_closing_shuts_nvml_down() -> None:
    collector, nvml = _collector(H200)
    await collector.collect()
    await collector.aclose()
    assert nvml.calls == ["nvmlInit", "nvmlShutdown"]


def test_the_gpu_collector_is_built_only_when_enabled(tmp_path: Path) -> None:
    def names(gpu: dict[str, object]) -> list[str]:
        config = Config.model_validate({"agent": {"data_dir": str(tmp_path)}, "collectors": {"gpu": gpu}})
        return [s.collector.name for s in build_collectors(config)]

    assert "gpu" not in names({})
    assert "gpu" in names({"enabled": True})
