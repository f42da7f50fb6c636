"""The analysis results are light to import, and the anomaly text writes quantities as the API does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crucible_monitor.analysis.anomalies import Attribution, describe
from crucible_monitor.analysis.features import KEY_SERIES
from crucible_monitor.analysis.registry import ANALYSIS_MIGRATIONS, ProcessSnapshots
from crucible_monitor.collectors.gpu import CATALOGUE as GPU_CATALOGUE
from crucible_monitor.collectors.processes import ProcessesCollector
from crucible_monitor.collectors.system import CATALOGUE
from crucible_monitor.config import SystemCollectorConfig
from crucible_monitor.models import iso
from crucible_monitor.storage.state import StateDB
from crucible_monitor.units import human


def test_importing_the_results_loads_neither_numpy_nor_pyarrow() -> None:
    code = "import sys, crucible_monitor.schemas.analysis; print(sorted({'numpy', 'pyarrow'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert loaded.strip() == "[]"


def test_every_key_series_has_the_unit_of_its_metric_in_the_catalogue() -> None:
    units = {spec.name: spec.unit for spec in (*CATALOGUE, *GPU_CATALOGUE)}
    assert {k.metric: k.unit for k in KEY_SERIES} == {k.metric: units[k.metric] for k in KEY_SERIES}


def test_an_anomaly_summary_writes_rates_and_ratios_in_the_units_the_api_uses() -> None:
    keys = {k.name: k for k in KEY_SERIES}
    attribution = [
        Attribution(name="disk_read", value=1_500_000.0, baseline=50_000.0, mads=40.0, contribution=0.3),
        Attribution(name="cpu", value=0.42, baseline=0.05, mads=-12.0, contribution=0.1),
    ]
    text = describe(keys, 0.0, 600.0, False, attribution, None)
    read, usual = human(1_500_000.0, "bytes/s"), human(50_000.0, "bytes/s")
    assert text == (
        f"Anomaly from {iso(0.0)} to {iso(600.0)}: disk reads (bytes/s, all disks) was {read}, 40 MADs above its usual "
        f"{usual} at that hour; CPU usage was 42.0 %, 12 MADs below its usual 5.0 % at that hour."
    )
    assert "1.4 MiB/s" in text


@pytest.mark.anyio
async def test_an_explanation_takes_the_nearest_process_snapshot_that_measured_cpu(tmp_path: Path) -> None:
    """A collector's first snapshot has no CPU figures (CPU is measured between snapshots): the snapshot an anomaly
    at that moment is explained with is the next one that measured CPU, not the nearer empty one."""
    now = [1_000_000.0]
    collector = ProcessesCollector(SystemCollectorConfig(), clock=lambda: now[0])
    state = StateDB(tmp_path / "state.db")
    state.migrate("analysis", ANALYSIS_MIGRATIONS)
    snapshots = ProcessSnapshots(state)
    try:
        await collector.collect()
        first = collector.latest
        assert first is not None and first.by_cpu == []
        snapshots.record(first, keep_after=0.0)
        now[0] += 60
        await collector.collect()
        second = collector.latest
        assert second is not None and second.by_cpu
        snapshots.record(second, keep_after=0.0)
        found = snapshots.near(first.ts, after=180.0)
        assert found is not None and found["ts"] == second.ts and found["by_cpu"]
        alone = snapshots.near(first.ts, after=30.0)  # the empty one is all there is within 30 s: still taken
        assert alone is not None and alone["ts"] == first.ts and alone["by_cpu"] == []
    finally:
        state.close()
