"""The whole agent finds a real CPU burn: real collectors on this machine's /proc, the anomaly engine's refit in its
child process, scoring, events, and the explanation through the Monitor.

Time is the one thing made up: the agent's clock moves a minute per collection, so that two hours of history take
seconds. Each collection still waits until the kernel has counted some CPU time, so its CPU ratios are real.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import ALWAYS_FIRING_RULES, host_cpu_jiffies
from manual_clock import Clock

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.models import EventKind
from crucible_monitor.monitor import Monitor

pytestmark = pytest.mark.anyio

HISTORY_MINUTES = 90
BURN_MINUTES = 6
QUIET = 0.15  # the history must be a quiet machine's (CPU below this) for the burn to be an anomaly


def _burn_config(tmp_path: Path, hostname: str, **analysis: object) -> Config:
    """An agent of system metrics and processes only, the shorthand thresholds off (the burn is the analysis')."""
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path), "hostname": hostname},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": {"enabled": False}, "system": {"processes_interval": "1m"}},
            "alerts": {"cpu_threshold": None, "memory_threshold": None, "disk_threshold": None},
            "analysis": analysis,
        }
    )


def _let_cpu_time_pass(jiffies: int = 40) -> None:
    """Wait (bounded) until the kernel has counted ``jiffies`` of CPU time, so CPU ratios have something to say."""
    start, deadline = host_cpu_jiffies(), time.monotonic() + 10
    while host_cpu_jiffies() < start + jiffies:
        assert time.monotonic() < deadline, "the CPU counters did not move"
        time.sleep(0.01)  # poll without spinning: a busy wait would itself be the CPU load measured


async def test_a_cpu_burn_becomes_an_anomaly_explained_by_cpu_and_the_burning_process(
    tmp_path: Path, burn_cpu: Callable[[], subprocess.Popen[bytes]]
) -> None:
    clock = Clock((time.time() // 3600 - 3) * 3600)
    config = _burn_config(tmp_path, "burn-host", min_training_buckets=60)
    agent = Agent(config, clock=clock)
    await agent.start(schedule=False)
    try:
        for _ in range(HISTORY_MINUTES):
            _let_cpu_time_pass()
            await agent.run_collector("system")
            clock.now += 60
        [history] = agent.store.query("cpu_usage_ratio", start=0, end=clock.now, step=60, labels={"cpu": "total"})
        if max(history.values) > QUIET:  # other work on the machine (CI runs nothing else): not the premise
            pytest.skip(f"this machine was busy (CPU up to {max(history.values):.0%}): a burn would not stand out")
        await agent.analyse()  # the first refit (a scikit-learn child process) and a first scoring run
        engine = agent.running.analysis
        assert engine is not None and engine.models(), "the host model was fitted"

        burn_start = clock.now  # what came before (the host's own history) is not this test's anomaly
        burners = [burn_cpu(), burn_cpu()]  # both cores busy
        for _ in range(BURN_MINUTES):
            _let_cpu_time_pass()
            await agent.run_collector("system")
            await agent.run_collector("processes")
            clock.now += 60
            await agent.analyse()

        monitor = Monitor(agent)
        [anomaly] = await monitor.list_anomalies(since=burn_start)
        assert anomaly.series[0].startswith("cpu_usage_ratio")
        explanation = await monitor.explain_anomaly(anomaly.id)
        assert explanation.series[0].metric == "cpu_usage_ratio"
        assert explanation.series[0].mads > 5
        burning = {p.pid for p in burners}
        assert burning & {p.pid for p in explanation.top_processes_by_cpu}, explanation.top_processes_by_cpu
        assert "CPU" in explanation.summary
        events = await monitor.events(since=burn_start, kinds=[EventKind.ANOMALY.value])
        assert anomaly.id in [e.data["anomaly_id"] for e in events]
        summary = await monitor.status_summary()
        (finding,) = [f for f in summary.findings if f.subject == f"anomaly:{anomaly.id}"]
        assert finding.hint == f"explain_anomaly(anomaly_id={anomaly.id})"
    finally:
        await agent.stop()


async def test_the_monitor_recommends_acting_on_the_active_alerts(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(ALWAYS_FIRING_RULES, encoding="utf-8")
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path), "hostname": "alert-host"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": {"enabled": False}},
            "alerts": {
                "rules_file": str(rules),
                "cpu_threshold": None,
                "memory_threshold": None,
                "disk_threshold": None,
            },
        }
    )
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        await agent.run_collector("system")
        await agent.evaluate_alerts()
        monitor = Monitor(agent)
        [alert] = await monitor.list_alerts(state="firing")
        items = [i for i in await monitor.get_recommendations() if i.source == "alert"]
        assert [(i.title, i.severity, i.evidence) for i in items] == [
            ("Alert MemoryPresent is firing", "warning", [alert.annotations["summary"], f"value {alert.value}"])
        ]
        assert [(t.tool, t.arguments) for t in items[0].next_tools] == [("get_alert", {"alert_id": alert.id})]
    finally:
        await agent.stop()


FRESH_MINUTES = 40  # a freshly started agent: no host model for its first 120 buckets


async def test_a_cpu_burn_in_a_fresh_agents_first_hour_is_found_by_the_streaming_detector(
    tmp_path: Path, burn_cpu: Callable[[], subprocess.Popen[bytes]]
) -> None:
    clock = Clock((time.time() // 3600 - 3) * 3600)
    config = _burn_config(tmp_path, "fresh-host")
    agent = Agent(config, clock=clock)
    await agent.start(schedule=False)
    try:
        for _ in range(FRESH_MINUTES):
            _let_cpu_time_pass()
            await agent.run_collector("system")
            clock.now += 60
            await agent.analyse()
        [history] = agent.store.query("cpu_usage_ratio", start=0, end=clock.now, step=60, labels={"cpu": "total"})
        if max(history.values) > QUIET:  # other work on the machine (CI runs nothing else): not the premise
            pytest.skip(f"this machine was busy (CPU up to {max(history.values):.0%}): a burn would not stand out")
        engine = agent.running.analysis
        assert engine is not None and engine.models() == [], "no host model: too little history"

        burn_start = clock.now
        burners = [burn_cpu(), burn_cpu()]  # both cores busy
        await agent.run_collector("processes")  # a process's CPU is measured from its second snapshot on
        for _ in range(BURN_MINUTES):
            _let_cpu_time_pass()
            await agent.run_collector("system")
            await agent.run_collector("processes")
            clock.now += 60
            await agent.analyse()

        monitor = Monitor(agent)
        found = await monitor.list_anomalies(since=burn_start)
        [anomaly] = [a for a in found if a.series == ['cpu_usage_ratio{cpu="total"}']]  # what else moved may show
        assert "streaming detector" in anomaly.summary
        explanation = await monitor.explain_anomaly(anomaly.id)
        assert "streaming_detector" in explanation.basis
        assert any(m.metric == "cpu_usage_ratio" and m.z > 0 for m in explanation.moved)
        burning = {p.pid for p in burners}
        assert burning & {p.pid for p in explanation.top_processes_by_cpu}, explanation.top_processes_by_cpu
        events = await monitor.events(since=burn_start, kinds=[EventKind.ANOMALY.value])
        assert anomaly.id in [e.data["anomaly_id"] for e in events]
        summary = await monitor.status_summary()
        (finding,) = [f for f in summary.findings if f.subject == f"anomaly:{anomaly.id}"]
        assert finding.hint == f"explain_anomaly(anomaly_id={anomaly.id})"
    finally:
        await agent.stop()
