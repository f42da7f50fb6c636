"""docs/metrics.md is the catalogue as /metrics exports it: regenerated, it must not change (a snapshot of the
names, types, units and labels Prometheus users build on), and it names every series a real agent exports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.server.app import build_app

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).parents[1]


def test_the_metrics_page_is_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_metrics.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


async def test_every_series_a_real_agent_exports_is_on_the_page(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "doc-1", "api_token": "doc-token-0123"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": {"enabled": False}},
        }
    )
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        for name in ("system", "system", "agent"):
            await agent.run_collector(name)
        transport = httpx.ASGITransport(build_app(agent, "doc-token-0123", manage_agent=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            text = (await client.get("/metrics", headers={"Authorization": "Bearer doc-token-0123"})).text
    finally:
        await agent.stop()
    page = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    names = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    assert len(names) > 50
    missing = sorted(n for n in names if f"| `{n}` |" not in page and n != "crucible_agent_info")
    assert missing == []
