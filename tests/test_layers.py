"""Layers read top-down: the shared result types and the service managers load nothing above them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ABOVE_SCHEMAS = ("crucible_monitor.collectors", "crucible_monitor.analysis", "crucible_monitor.alerts")


def _loaded_by(module: str) -> list[str]:
    """The crucible_monitor modules a fresh interpreter holds after importing ``module``."""
    code = f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if 'crucible' in m)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


@pytest.mark.parametrize("module", ["crucible_monitor.schemas", "crucible_monitor.managers.supervisor"])
def test_lower_layers_load_no_collector_analysis_alerting_or_storage_module(module: str) -> None:
    loaded = _loaded_by(module)
    above = [m for m in loaded if m.startswith((*ABOVE_SCHEMAS, "crucible_monitor.storage"))]
    assert above == [], f"{module} loads {above}"


def test_the_monitor_loads_no_application_collector_until_asked() -> None:
    loaded = _loaded_by("crucible_monitor.monitor")
    for collector in ("mysql", "laravel", "access_logs", "php_fpm", "gpu"):
        assert f"crucible_monitor.collectors.{collector}" not in loaded
