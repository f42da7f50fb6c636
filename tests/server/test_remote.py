"""RemoteMonitor against a real `crucible-monitor serve`: what the stdio MCP server and the CLI use."""

from __future__ import annotations

import anyio
import pytest
from agent_process import STARTUP_TIMEOUT, ServedAgent

from crucible_monitor.remote import RemoteMonitor

pytestmark = pytest.mark.anyio

THIRTY_DAYS = 30 * 86400.0


async def test_forecast_and_capacity_report_with_a_30_day_horizon(served: ServedAgent) -> None:
    """A horizon of 12 days or more used to be sent as ``2.592e+06s``, which the API refused (issue 9)."""
    async with RemoteMonitor(served.base_url, served.token()) as remote:
        await _wait_for_memory(remote)
        forecast = await remote.forecast_capacity("memory", horizon=THIRTY_DAYS)
        report = await remote.capacity_report(horizon=THIRTY_DAYS)
    assert forecast.resource == "memory"
    assert report.horizon_days == 30
    assert "memory" in [f.resource for f in report.forecasts]


async def _wait_for_memory(remote: RemoteMonitor) -> None:
    """The memory resource exists once the system collector has stored a reading."""
    with anyio.fail_after(STARTUP_TIMEOUT):
        while (await remote.system_status()).memory.total_bytes is None:
            await anyio.sleep(0.1)
