"""The commented GPU rules of the shipped ``configs/alerts.yaml``, uncommented, fire on gpu_* samples like on any
metric. The samples come from the GPU collector over a fake NVML fed with readings recorded on a real H200
(``tests/fixtures/gpu/``; no GPU runs here), changed into a hot, throttled GPU with ECC errors and full memory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pynvml
import pytest
import yaml
from alerting_helpers import alerting, engine
from manual_clock import Clock
from recorded_nvml import FakeNvml, load_recording

from crucible_monitor.alerts.operations import AlertOperations
from crucible_monitor.alerts.store import AlertState
from crucible_monitor.collectors.gpu import CATALOGUE, GpuCollector
from crucible_monitor.config import GpuConfig
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

pytestmark = pytest.mark.anyio

ALERTS = Path(__file__).parents[2] / "configs" / "alerts.yaml"


def _gpu_rules() -> list[dict[str, Any]]:
    """The GPU section of the shipped alerting file, uncommented."""
    text = ALERTS.read_text(encoding="utf-8")
    section = text.split("  # -- GPUs")[1].split("  # -- ")[0]
    lines = [line.replace("  # ", "  ", 1) for line in section.splitlines()[1:] if line.strip() not in ("", "#")]
    rules: list[dict[str, Any]] = yaml.safe_load("\n".join(lines))
    return rules


def test_the_commented_gpu_rules_name_gpu_metrics_and_their_labels() -> None:
    rules = _gpu_rules()
    assert [r["name"] for r in rules] == ["GpuHot", "GpuThermalThrottling", "GpuMemoryFull", "GpuEccUncorrected"]
    specs = {spec.name: spec for spec in CATALOGUE}
    for rule in rules:
        spec = specs[str(rule["metric"])]
        assert set(rule.get("match", {})) <= set(spec.labels)


async def test_the_gpu_rules_fire_on_a_hot_throttled_failing_gpu(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    h200 = load_recording()[0]
    sick = h200.but(
        temperature_c=91,
        clocks_event_mask=pynvml.nvmlClocksEventReasonHwThermalSlowdown,
        ecc_uncorrected=3,
        memory_used_mib=h200.memory_total_mib,
    )
    collector = GpuCollector(GpuConfig(enabled=True), nvml=FakeNvml([sick]), clock=clock)
    alerts = engine(alerting(_gpu_rules()), state, store, clock)
    for _ in range(12):  # a minute a cycle: past GpuMemoryFull's 10 minutes
        clock.advance(60)
        store.append([replace(s, ts=clock()) for s in (await collector.collect()).samples])
        alerts.evaluate()
    firing = {a.name: a for a in AlertOperations(alerts).list_alerts() if a.state is AlertState.FIRING}
    assert set(firing) == {"GpuHot", "GpuThermalThrottling", "GpuMemoryFull", "GpuEccUncorrected"}
    assert firing["GpuHot"].annotations["summary"] == "GPU 0 (NVIDIA H200) on web1 at 91 °C"
    assert firing["GpuEccUncorrected"].labels["severity"] == "critical"
    assert firing["GpuHot"].labels["uuid"] == h200.uuid
