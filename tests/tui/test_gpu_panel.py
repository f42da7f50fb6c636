"""The overview's GPU panel, over the HTTP API of an in-process agent whose gpu collector reads the recorded H200.

No GPU runs where the tests run: the collector's NVML layer answers from the readings of a real H200
(tests/recorded_nvml.py, tests/fixtures/gpu/). Everything from the collector up is real: the store, the API (served
in-process through httpx's ASGI transport), RemoteMonitor and the dashboard.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from recorded_nvml import FakeNvml, load_recording
from textual.widgets import DataTable
from tui_scene import wait_for

from crucible_monitor.agent import Agent
from crucible_monitor.collectors.gpu import GpuCollector
from crucible_monitor.config import Config
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.server.app import build_app as build_api
from crucible_monitor.tui.app import build_app

pytestmark = pytest.mark.anyio
TOKEN = "gpu-panel-token-0123"


async def test_the_overview_shows_a_gpu_panel_when_the_agent_has_gpus(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "gpu-1", "api_token": TOKEN},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"system": {"enabled": False}, "services": {"enabled": False}, "gpu": {"enabled": True}},
        }
    )
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        collector = agent.collectors["gpu"]
        assert isinstance(collector, GpuCollector)
        collector._nvml = FakeNvml(load_recording())  # the recorded H200 in place of the absent driver
        await agent.run_collector("gpu")
        transport = httpx.ASGITransport(build_api(agent, TOKEN, manage_agent=False))
        remote = RemoteMonitor("http://agent", TOKEN, transport=transport)
        app = build_app(remote, remote.base_url, refresh=0.5, close=remote.aclose)
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: bool(app.ctx.gpus), "the GPU readings")
            table = app.screen.query_one("#gpus", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1, "one GPU row")
            row = [str(cell) for cell in table.get_row_at(0)]
            shown = table.display
    finally:
        await agent.stop()
    assert shown
    assert row[0] == "0" and "H200" in row[1]
    assert row[2:] == ["0.0 %", "0 Bytes / 140.4 GiB", "38 °C", "91 W", "-"], row  # idle: no slowdown
