"""Scoped tokens on a real `crucible-monitor serve`: a read token from the config and an operate token made with
`crucible-monitor token create` while the agent runs; what each may do over the API and MCP over HTTP, the 403s that
name the scope needed, the audit's "who", and revocation. Plus: every operation, tool and resource has a scope."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import httpx
import httpx2
import pytest
from agent_process import ServedAgent, serve_agent
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from supervisor_fixture import wait_until

from crucible_monitor.config import Scope
from crucible_monitor.operation_table import OPERATIONS
from crucible_monitor.operations import Operations
from crucible_monitor.server.mcp import build_mcp_server
from crucible_monitor.server.scopes import RESOURCE_OPERATIONS, TOOL_OPERATIONS, resource_scope, tool_scope
from crucible_monitor.tokens import SCOPES, allows, new_secret

pytestmark = pytest.mark.anyio

READ_SECRET = "read-token-for-grafana-0123456789"
RULES = """
rules:
  - name: AlwaysFiring
    kind: threshold
    metric: memory_total_bytes
    op: ">"
    value: 0
    for: 0s
    severity: warning
"""


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crucible_monitor.cli", "token", "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAgent]:
    tmp_path = tmp_path_factory.mktemp("scopes")
    (tmp_path / "alerts.yaml").write_text(RULES, encoding="utf-8")
    tokens = f"  tokens:\n    - name: grafana\n      scope: read\n      secret: {READ_SECRET}\n"
    extra = (
        f"alerts:\n  rules_file: {tmp_path / 'alerts.yaml'}\n"
        "collectors:\n  services:\n    supervisor:\n      enabled: false\n"
    )
    with serve_agent(tmp_path, extra, agent_yaml=tokens) as served:
        yield served


@pytest.fixture(scope="module")
def operate_secret(agent: ServedAgent) -> str:
    """A token made while the agent runs: it is accepted without a restart."""
    made = _cli(agent.config, "create", "ops-bot", "--scope", "operate")
    assert made.returncode == 0, made.stderr
    assert "only time" in made.stderr
    return made.stdout.strip()


def _http(agent: ServedAgent, secret: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.Client(base_url=agent.base_url, headers=headers, timeout=30)


def _firing_alert(http: httpx.Client) -> int:
    found: list[int] = []

    def firing() -> bool:
        found[:] = [a["id"] for a in http.get("/api/v1/alerts", params={"state": "firing"}).json()["items"]]
        return bool(found)

    wait_until(firing, 30, "the always-firing rule to fire")
    return found[0]


def test_every_operation_declares_a_scope_and_what_changes_things_needs_more_than_read() -> None:
    assert len(OPERATIONS) > 30
    for name, operation in OPERATIONS.items():
        assert operation.scope in SCOPES, name
        if not operation.read_only:
            assert operation.scope != "read", f"{name} changes things but a read token may call it"
    assert OPERATIONS["update_config"].scope == "admin" and OPERATIONS["get_config"].scope == "admin"
    assert {OPERATIONS[n].scope for n in ("acknowledge_alert", "silence_alerts", "restart_service")} == {"operate"}


async def test_every_tool_and_resource_stands_for_an_operation_of_the_table() -> None:
    server = build_mcp_server(cast(Operations, object()), read_only=False)  # listing calls no operation
    tools = await server.list_tools()  # no token (in-memory): every tool is listed
    assert len(tools) > 20
    assert [t.name for t in tools if t.name not in OPERATIONS and t.name not in TOOL_OPERATIONS] == []
    scopes = {tool.name: tool_scope(tool.name) for tool in tools}
    assert scopes["restart_service"] == scopes["acknowledge_alert"] == "operate"
    assert scopes["get_system_status"] == "read"
    uris = [str(r.uri) for r in await server.list_resources()]
    uris += [t.uri_template for t in await server.list_resource_templates()]
    assert sorted(uris) == sorted(RESOURCE_OPERATIONS)
    assert resource_scope("crucible://config") == "admin" and resource_scope("crucible://metrics/cpu") == "read"


def test_no_token_or_an_unknown_one_gets_401(agent: ServedAgent) -> None:
    for secret in (None, "not-a-token-of-this-agent"):
        with _http(agent, secret) as http:
            assert http.get("/api/v1/status").status_code == 401
            assert http.get("/metrics").status_code == 401
            assert http.get("/api/v1/health").status_code == 200  # public


def test_a_read_token_reads_but_cannot_acknowledge_or_configure(agent: ServedAgent) -> None:
    with _http(agent, READ_SECRET) as http:
        assert http.get("/api/v1/status").status_code == 200
        assert http.get("/metrics").status_code == 200
        assert http.get("/api/v1/alerts").status_code == 200
        assert http.get("/api/v1/audit").status_code == 200
        alert_id = _firing_alert(http)
        refused = http.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": "grafana"})
        assert refused.status_code == 403
        assert refused.json()["required_scope"] == "operate" and "operate" in refused.json()["detail"]
        config = http.get("/api/v1/config")
        assert config.status_code == 403 and config.json()["required_scope"] == "admin"
        restart = http.post("/api/v1/services/nginx/restart", json={"reason": "x", "confirm": True})
        assert restart.status_code == 403 and restart.json()["required_scope"] == "operate"
    with _http(agent, agent.token()) as admin:
        assert admin.get("/api/v1/alerts/" + str(alert_id)).json()["acknowledgement"] is None


def test_an_operate_token_acknowledges_but_cannot_change_the_config(agent: ServedAgent, operate_secret: str) -> None:
    with _http(agent, operate_secret) as http:
        alert_id = _firing_alert(http)
        acked = http.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"by": "alice", "note": "on it"})
        assert acked.status_code == 200, acked.text
        assert acked.json()["acknowledgement"]["by"] == "ops-bot (alice)"  # the token's name, then the claim
        refused = http.post("/api/v1/config", json={"alerts": {"cpu_warning": 90}})
        assert refused.status_code == 403 and refused.json()["required_scope"] == "admin"
        restart = http.post(
            "/api/v1/services/nginx/restart", json={"reason": "scope test", "actor": "root", "confirm": True}
        )
        assert restart.status_code == 403 and "allowlist" in restart.json()["detail"]  # past the scope: the guard
        [record] = [r for r in http.get("/api/v1/audit").json()["records"] if r["reason"] == "scope test"]
    assert record["actor"] == "ops-bot" and record["claimed_by"] == "root"  # who is the token, not the claim
    with _http(agent, agent.token()) as admin:
        assert admin.get("/api/v1/config").status_code == 200


async def test_mcp_over_http_lists_and_runs_only_what_the_token_reaches(
    agent: ServedAgent, operate_secret: str
) -> None:
    url = f"{agent.base_url}/mcp"
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {READ_SECRET}"})
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "get_system_status" in names and "tail_logs" in names
        assert not names & {"restart_service", "acknowledge_alert", "silence_alerts", "delete_silence"}
        called = await client.call_tool("acknowledge_alert", {"alert_id": 1})
        assert called.is_error and "operate" in called.content[0].text
        unknown = await client.call_tool("no_such_tool", {})
        assert unknown.is_error and "Unknown tool" in unknown.content[0].text
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        assert "crucible://status" in resources and "crucible://config" not in resources
        assert not (await client.call_tool("get_system_status", {})).is_error
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {operate_secret}"})
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"restart_service", "acknowledge_alert", "silence_alerts"} <= names
        restart = await client.call_tool(
            "restart_service", {"service": "nginx", "reason": "mcp scope test", "confirm": True, "dry_run": True}
        )
        assert restart.is_error and "allowlist" in restart.content[0].text
    with _http(agent, agent.token()) as admin:
        [record] = [r for r in admin.get("/api/v1/audit").json()["records"] if r["reason"] == "mcp scope test"]
    assert record["actor"] == "ops-bot" and record["claimed_by"].startswith("mcp-http")


def test_a_revoked_token_is_refused_from_the_next_request(agent: ServedAgent) -> None:
    made = _cli(agent.config, "create", "short-lived")
    secret = made.stdout.strip()
    with _http(agent, secret) as http:
        assert http.get("/api/v1/status").status_code == 200
        listed = _cli(agent.config, "list").stdout
        assert "short-lived\tread" in listed and secret not in listed and READ_SECRET not in listed
        assert _cli(agent.config, "revoke", "short-lived").returncode == 0
        assert http.get("/api/v1/status").status_code == 401
    assert secret not in (agent.data_dir / "tokens.json").read_text(encoding="utf-8")
    assert (agent.data_dir / "tokens.json").stat().st_mode & 0o777 == 0o600


def test_the_audit_comes_a_page_at_a_time_with_its_total(agent: ServedAgent) -> None:
    with _http(agent, READ_SECRET) as http:
        for n in range(3):
            http.post("/api/v1/services/nginx/restart", json={"reason": f"page {n}", "confirm": True})  # 403s
        with _http(agent, agent.token()) as admin:
            for n in range(3):
                admin.post("/api/v1/services/nginx/restart", json={"reason": f"page {n}", "confirm": True})
        first = http.get("/api/v1/audit", params={"limit": 2}).json()
        second = http.get("/api/v1/audit", params={"limit": 2, "offset": 2}).json()
        assert first["total"] >= 3 and first["truncated"] is True and len(first["records"]) == 2
        assert {r["id"] for r in first["records"]}.isdisjoint(r["id"] for r in second["records"])
        assert second["offset"] == 2 and second["total"] == first["total"]
        for bad in ({"limit": 0}, {"limit": 5000}, {"offset": -1}, {"offset": 2**40}):
            assert http.get("/api/v1/audit", params=bad).status_code == 422, bad


PATH_VALUES = {"alert_id": "999999", "anomaly_id": "999999", "silence_id": "none", "app": "none", "resource": "memory"}


def test_every_route_answers_each_token_as_its_scope_declares(agent: ServedAgent, operate_secret: str) -> None:
    """Every route × {no token, an unknown one, each scope}: 401, 403 naming the scope, or past the check."""
    tokens: dict[str, str | None] = {"none": None, "unknown": "nope-not-a-token", "read": READ_SECRET}
    tokens |= {"operate": operate_secret, "admin": agent.token()}
    checked = 0
    with httpx.Client(base_url=agent.base_url, timeout=30) as http:
        for operation in OPERATIONS.values():
            for route in operation.routes:
                path = "/api/v1" + route.path.replace(":path}", "}").replace("{name}", "no-such-service")
                for name, value in PATH_VALUES.items():
                    path = path.replace(f"{{{name}}}", value)
                for who, secret in tokens.items():
                    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
                    body = {} if route.method == "POST" else None
                    answer = http.request(route.method, path, headers=headers, json=body)
                    body_json = answer.json() if "json" in answer.headers.get("content-type", "") else {}
                    refused_scope = isinstance(body_json, dict) and "required_scope" in body_json
                    case = (operation.name, route.method, path, who, answer.status_code)
                    if operation.public:
                        assert answer.status_code == 200, case
                    elif secret is None or who == "unknown":
                        assert answer.status_code == 401, case
                    elif allows(cast(Scope, who), operation.scope):
                        assert answer.status_code != 401 and not refused_scope, case
                    else:
                        assert answer.status_code == 403 and body_json["required_scope"] == operation.scope, case
                    checked += 1
    assert checked == 5 * sum(len(o.routes) for o in OPERATIONS.values()) >= 5 * 33


def test_a_generated_secret_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--token -abc`` reads as an option: a secret starting with ``-`` could not be pasted after ``--token``."""
    monkeypatch.setattr("secrets.token_urlsafe", lambda n: "-" + "A" * (n + 10))
    secret = new_secret()
    assert not secret.startswith("-")
    assert len(secret) == 43
