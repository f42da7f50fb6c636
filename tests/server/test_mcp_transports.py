"""MCP over real transports: `crucible-monitor mcp` on stdio (embedded agent and next to a running one), streamable
HTTP on a running agent (token, no token, foreign Origin and Host), and a third-party client, the MCP Inspector CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from agent_process import ServedAgent, serve_agent
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[ServedAgent]:
    extra = "collectors:\n  services:\n    supervisor:\n      enabled: false\n"
    with serve_agent(tmp_path, extra) as served:
        yield served


def _stdio(config: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "crucible_monitor.cli", "mcp", "--config", str(config)],
        env={"PATH": os.environ["PATH"], "HOME": str(config.parent)},
    )


async def test_stdio_runs_an_embedded_agent_when_none_answers(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:1\n  data_dir: {tmp_path / 'data'}\n  hostname: embedded-host\n"
        f"storage:\n  worker_process: false\n",
        encoding="utf-8",
    )
    async with Client(_stdio(config)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "get_system_status" in names and "restart_service" in names
        status = await client.call_tool("get_system_status", {})
        assert not status.is_error and status.structured_content is not None
        assert status.structured_content["host"] == "embedded-host"
    assert (tmp_path / "data" / "state.db").exists()  # the embedded agent kept its data


async def test_stdio_talks_to_a_running_agent_through_its_api(agent: ServedAgent) -> None:
    async with Client(_stdio(agent.config)) as client:
        result = await client.call_tool("get_audit", {})
        assert not result.is_error
        denied = await client.call_tool("restart_service", {"service": "nginx", "reason": "testing stdio"})
        assert denied.is_error and "not on the restart allowlist" in denied.content[0].text
    with httpx.Client(base_url=agent.base_url, headers={"Authorization": f"Bearer {agent.token()}"}) as http:
        [record] = http.get("/api/v1/audit").json()["records"]
    assert record["actor"] == "default" and record["result"] == "refused"  # the token's name: who acted
    assert record["claimed_by"].startswith("mcp-stdio (")  # what the client said


async def test_http_mcp_needs_the_token_and_answers_with_it(agent: ServedAgent) -> None:
    url = f"{agent.base_url}/mcp"
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {agent.token()}"})
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "get_metrics" in names
        result = await client.call_tool("list_metrics", {"search": "memory"})
        assert not result.is_error and result.structured_content is not None
        assert "memory_used_bytes" in {m["name"] for m in result.structured_content["metrics"]}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with httpx.Client(base_url=agent.base_url, headers=headers) as raw:
        missing = raw.post("/mcp", json=INIT)
        assert missing.status_code == 401 and "Bearer" in missing.headers["www-authenticate"]
        wrong = raw.post("/mcp", json=INIT, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401


def test_mcp_checks_the_token_before_anything_and_redirects_nowhere(agent: ServedAgent) -> None:
    """``/mcp/`` once answered 307 to a Location taken from the Host header, before checking the token."""
    headers = {"Accept": "application/json, text/event-stream", "Host": "evil.example"}
    with httpx.Client(base_url=agent.base_url, headers=headers) as raw:
        for path in ("/mcp/", "/mcp", "/api/v1/status/"):
            answer = raw.post(path, json=INIT)
            assert answer.status_code in (401, 404) and "location" not in answer.headers, (path, answer.status_code)
        assert raw.post("/mcp/", json=INIT).status_code == 401
        metadata = raw.get("/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["resource"] == f"{agent.base_url}/mcp"  # from the configured address, not the Host header
    assert "authorization_servers" not in metadata  # there is none: tokens come from `token create`
    assert metadata["scopes_supported"] == ["read", "operate", "admin"]
    authed = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {agent.token()}"}
    with httpx.Client(base_url=agent.base_url, headers=authed) as client:
        assert client.post("/mcp/", json=INIT).status_code == 200  # served as /mcp, not redirected


async def test_http_mcp_refuses_a_foreign_origin_and_host(agent: ServedAgent) -> None:
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {agent.token()}",
    }
    with httpx.Client(base_url=agent.base_url, headers=headers) as raw:
        ok = raw.post("/mcp", json=INIT)
        assert ok.status_code == 200
        foreign = raw.post("/mcp", json=INIT, headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        rebound = raw.post("/mcp", json=INIT, headers={"Host": "evil.example"})
        assert rebound.status_code == 421


def test_the_mcp_inspector_cli_lists_tools_and_calls_get_system_status(agent: ServedAgent, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "npm_config_cache": str(tmp_path / "npm-cache"),
        "MCP_CATALOG_PATH": str(tmp_path / "inspector-catalog.json"),
        "npm_config_update_notifier": "false",
    }
    base = [
        "npx",
        "-y",
        INSPECTOR,
        "--cli",
        f"{agent.base_url}/mcp",
        "--header",
        f"Authorization: Bearer {agent.token()}",
    ]
    listed = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    tools = {t["name"] for t in json.loads(listed.stdout)["tools"]}
    assert {"get_system_status", "get_metrics", "restart_service"} <= tools
    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "get_system_status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert called.returncode == 0, called.stderr[-2000:]
    result = json.loads(called.stdout)
    assert result["isError"] is False and result["structuredContent"]["host"]
