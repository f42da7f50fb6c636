"""The agent's own collector, inside a real agent that has run its other collectors."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_contract

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config

pytestmark = pytest.mark.anyio


async def test_the_agents_own_samples_keep_to_its_catalogue(tmp_path: Path) -> None:
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data")},
            "storage": {"fsync": False},
            "collectors": {"services": {"systemd": {"enabled": False}, "supervisor": {"enabled": False}}},
        }
    )
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        await agent.run_collector("system")
        await agent.run_collector("agent")  # now every collector has a health record, one with a duration
        own = agent.collectors["agent"]
        collection = await own.collect()
    finally:
        await agent.stop()

    assert_contract(own, collection, complete=True)
    assert {s.labels["collector"] for s in collection.samples if "collector" in s.labels} == set(agent.health)
