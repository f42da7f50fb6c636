"""The analysis results are light to import, and the anomaly text writes quantities as the API does."""

from __future__ import annotations

import subprocess
import sys

from crucible_monitor.analysis.anomalies import Attribution, describe
from crucible_monitor.analysis.features import KEY_SERIES
from crucible_monitor.collectors.gpu import CATALOGUE as GPU_CATALOGUE
from crucible_monitor.collectors.system import CATALOGUE
from crucible_monitor.models import iso
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
