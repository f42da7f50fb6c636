"""A scripted incident for the token budgets (tests/server/test_token_budgets.py and benchmarks/bench_tokens.py).

A real agent watching a real supervisord (one program stopped during the scene), three real HTTP checks on a
loopback server (one up, one that flapped three times and recovered, one failing with 503), the always-firing alert
rule of tests/mcp_agent.py, a Laravel app's real-format error log, and Caddy access-log lines with failing, slow
checkouts. ``CALLS`` is one call of every read tool, as a model would make it in this scene (the fleet's tools over
:func:`scene_fleet`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopback_servers import Reply, serve_http
from mcp_agent import agent_config, running_agent
from supervisor_fixture import Supervisord, free_port, run_supervisord, wait_until

from crucible_monitor.agent import Agent
from crucible_monitor.fleet import Fleet
from crucible_monitor.fleetconfig import FleetConfig

__all__ = ["CALLS", "FLAPS", "PROMPTS", "Scene", "scene_fleet", "token_scene"]

PROGRAMS = {
    "web-worker": {"command": "/bin/sh -c 'echo worker ready; exec /bin/sleep 1000'", "startsecs": "0"},
    "mailer": {"command": "/bin/sleep 1000", "startsecs": "0"},
}
FLAPS = 3
"""How often the ``checkout`` check failed and recovered."""

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("get_system_status", {}),
    ("list_metrics", {}),
    ("get_metrics", {"metric": "http"}),
    ("get_metrics", {"metric": "cpu"}),
    ("get_metrics", {"metric": "memory", "points": True}),
    ("list_services", {}),
    ("get_service", {"name": "mailer"}),
    ("list_http_checks", {}),
    ("tail_logs", {"source": "web-worker"}),
    ("get_events", {}),
    ("list_alerts", {}),
    ("get_alert", {"alert_id": 1}),
    ("alert_history", {}),
    ("list_silences", {}),
    ("get_audit", {}),
    ("list_anomalies", {}),
    ("explain_anomaly", {"start": "15m"}),
    ("forecast_capacity", {"resource": "memory"}),
    ("capacity_report", {}),
    ("anomaly_rate", {}),
    ("get_recommendations", {}),
    ("recent_errors", {"app": "shop", "since": "2026-11-27T00:00:00Z"}),
    ("top_endpoints", {}),
    ("slow_queries", {}),  # MySQL is not watched here: the answer is the error saying how to enable it
    ("list_hosts", {}),
    ("get_fleet_status", {}),
]
PROMPTS: list[tuple[str, dict[str, str]]] = [("incident_triage", {}), ("daily_health_summary", {})]


def scene_fleet() -> Fleet:
    """The scene's fleet: one other host, ``web-2``, whose agent does not answer (the fleet tools of ``CALLS``)."""
    hosts = [{"name": "web-2", "url": f"http://127.0.0.1:{free_port()}"}]
    return Fleet(FleetConfig.model_validate({"hosts": hosts, "timeout": "2s"}))


@dataclass
class Scene:
    """The running agent of the scene and the supervisord it watches."""

    agent: Agent
    supervisord: Supervisord


def _append_requests(access: Path) -> None:
    """Caddy JSON access-log lines made just now: failing, slow checkouts among quick pages."""
    now = time.time()
    requests = [("/checkout", 502, 2.5)] * 6 + [("/", 200, 0.01)] * 20 + [("/cart", 200, 0.3)] * 5
    requests += [(f"/product/{i}", 200, 0.05) for i in range(12)]
    with access.open("a", encoding="utf-8") as log:
        for uri, status, duration in requests:
            entry = {
                "level": "info",
                "ts": now - 5,
                "request": {"host": "shop.test", "uri": uri, "method": "GET"},
                "duration": duration,
                "status": status,
            }
            log.write(json.dumps(entry) + "\n")


@asynccontextmanager
async def token_scene(tmp_path: Path) -> AsyncIterator[Scene]:
    """The scene, every collector run after its faults were made (see the module's docstring)."""
    flapping = [Reply(503, b"down"), Reply(200, b"ok")] * FLAPS
    (tmp_path / "sv").mkdir()
    with run_supervisord(tmp_path / "sv", PROGRAMS) as supervisord, serve_http() as server:
        server.script("/health", Reply(200, b"ok"))
        server.script("/checkout", flapping)
        server.script("/api", Reply(503, b"unavailable"))
        checks = [
            {"name": name, "url": server.url(path), "retries": 0}
            for name, path in (("homepage", "/health"), ("checkout", "/checkout"), ("api", "/api"))
        ]
        config = agent_config(tmp_path, supervisor_url=supervisord.url, http_checks=checks)
        async with running_agent(config) as agent:
            await agent.run_collector("access_logs")  # the tailer starts at the log's end
            _append_requests(tmp_path / "access.log")
            await agent.run_collector("access_logs")
            for _ in range(len(flapping) + 1):
                for check in checks:
                    await agent.run_collector(f"http_check:{check['name']}")
            with supervisord.rpc() as rpc:
                rpc.supervisor.stopProcess("mailer")
            wait_until(lambda: supervisord.process_info("mailer")["statename"] == "STOPPED", 15, "mailer stopped")
            for collector in ("system", "services", "processes", "laravel:shop"):
                await agent.run_collector(collector)
            await agent.evaluate_alerts()
            yield Scene(agent, supervisord)
