"""One MCP server for many hosts, over real agents: agent ``a`` serves ``/mcp`` with ``fleet.hosts`` naming ``b``
and ``c`` (each a real `crucible-monitor serve` with its own data and a token for ``a``) and a host nobody serves.

Every tool takes ``host``; ``list_hosts`` and ``get_fleet_status`` say each host's headline, a stopped agent is
``unreachable`` (a finding, not an error); an acknowledge and a restart forwarded to ``b`` are recorded there under
b's token for ``a`` (who asked as the claim) and in a's own audit; a host whose token is read-only refuses them; an
unknown host is an error naming them all. A read token on ``a`` sees the fleet but no action; ``crucible-monitor
mcp`` over an embedded agent forwards too, and audits in its own ``state.db``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from agent_process import ServedAgent, serve_agent
from fleet_scene import ALWAYS_FIRING, ONLY_ITSELF
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from supervisor_fixture import free_port

pytestmark = pytest.mark.anyio

FOR_A = "fleet-a-secret-0123456789"
ALICE = "alice-secret-0123456789"
BOB = "bob-secret-0123456789"
DEADLINE = 30.0


def _tokens(*tokens: tuple[str, str, str]) -> str:
    """``agent.tokens`` lines for (name, scope, secret) triples."""
    return "  tokens:\n" + "".join(
        f"    - {{name: {n}, scope: {scope}, secret: {secret}}}\n" for n, scope, secret in tokens
    )


@dataclass
class FleetScene:
    """Agent ``a`` (the fleet's MCP server) and the agents it reaches."""

    a: ServedAgent
    b: ServedAgent
    c: ServedAgent
    gone: str


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[FleetScene]:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(ALWAYS_FIRING, encoding="utf-8")
    firing = f"{ONLY_ITSELF}  rules_file: {rules}\n"
    with ExitStack() as stack:
        for name in ("a", "b", "c"):
            (tmp_path / name).mkdir()
        b = stack.enter_context(
            serve_agent(tmp_path / "b", firing, agent_yaml=f"  hostname: b\n{_tokens(('fleet-a', 'operate', FOR_A))}")
        )
        c = stack.enter_context(
            serve_agent(tmp_path / "c", firing, agent_yaml=f"  hostname: c\n{_tokens(('fleet-a', 'read', FOR_A))}")
        )
        gone = f"http://127.0.0.1:{free_port()}"
        fleet = (
            f"fleet:\n  timeout: 3s\n  hosts:\n"
            f"    - {{name: b, url: '{b.base_url}', token: {FOR_A}}}\n"
            f"    - {{name: c, url: '{c.base_url}', token: {FOR_A}}}\n"
            f"    - {{name: gone, url: '{gone}', token: {FOR_A}}}\n"
        )
        a = stack.enter_context(
            serve_agent(
                tmp_path / "a",
                ONLY_ITSELF + fleet,
                agent_yaml=f"  hostname: a\n{_tokens(('alice', 'operate', ALICE), ('bob', 'read', BOB))}",
            )
        )
        yield FleetScene(a, b, c, gone)


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error and result.structured_content is not None, _text(result)
    return result.structured_content


async def test_one_mcp_server_answers_for_every_host_and_forwards_actions_with_their_tokens(
    scene: FleetScene,
) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ALICE}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{scene.a.base_url}/mcp", http_client=http)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        listed = await _call(client, "list_hosts", {})
        status_b = await _call(client, "get_system_status", {"host": "b"})
        local = await _call(client, "get_system_status", {})
        unknown = await client.call_tool("get_system_status", {"host": "nope"})

        async def firing_on(host: str) -> list[dict[str, Any]]:
            alerts = (await _call(client, "list_alerts", {"host": host}))["alerts"]
            return [alert for alert in alerts if alert["state"] == "firing"]

        for host in ("b", "c"):
            await _wait_async(lambda h=host: firing_on(h), f"the always-firing alert on {host}")
        [alert_b] = await firing_on("b")
        [alert_c] = await firing_on("c")
        before = await _call(client, "get_fleet_status", {"limit": 3})
        acked = await _call(client, "acknowledge_alert", {"host": "b", "alert_id": alert_b["id"], "note": "on it"})
        refused = await client.call_tool("acknowledge_alert", {"host": "c", "alert_id": alert_c["id"]})
        restart = {"host": "b", "service": "nginx", "reason": "testing the fleet", "confirm": True}
        not_allowed = await client.call_tool("restart_service", restart)
        audit_a = (await _call(client, "get_audit", {}))["records"]
        [audit_b] = (await _call(client, "get_audit", {"host": "b"}))["records"]
        scene.c.process.kill()
        scene.c.process.wait()
        fleet = await _call(client, "get_fleet_status", {})

    # every tool takes host, but the fleet's own
    assert {"list_hosts", "get_fleet_status"} <= set(tools)
    for name, tool in tools.items():
        assert ("host" in tool.input_schema["properties"]) is (name not in {"list_hosts", "get_fleet_status"}), name
    assert "vhost" in tools["top_endpoints"].input_schema["properties"]
    by_name = {h["name"]: h for h in listed["hosts"]}
    assert list(by_name) == ["local", "b", "c", "gone"] and listed["total"] == 4
    assert by_name["gone"]["status"] == "unreachable" and "no agent answers" in by_name["gone"]["headline"]
    assert by_name["b"]["url"] == scene.b.base_url and by_name["b"]["headline"]
    assert (status_b["host"], local["host"]) == ("b", "a")
    assert unknown.is_error and "unknown host 'nope'; valid: local, b, c, gone" in _text(unknown)

    # b acknowledged it under its token for a, with what a's caller was
    assert acked["acknowledgement"]["by"].startswith("fleet-a (alice (mcp-http"), acked
    with httpx.Client(base_url=scene.b.base_url, headers={"Authorization": f"Bearer {scene.b.token()}"}) as b_api:
        detail = b_api.get(f"/api/v1/alerts/{alert_b['id']}").json()
    [ack] = [t for t in detail["history"] if t["kind"] == "acknowledged"]
    assert ack["actor"].startswith("fleet-a (alice (mcp-http") and ack["note"] == "on it", ack
    # c's token for a is read-only: c refuses, though alice may operate here
    assert refused.is_error and "scope operate" in _text(refused), _text(refused)
    # a's audit: who asked, which host, the outcome
    forwarded = {r["target"]: r for r in audit_a if r["action"] == "acknowledge_alert"}
    assert forwarded[f"b: alert_id={alert_b['id']}"]["result"] == "forwarded"
    assert forwarded[f"b: alert_id={alert_b['id']}"]["actor"] == "alice"
    assert forwarded[f"b: alert_id={alert_b['id']}"]["reason"] == "on it"
    assert forwarded[f"c: alert_id={alert_c['id']}"]["result"] == "failed"
    assert "scope operate" in forwarded[f"c: alert_id={alert_c['id']}"]["detail"]
    # a restart b refuses (not on its allowlist): audited on b under its token for a, with who asked here
    assert not_allowed.is_error and "not on the restart allowlist" in _text(not_allowed)
    assert (audit_b["actor"], audit_b["target"], audit_b["result"]) == ("fleet-a", "nginx", "refused")
    assert audit_b["claimed_by"].startswith("alice (mcp-http"), audit_b
    [restart_a] = [r for r in audit_a if r["action"] == "restart_service"]
    assert (restart_a["target"], restart_a["result"], restart_a["actor"]) == ("b: service=nginx", "failed", "alice")
    assert restart_a["reason"] == "testing the fleet" and "not on the restart allowlist" in restart_a["detail"]

    # worst first: the critical hosts (their worst incident named), the one nobody serves; then, b acknowledged
    # and c stopped, the stopped agent is a finding beside it, b is ok
    assert [(h["name"], h["status"]) for h in before["hosts"]] == [
        ("b", "critical"),
        ("c", "critical"),
        ("gone", "unreachable"),
    ]
    assert (before["total"], before["truncated"]) == (4, True)
    assert before["hosts"][0]["worst"]["subject"] == "alert:AgentPresent"
    assert before["headline"].startswith("4 hosts: 2 critical, 1 unreachable, 1 ok; worst: b: ")
    assert [(h["name"], h["status"]) for h in fleet["hosts"]] == [
        ("c", "unreachable"),
        ("gone", "unreachable"),
        ("b", "ok"),
        ("local", "ok"),
    ]
    assert "no agent answers" in fleet["hosts"][0]["headline"]
    assert fleet["headline"] == "4 hosts: 2 unreachable, 2 ok; worst: c: " + fleet["hosts"][0]["headline"]


async def test_a_read_token_sees_the_fleet_but_no_action(scene: FleetScene) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {BOB}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{scene.a.base_url}/mcp", http_client=http)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("acknowledge_alert", {"host": "b", "alert_id": 1})
        fleet = await _call(client, "get_fleet_status", {})
    assert {"list_hosts", "get_fleet_status", "get_system_status"} <= names
    assert not names & {"acknowledge_alert", "silence_alerts", "restart_service"}
    assert refused.is_error and "needs a token of scope operate" in _text(refused)  # here, before b is asked
    assert fleet["total"] == 4


async def test_stdio_over_an_embedded_agent_forwards_to_the_fleet_and_audits_locally(
    scene: FleetScene, tmp_path: Path
) -> None:
    config = tmp_path / "stdio.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:1\n  data_dir: {tmp_path / 'stdio-data'}\n  hostname: laptop\n"
        f"storage:\n  worker_process: false\n{ONLY_ITSELF}"
        f"fleet:\n  hosts:\n    - {{name: b, url: '{scene.b.base_url}', token: {FOR_A}}}\n",
        encoding="utf-8",
    )
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "crucible_monitor.cli", "mcp", "--config", str(config)],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    async with Client(server) as client:

        async def firing() -> list[dict[str, Any]]:
            alerts = (await _call(client, "list_alerts", {"host": "b"}))["alerts"]
            return [alert for alert in alerts if alert["state"] == "firing"]

        await _wait_async(firing, "the always-firing alert on b")
        [alert] = await firing()
        there = await _call(client, "get_system_status", {"host": "b"})
        here = await _call(client, "get_system_status", {})
        await _call(client, "acknowledge_alert", {"host": "b", "alert_id": alert["id"]})
        [record] = (await _call(client, "get_audit", {}))["records"]
    assert (there["host"], here["host"]) == ("b", "laptop")
    assert (record["actor"], record["target"], record["result"]) == (
        "mcp-stdio",
        f"b: alert_id={alert['id']}",
        "forwarded",
    )


async def _wait_async(condition: Callable[[], Awaitable[object]], what: str) -> None:
    """Poll an async condition until it holds; fail naming ``what`` after :data:`DEADLINE` seconds."""
    try:
        with anyio.fail_after(DEADLINE):
            while not await condition():
                await anyio.sleep(0.2)  # poll interval of a bounded wait
    except TimeoutError:
        pytest.fail(f"no {what} within {DEADLINE:g} s")
