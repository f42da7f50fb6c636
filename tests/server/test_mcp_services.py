"""The MCP server in memory over an agent that watches a real supervisord: service state, program logs and restarts
(elicitation accepted in both protocol eras or declined, the confirm argument, the allowlist, the budget, dry runs).
One supervisord serves the module (starting and stopping it would be most of each test's time); each test gets its
programs running again and an agent of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp_agent import accept, agent_config, audit_of, decline, running_agent, text
from supervisor_fixture import Supervisord, run_supervisord, wait_until

from crucible_monitor.agent import Agent
from crucible_monitor.monitor import Monitor
from crucible_monitor.server.mcp import build_mcp_server
from crucible_monitor.untrusted import fence

pytestmark = pytest.mark.anyio


@dataclass
class Supervised:
    agent: Agent
    monitor: Monitor
    supervisord: Supervisord

    def pid(self, program: str) -> int:
        return int(self.supervisord.process_info(program)["pid"])


PROGRAMS = {
    "web-worker": {
        "command": "/bin/sh -c 'echo worker ready; echo failed job 42 >&2; exec /bin/sleep 1000'",
        "startsecs": "0",
    },
    "mailer": {"command": "/bin/sleep 1000", "startsecs": "0"},
}


@pytest.fixture(scope="module")
def module_supervisord(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisord]:
    """One supervisord for the module, its programs started."""
    with run_supervisord(tmp_path_factory.mktemp("sv"), PROGRAMS) as sv:
        yield sv


@pytest.fixture
def supervisord(module_supervisord: Supervisord) -> Supervisord:
    """The module's supervisord with every program RUNNING again, whatever the test before did to them."""
    with module_supervisord.rpc() as rpc:
        for program in PROGRAMS:
            if module_supervisord.process_info(program)["statename"] != "RUNNING":
                rpc.supervisor.startProcess(program)
    wait_until(
        lambda: all(module_supervisord.process_info(p)["statename"] == "RUNNING" for p in PROGRAMS),
        15,
        "programs RUNNING",
    )
    return module_supervisord


@pytest.fixture
async def setup(tmp_path: Path, supervisord: Supervisord) -> AsyncIterator[Supervised]:
    async with running_agent(agent_config(tmp_path, supervisor_url=supervisord.url)) as running:
        yield Supervised(running, Monitor(running), supervisord)


async def test_get_system_status_counts_services_and_puts_a_stopped_one_first_with_since(setup: Supervised) -> None:
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        summary = (await client.call_tool("get_system_status", {})).structured_content
        assert summary is not None and summary["services"] == {"total": 2, "up": 2, "down": 0}
        assert not [f for f in summary["findings"] if f["subject"].startswith("service")]
        with setup.supervisord.rpc() as rpc:
            rpc.supervisor.stopProcess("mailer")
        await setup.agent.run_collector("services")
        summary = (await client.call_tool("get_system_status", {})).structured_content
    assert summary is not None and summary["status"] in ("warning", "critical")
    first = summary["findings"][0]
    assert first["subject"] == "service:mailer" and "stopped" in first["problem"]
    assert first["since"].endswith("+00:00") and "get_service(name='mailer')" in first["hint"]
    assert "service:mailer: other service is stopped" in summary["headline"]


async def test_services_logs_and_files_are_read_without_a_shell(setup: Supervised) -> None:
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        services = (await client.call_tool("list_services", {"category": "queue"})).structured_content
        assert services is not None and [s["name"] for s in services["services"]] == ["web-worker"]
        detail = (await client.call_tool("get_service", {"name": "web-worker"})).structured_content
        assert detail is not None and detail["service"]["up"] is True
        assert {fence("worker ready"), fence("[stderr] failed job 42")} <= set(detail["log"]["lines"])  # fenced
        unknown = await client.call_tool("get_service", {"name": "nginx"})
        assert unknown.is_error and "watched: mailer, web-worker" in text(unknown)

        tail = (await client.call_tool("tail_logs", {"source": "laravel", "lines": 5})).structured_content
        assert tail is not None and len(tail["lines"]) == 5 and tail["truncated"] is True
        errors = await client.call_tool("tail_logs", {"source": "laravel", "contains": "error"})
        assert errors.structured_content is not None
        assert errors.structured_content["lines"] == [
            fence("[2026-11-28 10:01:00] production.ERROR: SQLSTATE[HY000] [2002] Connection refused")
        ]
        bad = await client.call_tool("tail_logs", {"source": "/etc/shadow"})
        assert bad.is_error and "valid: laravel, laravel:shop, mailer, web-worker" in text(bad)


async def _restart(client: Client, **arguments: Any) -> Any:
    return await client.call_tool("restart_service", {"reason": "worker stuck on job 42", **arguments})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_restart_with_elicitation_accepted_restarts_and_audits_before_and_after(
    setup: Supervised, mode: str
) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False), mode=mode, elicitation_callback=accept) as c:
        result = await _restart(c, service="web-worker")
    assert not result.is_error, result.content
    restart = result.structured_content
    assert restart is not None and restart["result"] == "restarted"
    assert setup.pid("web-worker") != pid_before
    [record] = audit_of(setup.agent, "web-worker")
    assert record.result == "restarted" and record.actor.startswith("mcp-memory")
    assert record.reason == "worker stuck on job 42"
    assert record.state_before is not None and record.state_before["pid"] == pid_before
    assert record.state_after is not None and record.state_after["pid"] == setup.pid("web-worker")


async def test_a_declined_confirmation_restarts_nothing_and_is_audited(setup: Supervised) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=decline) as client:
        result = await _restart(client, service="web-worker")
    assert result.structured_content is not None and result.structured_content["result"] == "declined"
    assert setup.pid("web-worker") == pid_before
    assert [r.result for r in audit_of(setup.agent, "web-worker")] == ["declined"]


async def test_without_elicitation_the_confirm_argument_decides(setup: Supervised) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:  # no elicitation support
        unconfirmed = await _restart(client, service="web-worker")
        assert unconfirmed.structured_content is not None
        assert unconfirmed.structured_content["result"] == "declined"
        assert setup.pid("web-worker") == pid_before
        confirmed = await _restart(client, service="web-worker", confirm=True)
        assert confirmed.structured_content is not None and confirmed.structured_content["result"] == "restarted"
    assert setup.pid("web-worker") != pid_before


async def test_services_off_the_allowlist_and_injection_strings_are_refused_and_audited(setup: Supervised) -> None:
    refusals = [
        ("mailer", "'mailer' is not on the restart allowlist; allowed: web-worker"),
        ("nginx; rm -rf /", "is not on the restart allowlist"),
        ("--help", "is not on the restart allowlist"),
        ("../x", "is not on the restart allowlist"),
    ]
    pids = {p: setup.pid(p) for p in ("web-worker", "mailer")}
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=accept) as client:
        for service, message in refusals:
            result = await _restart(client, service=service)
            assert result.is_error and message in text(result), service
            [record] = audit_of(setup.agent, service)
            assert record.result == "refused" and message in record.detail, service
    assert {p: setup.pid(p) for p in pids} == pids


async def test_the_restart_budget_stops_a_restart_loop(setup: Supervised) -> None:
    await setup.agent.apply_config(
        setup.agent.config.model_copy(
            update={"actions": setup.agent.config.actions.model_copy(update={"restart_budget": 2})}
        )
    )
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=accept) as client:
        results = [await _restart(client, service="web-worker") for _ in range(3)]
    assert [(r.structured_content or {}).get("result") for r in results[:2]] == ["restarted", "restarted"]
    assert results[2].is_error and "restart budget exhausted: 2 restarts of web-worker" in text(results[2])
    assert [r.result for r in audit_of(setup.agent, "web-worker")] == ["refused", "restarted", "restarted"]


async def test_a_dry_run_says_what_would_happen_and_changes_nothing(setup: Supervised) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=decline) as client:
        result = await _restart(client, service="web-worker", dry_run=True)
    assert result.structured_content is not None and result.structured_content["result"] == "dry_run"
    assert "stopProcess/startProcess('web-worker')" in result.structured_content["message"]
    assert setup.pid("web-worker") == pid_before
