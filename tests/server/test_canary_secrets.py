"""A distinctive canary in every secret a config can hold (tokens, MySQL, supervisor, SMTP, webhook and Slack,
an HTTP check's header and URL credentials, a Laravel app's database and Redis URLs), on a real `crucible-monitor
serve` whose every target refuses connections, so that each collector and notifier fails and reports why.

None of the canaries appears in any API answer (every GET route of the operation table, error answers, /metrics,
the OpenAPI spec), any MCP tool result, resource or prompt, the agent's log, or any file of its data directory
(state.db, the WAL, Parquet).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from agent_process import ServedAgent, serve_agent
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from supervisor_fixture import free_port, wait_until

from crucible_monitor.operation_table import OPERATIONS

pytestmark = pytest.mark.anyio

CANARY = "c4nary"
SECRETS = {
    name: f"{CANARY}-{name}-7f3a9"
    for name in ("admin", "reader", "mysql", "supervisor", "smtp", "webhook", "slack", "header", "url", "db", "redis")
}
RULES = """
rules:
  - name: AlwaysFiring
    kind: threshold
    metric: memory_total_bytes
    op: ">"
    value: 0
    for: 0s
    severity: critical
route:
  receivers: []
  group_wait: 0s
"""
PATH_VALUES = {"name": "nginx", "alert_id": "1", "anomaly_id": "1", "app": "shop", "resource": "memory"}


def _config(tmp_path: Path) -> tuple[str, str]:
    """The agent section's lines and the rest of the config, every target on a port nothing listens on."""
    port = free_port()
    s = SECRETS
    (tmp_path / "alerts.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "shop" / "storage" / "logs").mkdir(parents=True)
    agent = (
        f"  api_token: {s['admin']}\n  tokens:\n    - name: reader\n      scope: read\n      secret: {s['reader']}\n"
    )
    rest = f"""
alerts:
  rules_file: {tmp_path / "alerts.yaml"}
collectors:
  services:
    supervisor:
      url: http://127.0.0.1:{port}
      username: monitor
      password: {s["supervisor"]}
  mysql:
    enabled: true
    port: {port}
    user: crucible
    password: {s["mysql"]}
    connect_timeout: 1s
  http_checks:
    - name: api
      url: http://monitor:{s["url"]}@127.0.0.1:{port}/health
      headers:
        Authorization: Bearer {s["header"]}
  laravel:
    apps:
      - name: shop
        path: {tmp_path / "shop"}
        queue_driver: redis
        database_url: mysql://shop:{s["db"]}@127.0.0.1:{port}/shop
        redis_url: redis://:{s["redis"]}@127.0.0.1:{port}/0
notifications:
  email:
    enabled: true
    smtp_host: 127.0.0.1
    smtp_port: {port}
    security: none
    username: alerts
    password: {s["smtp"]}
    to: [ops@example.com]
  webhook:
    enabled: true
    url: http://127.0.0.1:{port}/hook
    secret: {s["webhook"]}
  slack:
    enabled: true
    webhook_url: http://127.0.0.1:{port}/services/{s["slack"]}
"""
    return agent, rest


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAgent]:
    tmp_path = tmp_path_factory.mktemp("canary")
    agent_yaml, extra = _config(tmp_path)
    with serve_agent(tmp_path, extra, agent_yaml=agent_yaml) as served:
        with _http(served) as http:

            def failed_everywhere() -> bool:
                collectors = {c["name"]: c for c in http.get("/api/v1/collectors").json()["items"]}
                ran = all(c["runs"] >= 1 for c in collectors.values())
                firing = http.get("/api/v1/alerts", params={"state": "firing"}).json()["items"]
                failing = {n for n, c in collectors.items() if not c["ok"]}
                notified = any("notification" in line for line in list(served.lines.queue))  # a failed sending
                return ran and bool(firing) and notified and {"mysql", "services", "laravel:shop"} <= failing

            wait_until(failed_everywhere, 60, "the collectors to run and fail, the alert to fire and be notified")
        yield served


def _http(agent: ServedAgent, secret: str = SECRETS["admin"]) -> httpx.Client:
    return httpx.Client(base_url=agent.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=60)


def _leaks(text: str) -> list[str]:
    return sorted(set(re.findall(rf"{CANARY}[\w-]*", text)))


def _get_routes() -> Iterator[str]:
    for operation in OPERATIONS.values():
        for route in operation.routes:
            if route.method == "GET":
                path = route.path.replace(":path}", "}")
                for name, value in PATH_VALUES.items():
                    path = path.replace(f"{{{name}}}", value)
                query = {"start": "1h"} if path == "/explanation" else {}
                yield "/api/v1" + path + "".join(f"?{k}={v}" for k, v in query.items())


def test_no_api_answer_shows_a_secret(agent: ServedAgent) -> None:
    answers: list[str] = []
    with _http(agent) as http:
        for path in [*_get_routes(), "/metrics", "/api/v1/openapi.json", "/api/v1/health"]:
            response = http.get(path)
            assert response.status_code < 500 or response.status_code == 503, (path, response.text[:300])
            answers.append(f"{path} {response.status_code} {response.text}")
        config = http.get("/api/v1/config").json()
        answers.append(http.post("/api/v1/config", json=config).text)  # the redacted config posted back
        answers.append(http.post("/api/v1/config", json={"notifications": {"email": {"smtp_port": 2525}}}).text)
        answers.append(http.post("/api/v1/config", json={"alerts": {"rules_file": "/etc/shadow"}}).text)
        answers.append(http.post("/api/v1/services/nginx/restart", json={"reason": "x", "confirm": True}).text)
    with _http(agent, SECRETS["reader"]) as reader:
        answers.append(reader.get("/api/v1/config").text)  # a 403
    with _http(agent, "wrong-token") as stranger:
        answers.append(stranger.get("/api/v1/status").text)
    assert len(answers) > 35
    assert _leaks("\n".join(answers)) == []


async def test_no_mcp_result_resource_or_prompt_shows_a_secret(agent: ServedAgent) -> None:
    texts: list[str] = []
    arguments: dict[str, dict[str, Any]] = {
        "get_metrics": {"metric": "http"},
        "get_service": {"name": "nginx"},
        "tail_logs": {"source": "laravel:shop"},
        "get_alert": {"alert_id": 1},
        "explain_anomaly": {"start": "1h"},
        "forecast_capacity": {"resource": "memory"},
        "recent_errors": {"app": "shop"},
        "acknowledge_alert": {"alert_id": 1, "note": "canary test"},
        "silence_alerts": {"matchers": ["alertname=Nothing"], "duration": "1m", "reason": "canary test"},
        "delete_silence": {"silence_id": "none"},
        "restart_service": {"service": "nginx", "reason": "canary test", "dry_run": True, "confirm": True},
        "explain_spike": {"metric": "cpu_usage_ratio"},
    }
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {SECRETS['admin']}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{agent.base_url}/mcp", http_client=http)) as client:
        tools = (await client.list_tools()).tools
        texts.append(str([t.model_dump() for t in tools]))
        for tool in tools:
            result = await client.call_tool(tool.name, arguments.get(tool.name, {}))
            texts += [str(result.structured_content), *(getattr(c, "text", "") for c in result.content)]
        for resource in (await client.list_resources()).resources:
            texts.append(str((await client.read_resource(resource.uri)).model_dump()))
        texts.append(str((await client.read_resource("crucible://metrics/http_check_up")).model_dump()))
        for prompt in (await client.list_prompts()).prompts:
            texts.append(str((await client.get_prompt(prompt.name, arguments.get(prompt.name, {}))).model_dump()))
    assert len(texts) > 40
    assert "http://monitor:" in "".join(texts)  # the check's URL is shown, its password masked
    assert _leaks("\n".join(texts)) == []


def test_no_log_line_or_stored_file_holds_a_secret(agent: ServedAgent) -> None:
    lines: list[str] = []
    while not agent.lines.empty():
        lines.append(agent.lines.get_nowait())
    assert any("mysql" in line.lower() or "supervisor" in line.lower() for line in lines)  # they did fail
    assert _leaks("".join(lines)) == []
    stored = [p for p in agent.data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "state.db" for p in stored)
    for path in stored:
        assert CANARY.encode() not in path.read_bytes(), path
