"""The agent runtime: scheduled jobs, a failing collector counted without stopping the others, live config."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from manual_clock import Clock

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.errors import AgentNotStarted
from crucible_monitor.models import EventKind

pytestmark = pytest.mark.anyio


def _config(tmp_path: Path, **system: object) -> Config:
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "collect_interval": "1s"},
            "storage": {"fsync": False},
            "collectors": {
                "system": system,
                "services": {"systemd": {"enabled": False}, "supervisor": {"enabled": False}},
            },
        }
    )


async def test_scheduled_jobs_collect_on_their_own(tmp_path: Path) -> None:
    agent = Agent(_config(tmp_path))
    await agent.start()
    try:
        with anyio.fail_after(10):
            while agent.health["system"].runs < 2 or not agent.store.latest("cpu_usage_ratio"):
                await anyio.sleep(0.05)  # polling a condition, bounded by fail_after
        assert agent.health["system"].errors_total == 0
        assert agent.store.latest("memory_total_bytes")
    finally:
        await agent.stop()
    assert list((tmp_path / "data" / "metrics" / "raw").rglob("*.parquet")), "stop() flushes to Parquet"


async def test_a_failing_collector_is_counted_and_recorded_while_the_others_go_on(tmp_path: Path) -> None:
    empty_procfs = tmp_path / "no-proc"
    empty_procfs.mkdir()
    agent = Agent(_config(tmp_path, procfs=str(empty_procfs)))  # /proc/stat unreadable: the whole source fails
    await agent.start(schedule=False)
    try:
        for _ in range(3):
            await agent.run_collector("system")
            await agent.run_collector("agent")
        system, own = agent.health["system"], agent.health["agent"]
        assert (system.runs, system.errors_total, system.ok) == (3, 3, False)
        assert system.last_error is not None and "stat" in system.last_error
        assert (own.errors_total, own.ok) == (0, True)
        errors = agent.running.state.events(kinds=[EventKind.COLLECTOR_ERROR])
        assert len(errors) == 1, "one event when the collector starts failing, not one per run"
        [errors_total] = agent.store.latest("agent_collector_errors_total", {"collector": "system"})
        assert errors_total.value == 3
    finally:
        await agent.stop()


async def test_samples_are_stamped_on_the_wall_clock_grid_also_when_a_run_is_late(tmp_path: Path) -> None:
    clock = Clock(1_800_000_000.0)  # a whole second: the 1 s grid
    agent = Agent(_config(tmp_path), clock=clock)
    await agent.start(schedule=False)
    try:
        for late_by, grid in ((0.05, 1_800_000_000.0), (0.7, 1_800_000_005.0)):
            clock.now = grid + late_by  # the second run starts 0.7 s late, as under load
            await agent.run_collector("system")
            [memory] = agent.store.latest("memory_total_bytes")
            assert memory.ts == grid
    finally:
        await agent.stop()


async def test_applying_a_config_rebuilds_only_changed_collectors_and_reschedules(tmp_path: Path) -> None:
    agent = Agent(_config(tmp_path))
    await agent.start(schedule=False)
    try:
        system, services = agent.collectors["system"], agent.collectors["services"]
        new = _config(tmp_path, interval="5s")
        await agent.apply_config(new)
        assert agent.collectors["system"] is not system and agent.health["system"].interval == 5.0
        assert agent.collectors["services"] is services
        assert agent.config is new
        assert agent.running.state.events(kinds=[EventKind.CONFIG])
    finally:
        await agent.stop()


async def test_what_runs_only_after_start_is_reached_through_running(tmp_path: Path) -> None:
    config = _config(tmp_path, top_processes=True)
    agent = Agent(config.model_copy(update={"analysis": config.analysis.model_copy(update={"enabled": False})}))
    with pytest.raises(AgentNotStarted, match="not running"):
        _ = agent.running
    await agent.start(schedule=False)
    try:
        running = agent.running
        assert running.analysis is None, "no anomaly engine with analysis.enabled false"
        assert running.state.events(kinds=[EventKind.AGENT])
        assert agent.latest_processes() is None, "no snapshot before the processes collector runs"
        await agent.run_collector("processes")
        snapshot = agent.latest_processes()
        assert snapshot is not None and snapshot.total > 0
        assert agent.services_collector is agent.collectors["services"]
        assert agent.statuses() == [] and agent.check_results() == []
    finally:
        await agent.stop()
    with pytest.raises(AgentNotStarted):
        _ = agent.running
