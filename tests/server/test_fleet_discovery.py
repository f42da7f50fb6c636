"""Hosts discovered from a real Prometheus (Debian's ``prometheus``): one per ``instance`` of ``up{job=...}``.

Two real agents and a target nobody serves are scraped; the fleet lists the agents and the dead target by their
instance label (this agent's own instance left out), the dead one ``unreachable``; tools reach a discovered host by
that name. A Prometheus that does not answer keeps the hosts listed in the config and says why.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from agent_process import serve_agent
from mcp import Client
from services.prometheus import run_prometheus
from supervisor_fixture import free_port, wait_until

from crucible_monitor.fleet import Fleet
from crucible_monitor.fleetconfig import FleetConfig
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.server.mcp import build_mcp_server

pytestmark = pytest.mark.anyio

TOKEN = "fleet-token-0123456789"
QUIET = "collectors:\n  system:\n    enabled: false\n  services:\n    enabled: false\n"
DEADLINE = 60.0


async def test_the_fleet_lists_the_instances_prometheus_scrapes(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(0o600)
    with ExitStack() as stack:
        agents = []
        for host in ("own", "web-2"):
            (tmp_path / host).mkdir()
            agent_yaml = f"  hostname: {host}\n  api_token: {TOKEN}\n"
            agents.append(stack.enter_context(serve_agent(tmp_path / host, QUIET, agent_yaml=agent_yaml)))
        own, web2 = agents
        dead = f"127.0.0.1:{free_port()}"
        targets = [f"127.0.0.1:{own.port}", f"127.0.0.1:{web2.port}", dead]
        prometheus = stack.enter_context(run_prometheus(tmp_path / "prometheus", targets, token_file=token_file))
        wait_until(lambda: len(prometheus.query('up{job="crucible"}')) == 3, DEADLINE, "every target scraped once")
        config = FleetConfig.model_validate(
            {
                "discover": {
                    "prometheus_url": f"http://127.0.0.1:{prometheus.port}",
                    "job": "crucible",
                    "token_file": str(token_file),
                },
                "timeout": "3s",
            }
        )
        fleet = Fleet(config, own_url=own.base_url)
        local = RemoteMonitor(own.base_url, TOKEN)  # as `crucible-monitor mcp` beside the agent
        try:
            status = await fleet.status()
            async with Client(build_mcp_server(local, read_only=True, fleet=fleet)) as client:
                there = await client.call_tool("get_system_status", {"host": f"127.0.0.1:{web2.port}"})
                hosts = await client.call_tool("list_hosts", {})
        finally:
            await fleet.aclose()
            await local.aclose()
    by_name = {h.name: h for h in status.hosts}
    assert set(by_name) == {f"127.0.0.1:{web2.port}", dead}, by_name  # its own instance is this host
    assert by_name[dead].status == "unreachable" and by_name[dead].url == f"http://{dead}"
    assert by_name[f"127.0.0.1:{web2.port}"].status != "unreachable"
    assert status.discovery is None
    assert not there.is_error and there.structured_content is not None
    assert there.structured_content["host"] == "web-2"
    assert hosts.structured_content is not None
    listed = [h["name"] for h in hosts.structured_content["hosts"]]
    assert listed == ["local", *sorted([f"127.0.0.1:{web2.port}", dead])]  # discovered ones by name


async def test_a_prometheus_that_does_not_answer_keeps_the_configured_hosts_and_says_why(tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    config = FleetConfig.model_validate(
        {
            "hosts": [{"name": "web-3", "url": gone}],
            "discover": {"prometheus_url": gone, "url": "http://{address}:9090"},
            "timeout": "2s",
        }
    )
    fleet = Fleet(config)
    try:
        status = await fleet.status()
    finally:
        await fleet.aclose()
    assert [h.name for h in status.hosts] == ["web-3"]
    assert status.discovery is not None and f"Prometheus at {gone}: ConnectError" in status.discovery


def test_a_discovery_url_template_must_name_the_instance_or_its_address() -> None:
    with pytest.raises(ValueError, match=r"naming \{instance\} or \{address\}"):
        FleetConfig.model_validate({"discover": {"prometheus_url": "http://p:9090", "url": "http://web:9090"}})
