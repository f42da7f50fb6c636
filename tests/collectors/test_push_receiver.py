"""Pushed metrics in a real agent (in-process, a manual clock): the streaming detector watches one named in
``analysis.live_series`` per label set, the catalogue survives a restart, series not pushed for
``push.forget_after`` stop counting, ``push.enabled`` turns pushing off live, and the receiver reports itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import assert_contract, values
from manual_clock import Clock

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.errors import ActionRefused, PushLimit
from crucible_monitor.monitor import Monitor

pytestmark = pytest.mark.anyio

START = 1_795_852_800.0  # a whole hour


def _config(tmp_path: Path, **sections: Any) -> Config:
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "web-1"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": {"enabled": False}},
            **sections,
        }
    )


async def test_a_pushed_metric_named_in_live_series_is_watched_per_label_set(tmp_path: Path) -> None:
    """A batch job pushes its queue depth each minute; one of its two label sets jumps."""
    clock = Clock(START)
    agent = Agent(_config(tmp_path, analysis={"live_series": ["jobs_waiting"]}), clock=clock)
    await agent.start(schedule=False)
    monitor = Monitor(agent)
    rng = np.random.default_rng(5)
    try:
        jump_from = START + 45 * 60
        for _ in range(51):
            eu = (400.0 if clock.now >= jump_from else 20.0) + rng.normal(0, 2)
            us = 30.0 + rng.normal(0, 2)
            await monitor.push_metrics(f'jobs_waiting{{region="eu"}} {eu:.1f}\njobs_waiting{{region="us"}} {us:.1f}\n')
            clock.now += 60
            await agent.analyse()
        found = await monitor.list_anomalies(since=jump_from)
        assert [a.series for a in found] == [['jobs_waiting{region="eu"}']]
        explanation = await monitor.explain_anomaly(found[0].id)
        assert "streaming_detector" in explanation.basis
    finally:
        await agent.stop()


async def test_the_pushed_catalogue_and_series_count_survive_a_restart(tmp_path: Path) -> None:
    clock = Clock(START)
    agent = Agent(_config(tmp_path), clock=clock)
    await agent.start(schedule=False)
    await Monitor(agent).push_metrics(
        '[{"name": "deploys_total", "labels": {"app": "shop"}, "value": 7, '
        '"type": "counter", "help": "Deploys done."}]',
        content_type="application/json",
    )
    await Monitor(agent).push_metrics('deploys_total{app="blog",stage="prod"} 2\n')  # a label more: the entry grows
    await agent.stop()
    clock.now += 60
    again = Agent(_config(tmp_path), clock=clock)
    await again.start(schedule=False)
    try:
        monitor = Monitor(again)
        [info] = [m for m in await monitor.list_metrics() if m.name == "deploys_total"]
        assert (info.kind, info.description, info.collector) == ("counter", "Deploys done.", "push")
        assert info.labels == ["app", "stage"]
        history = await monitor.history("deploys_total", start=START - 60, end=clock.now, agg="last")
        assert {s.labels["app"]: [v for _, v in s.points] for s in history.series} == {"shop": [7.0], "blog": [2.0]}
        counted = await again.collectors["push"].collect()
        assert values(counted.samples, "push_series") == {(): 2}
    finally:
        await again.stop()


async def test_series_not_pushed_for_forget_after_stop_counting(tmp_path: Path) -> None:
    clock = Clock(START)
    agent = Agent(_config(tmp_path, push={"max_series": 2, "forget_after": "1h"}), clock=clock)
    await agent.start(schedule=False)
    monitor = Monitor(agent)
    try:
        await monitor.push_metrics('host_up{host="a"} 1\nhost_up{host="b"} 1\n')
        with pytest.raises(PushLimit, match="push.max_series is 2") as refused:
            await monitor.push_metrics('host_up{host="c"} 1\n')
        assert refused.value.limit == "push.max_series"
        clock.now += 1800
        await monitor.push_metrics('host_up{host="a"} 1\n')  # a: pushed again, b: not
        clock.now += 1900
        result = await monitor.push_metrics('host_up{host="c"} 1\n')  # b is forgotten: room for c
        assert (result.accepted, result.series) == (1, 2)
        collector = agent.collectors["push"]
        collection = await collector.collect()
        assert_contract(collector, collection)
        assert values(collection.samples, "push_series") == {(): 2}
        assert values(collection.samples, "push_requests_total") == {
            (("result", "accepted"),): 3,
            (("result", "refused"),): 1,
        }
    finally:
        await agent.stop()


async def test_push_enabled_false_turns_pushing_off_live(tmp_path: Path) -> None:
    agent = Agent(_config(tmp_path), clock=Clock(START))
    await agent.start(schedule=False)
    monitor = Monitor(agent)
    try:
        await monitor.push_metrics("sessions 3\n")
        await monitor.update_config({"push": {"enabled": False}})
        with pytest.raises(ActionRefused, match="push.enabled is false"):
            await monitor.push_metrics("sessions 4\n")
        assert "push" not in agent.collectors and "sessions" not in agent.catalogue()
        await monitor.update_config({"push": {"enabled": True}})
        assert (await monitor.push_metrics("sessions 5\n")).accepted == 1
        assert "sessions" in agent.catalogue()
    finally:
        await agent.stop()
