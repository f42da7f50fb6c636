"""End to end: a real `crucible-monitor serve` with the gpu collector on, on this machine without a GPU or the
NVIDIA driver: the real NVML binding cannot load libnvidia-ml, and the agent says "not present" without failing."""

from __future__ import annotations

import ctypes.util
import queue
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_process import STARTUP_TIMEOUT, serve_agent
from supervisor_fixture import wait_until

GPU_ON = "collectors:\n  services:\n    supervisor:\n      enabled: false\n  gpu:\n    enabled: true\n"


def _gpu(client: httpx.Client) -> dict[str, Any] | None:
    return next((c for c in client.get("/api/v1/collectors").json()["items"] if c["name"] == "gpu"), None)


def _devices(client: httpx.Client) -> list[float]:
    reports = client.get("/api/v1/metrics/report", params={"metric": "gpu", "since": "10m"}).json()["reports"]
    (devices,) = [r for r in reports if r["metric"] == "gpu_devices"]
    return [s["stats"]["last"] for s in devices["series"]]


def test_an_agent_without_a_gpu_runs_the_gpu_collector_as_not_present(tmp_path: Path) -> None:
    if ctypes.util.find_library("nvidia-ml"):
        pytest.skip("libnvidia-ml is installed here: the not-present path needs a host without it")
    with serve_agent(tmp_path, GPU_ON) as served:
        headers = {"Authorization": f"Bearer {served.token()}"}
        with httpx.Client(base_url=served.base_url, headers=headers, timeout=5) as client:
            wait_until(lambda: (_gpu(client) or {}).get("runs", 0) >= 3, STARTUP_TIMEOUT, "three gpu collections")
            gpu = _gpu(client)
            assert gpu is not None
            assert gpu["ok"] is True and gpu["errors_total"] == 0 and gpu["blind"] == []
            assert gpu["last_error"] is None and gpu["last_success"] is not None
            health = client.get("/api/v1/health").json()
            (listed,) = [c for c in health["collectors"] if c["name"] == "gpu"]
            assert listed["ok"] is True and listed["blind"] == []
            wait_until(lambda: _devices(client) == [0.0], STARTUP_TIMEOUT, "gpu_devices 0 in the store")
            status = client.get("/api/v1/status").json()
            assert not [f for f in status["findings"] if "gpu" in f["subject"]]
        lines = []
        while True:
            try:
                lines.append(served.lines.get_nowait())
            except queue.Empty:
                break
        said = [line for line in lines if "no NVIDIA GPU present" in line]
        assert len(said) == 1 and "INFO" in said[0] and "NVML Shared Library Not Found" in said[0]
        assert not [line for line in lines if "collector gpu failed" in line]
