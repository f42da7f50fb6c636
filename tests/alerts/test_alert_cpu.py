"""Done when: the CPU rule of the shipped config fires on a loaded machine and an email reaches a local SMTP server.

Real load (busy processes, twice as many as CPUs), real samples from this machine's /proc through the system
collector, the shipped ``configs/monitor.yaml`` and ``configs/alerts.yaml``, a real SMTP server (aiosmtpd). Only
the clock is injected, so the rule's 5 minutes pass in a few cycles.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from alerting_helpers import SmtpFactory
from helpers import host_cpu_jiffies
from manual_clock import Clock

from crucible_monitor.alerts.conditions import AlertInputs
from crucible_monitor.alerts.config import effective_alerting, load_alerting
from crucible_monitor.alerts.runtime import Alerting
from crucible_monitor.alerts.store import AlertState
from crucible_monitor.collectors.system import SystemCollector
from crucible_monitor.config import NotificationsConfig, SystemCollectorConfig, load_config
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

pytestmark = pytest.mark.anyio

CONFIGS = Path(__file__).parents[2] / "configs"
WINDOW_JIFFIES = 25  # per CPU: each sample covers about a quarter of a second of real load


@pytest.fixture
def loaded_machine() -> Iterator[None]:
    """Busy processes on every CPU, twice over, for the duration of the test."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def _wait_for_cpu_time(since: int) -> None:
    """Until the CPUs have accounted WINDOW_JIFFIES each since ``since`` (a measurement window, bounded)."""
    wanted = since + WINDOW_JIFFIES * (os.cpu_count() or 1)
    with anyio.fail_after(10):
        while host_cpu_jiffies() < wanted:
            await anyio.sleep(0.02)  # polling a condition, bounded by fail_after


async def test_the_shipped_cpu_rule_fires_under_load_and_an_email_arrives(
    loaded_machine: None, smtp_server: SmtpFactory, state: StateDB, store: MetricStore, clock: Clock
) -> None:
    inbox = smtp_server()
    monitor = load_config(CONFIGS / "monitor.yaml")
    notifications = NotificationsConfig.model_validate(
        {
            "email": {
                "enabled": True,
                "smtp_host": "127.0.0.1",
                "smtp_port": inbox.port,
                "security": "none",
                "from_addr": "crucible@web1.example",
                "to": ["ops@example.com"],
            }
        }
    )
    config = effective_alerting(load_alerting(CONFIGS / "alerts.yaml"), monitor.alerts, notifications)
    alerting = Alerting(config, state, AlertInputs(samples=store), host="web1", clock=clock)
    collector = SystemCollector(SystemCollectorConfig(per_cpu=False), clock=clock)
    try:
        await collector.collect()  # the first reading only sets the baseline of the CPU counters
        for _ in range(12):  # one minute per cycle: 5 minutes of `for`, then group_wait
            await _wait_for_cpu_time(host_cpu_jiffies())
            clock.advance(60)
            store.append((await collector.collect()).samples)
            alerting.evaluate()
            await alerting.deliver()
            if inbox.about("CpuSaturated"):  # the host's own state (a full disk, memory) may mail too
                break
        assert inbox.wait_for(1)
        [message] = inbox.about("CpuSaturated")
        assert message["Subject"] == "[FIRING:1] CpuSaturated on web1 (critical)"
        text = message.get_body(("plain",))
        assert text is not None and "CPU saturated on web1" in text.get_content()

        critical = alerting.operations.list_alerts(state="firing", severity="critical")
        [cpu] = [a for a in critical if a.name == "CpuSaturated"]
        assert cpu.name == "CpuSaturated" and cpu.value is not None and cpu.value > 0.95
        warning = [a for a in alerting.operations.list_alerts() if a.name == "HighCpuUsage"]
        assert [(a.state, a.inhibited) for a in warning] == [(AlertState.FIRING, True)], "critical mutes the warning"
        acknowledged = alerting.operations.acknowledge_alert(cpu.id, by="ops", note="load test")
        assert acknowledged.acknowledgement is not None and acknowledged.acknowledgement.by == "ops"
    finally:
        await alerting.aclose()
