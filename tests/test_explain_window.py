"""A window explained from minute one: a fresh agent (no host model) compares the window with the one before it.

Real faults on this machine: a process burning CPU (the ``burn_cpu`` fixture), read by the real system and processes
collectors on the real clock; a supervisord program crash-looping (tests/supervisor_fixture.py), read by the real
services collector. The host's own load is tolerated: the test's process must be what leads, not the only thing.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import numpy as np
import pytest
from helpers import host_cpu_jiffies
from loopback_servers import Reply, serve_http
from manual_clock import Clock
from supervisor_fixture import run_supervisord

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.models import EventKind
from crucible_monitor.monitor import Monitor

pytestmark = pytest.mark.anyio

COLLECTIONS = 10  # per phase, about two seconds apart: a process busy for a few seconds does not outweigh the burn
BUSY = 0.5  # a host busier than this before the burn, or varying as much, cannot show one
DEADLINE = 20.0
_FIRST = -10  # the burners' nice value: the kernel gives them the larger share of a busy machine
CRASHER = {"command": '/bin/sh -c "exit 3"', "autorestart": "true", "startsecs": "0", "startretries": "1000"}
SLEEPER = {"command": "/bin/sleep 1000", "startsecs": "0", "stopwaitsecs": "5"}


def _let_cpu_time_pass(seconds: float = 2.0) -> None:
    """Wait (bounded) until the kernel has counted ``seconds`` of every CPU, so CPU ratios have something to say."""
    cpus = os.cpu_count() or 1
    start, deadline = host_cpu_jiffies(), time.monotonic() + 10 * seconds
    while host_cpu_jiffies() < start + 100 * seconds * cpus:
        assert time.monotonic() < deadline, "the CPU counters did not move"
        time.sleep(0.02)  # poll without spinning: a busy wait would itself be the CPU load measured


def _config(tmp_path: Path, services: dict[str, object], **collectors: object) -> Config:
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "fresh-host"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": services, **collectors},
            "alerts": {"cpu_threshold": None, "memory_threshold": None, "disk_threshold": None},
        }
    )


async def _minute_one(agent: Agent) -> None:
    """One round of what the scheduler does in the first minutes: system, processes, a scoring run (which stores
    the process snapshot; there is no model to score with)."""
    _let_cpu_time_pass()
    await agent.run_collector("system")
    await agent.run_collector("processes")
    await agent.analyse()


async def test_a_cpu_burn_on_a_fresh_agent_is_explained_by_cpu_and_the_burning_process(
    tmp_path: Path, burn_cpu: Callable[[], subprocess.Popen[bytes]]
) -> None:
    agent = Agent(_config(tmp_path, {"enabled": False}))
    await agent.start(schedule=False)
    try:
        for _ in range(COLLECTIONS):
            await _minute_one(agent)
        burn_start = time.time()
        burners = {burn_cpu().pid, burn_cpu().pid}  # both cores of a two-core machine
        for pid in burners if os.geteuid() == 0 else ():
            os.setpriority(os.PRIO_PROCESS, pid, _FIRST)  # the fault injected leads the host's other work on the CPU
        for _ in range(COLLECTIONS):
            await _minute_one(agent)
        end = time.time()
        [before] = agent.store.query(
            "cpu_usage_ratio", start=burn_start - (end - burn_start), end=burn_start, step=1, labels={"cpu": "total"}
        )
        explanation = await Monitor(agent).explain_anomaly(start=burn_start, end=end)

        assert explanation.anomaly is None and explanation.series == []
        assert explanation.method.startswith("no model yet: compared with the previous window")
        assert {"previous_window", "process_snapshots"} <= set(explanation.basis)
        assert "host_model" not in explanation.basis
        top = explanation.processes_by_cpu_growth[0]  # other work on the machine may follow, not lead
        assert top.pid in burners, explanation.processes_by_cpu_growth
        assert top.change == "new" and top.cpu_cores is not None and top.cpu_cores > 0.1
        assert f"Top process by CPU growth: {top.name} (pid {top.pid}, new" in explanation.summary
        assert len(explanation.moved) <= 5 and len(explanation.processes_by_cpu_growth) <= 3
        assert explanation.totals["moved"] >= len(explanation.moved)
        assert explanation.totals["processes_by_cpu_growth"] >= len(explanation.processes_by_cpu_growth)
        assert "get_system_status" in {t.tool for t in explanation.next_tools}

        level = float(np.median(before.values))
        spread = 1.4826 * float(np.median(np.abs(np.asarray(before.values) - level)))
        if level > BUSY or (1 - level) < 6 * spread:  # other work on the machine: a full CPU is no clear move
            pytest.skip(
                f"the burner is named, but this machine was too busy before the burn (CPU {level:.0%} ± {spread:.0%})"
                " for the CPU series to stand out"
            )
        cpu = explanation.moved[0]  # the key series lead, the largest move first
        assert (cpu.metric, cpu.labels, cpu.unit) == ("cpu_usage_ratio", {"cpu": "total"}, "ratio")
        assert cpu.z >= 3 and cpu.value > cpu.before and "%" in cpu.change
        assert 'cpu_usage_ratio{cpu="total"} rose' in explanation.summary
        assert "get_metrics" in {t.tool for t in explanation.next_tools}
    finally:
        await agent.stop()


async def test_a_crash_looping_supervisor_program_is_explained_by_its_restarts(tmp_path: Path) -> None:
    clock = Clock(float(int(time.time())))
    (tmp_path / "sv").mkdir()
    with run_supervisord(tmp_path / "sv", {"crasher": CRASHER, "sleeper": SLEEPER}) as sv:
        config = _config(tmp_path, {"systemd": {"enabled": False}, "supervisor": {"url": sv.url}})
        agent = Agent(config, clock=clock)
        await agent.start(schedule=False)
        try:
            await agent.run_collector("services")  # the first look: what restarts are counted from
            clock.advance(60)
            window_start = clock()
            restarts = 0
            with anyio.fail_after(DEADLINE):
                while restarts < 3:
                    await agent.run_collector("services")
                    clock.advance(10)
                    events = agent.running.state.events(since=window_start, kinds=[EventKind.SERVICE_RESTART])
                    restarts = sum(int(e.event.data["count"]) for e in events if e.event.subject == "crasher")
                    await anyio.sleep(0.2)  # the poll interval of a bounded wait: let the crasher crash again
            explanation = await Monitor(agent).explain_anomaly(start=window_start, end=clock())
        finally:
            await agent.stop()

    assert explanation.method.startswith("no model yet")
    [crasher] = explanation.restarts
    assert (crasher.service, crasher.restarts) == ("crasher", restarts)
    assert explanation.totals["restarts"] == 1
    assert f"Restarted in the window: crasher {restarts} times" in explanation.summary
    assert any(e.kind == "service_restart" and e.subject == "crasher" for e in explanation.events)
    assert len(explanation.events) <= 10 and explanation.totals["events"] >= len(events)  # every restart event counted
    assert "list_services" in {t.tool for t in explanation.next_tools}


PAYMENT_FAILED = (
    '[2026-11-28 10:01:00] production.ERROR: Card declined {"userId":42,"exception":"[object] '
    "(App\\\\Exceptions\\\\PaymentFailed(code: 0): Card declined at /var/www/shop/app/Services/Billing.php:88)\n"
)


async def test_a_failing_check_and_a_burst_of_exceptions_are_explained_without_a_model(tmp_path: Path) -> None:
    clock = Clock(float(int(time.time())))
    log = tmp_path / "shop" / "storage" / "logs" / "laravel.log"
    log.parent.mkdir(parents=True)
    log.write_text("[2026-11-28 10:00:00] production.INFO: Order 1234 placed\n", encoding="utf-8")
    with serve_http() as web:
        web.script("/", Reply(200, b"Welcome to the shop"))
        config = _config(
            tmp_path,
            {"enabled": False},
            http_checks=[{"name": "shop", "url": web.url("/"), "keyword": "Welcome", "retries": 0}],
            laravel={"apps": [{"name": "shop", "path": str(tmp_path / "shop"), "queue_driver": "none"}]},
        )
        agent = Agent(config, clock=clock)
        await agent.start(schedule=False)
        try:
            for minute in range(10):
                if minute == 5:  # the window: the shop answers 500 and logs three failed payments
                    window_start = clock()
                    web.script("/", Reply(500, b"Server Error"))
                    with log.open("a", encoding="utf-8") as f:
                        f.write(PAYMENT_FAILED * 3)
                await agent.run_collector("http_check:shop")
                await agent.run_collector("laravel:shop")
                clock.advance(60)
            explanation = await Monitor(agent).explain_anomaly(start=window_start, end=clock())
        finally:
            await agent.stop()

    [check] = explanation.failing_checks
    assert (check.check, check.failing_ratio) == ("shop", 1.0)
    assert check.error is not None and check.error.startswith("HTTP check shop failed: status")
    [burst] = explanation.error_bursts
    assert (burst.app, burst.exception, burst.count, burst.before) == ("shop", "App\\Exceptions\\PaymentFailed", 3, 0)
    assert "HTTP checks failing: shop (100% of the window)" in explanation.summary
    assert "Logged: 3 × App\\Exceptions\\PaymentFailed (shop; 0 before)" in explanation.summary
    moved = {m.metric: m for m in explanation.moved}
    assert moved["http_check_up"].labels == {"check": "shop"} and moved["http_check_up"].z < 0
    tools = {t.tool: t.arguments for t in explanation.next_tools}
    assert tools["recent_errors"] == {"app": "shop", "since": explanation.window_start}
    assert "list_http_checks" in tools
