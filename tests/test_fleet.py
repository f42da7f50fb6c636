"""The fleet over real agents: each host's headline through its own API and token, the hosts ranked worst first,
a host that does not answer is ``unreachable`` with why (not an error), an unknown host names the valid ones."""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from agent_process import serve_agent
from fleet_scene import ALWAYS_FIRING, ONLY_ITSELF
from supervisor_fixture import free_port

from crucible_monitor.errors import NotFoundError
from crucible_monitor.fleet import LOCAL, Fleet
from crucible_monitor.fleetconfig import FleetConfig

pytestmark = pytest.mark.anyio


async def test_the_fleet_ranks_hosts_by_their_worst_incident_and_names_the_unreachable(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(ALWAYS_FIRING, encoding="utf-8")
    with ExitStack() as stack:
        (tmp_path / "quiet").mkdir()
        (tmp_path / "loud").mkdir()
        quiet = stack.enter_context(serve_agent(tmp_path / "quiet", ONLY_ITSELF, agent_yaml="  hostname: quiet\n"))
        loud = stack.enter_context(
            serve_agent(tmp_path / "loud", f"{ONLY_ITSELF}  rules_file: {rules}\n", agent_yaml="  hostname: loud\n")
        )
        gone = f"http://127.0.0.1:{free_port()}"
        config = FleetConfig.model_validate(
            {
                "hosts": [
                    {"name": "quiet", "url": quiet.base_url, "token": quiet.token()},
                    {"name": "loud", "url": loud.base_url, "token": loud.token()},
                    {"name": "gone", "url": gone, "token": "whatever-token"},
                ],
                "timeout": "3s",
            }
        )
        fleet = Fleet(config)
        try:
            remote = fleet.remote("loud")

            async def firing() -> bool:
                return any(a.state == "firing" for a in await remote.list_alerts())

            deadline = time.monotonic() + 30
            while not await firing():
                assert time.monotonic() < deadline, "the always-firing rule did not fire within 30 s"
                await asyncio.sleep(0.2)  # poll interval of a bounded wait
            status = await fleet.status(limit=2)
            with pytest.raises(NotFoundError, match=f"unknown host 'nope'; valid: {LOCAL}, quiet, loud, gone"):
                fleet.remote("nope")
        finally:
            await fleet.aclose()
    assert status.total == 3 and status.limit == 2 and status.truncated
    assert [h.name for h in status.hosts] == ["loud", "gone"], status  # critical, then unreachable, then ok
    loud_status, gone_status = status.hosts
    assert loud_status.status == "critical" and loud_status.worst is not None
    assert loud_status.worst.subject == "alert:AgentPresent"
    assert gone_status.status == "unreachable" and "unreachable" in gone_status.headline
    assert status.headline.startswith("3 hosts: 1 critical, 1 unreachable, 1 ok; worst: loud: ")
