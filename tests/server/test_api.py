"""The HTTP API over a real agent: real /proc, a real supervisord, a real loopback HTTP server.

The agent runs without its scheduler; each test drives collections itself, so nothing waits on time.
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from helpers import ALWAYS_FIRING_RULES
from loopback_servers import LoopbackServer, Reply, serve_http
from prometheus_client.parser import text_string_to_metric_families
from supervisor_fixture import Supervisord, run_supervisord, wait_until

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.server.app import AsgiApp, build_app
from crucible_monitor.tokens import ensure_api_token

pytestmark = pytest.mark.anyio

TOKEN = "test-token-0123456789"
SLACK_SECRET = "https://hooks.slack.test/T000/B000/very-secret-path"
GUARDED = [
    "/api/v1/collectors",
    "/api/v1/metrics/system",
    "/api/v1/metrics/services",
    "/api/v1/metrics/http",
    "/api/v1/metrics/catalogue",
    "/api/v1/metrics/history?metric=memory_used_bytes",
    "/api/v1/events",
    "/api/v1/alerts",
    "/api/v1/config",
    "/api/v1/openapi.json",
    "/metrics",
]


@dataclass
class Running:
    agent: Agent
    app: AsgiApp
    client: httpx.AsyncClient
    web: LoopbackServer
    supervisord: Supervisord

    async def collect(self, *names: str) -> None:
        for name in names:
            await self.agent.run_collector(name)

    async def collect_system_until_cpu_ratios(self) -> None:
        """CPU ratios need two readings of /proc/stat a jiffy or more apart; collect until they appear."""
        with anyio.fail_after(5):
            while not self.agent.store.latest("cpu_usage_ratio", {"cpu": "total"}):
                await self.collect("system")

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    async def items(self, path: str, **params: Any) -> list[Any]:
        """The entries of a list route, after checking it says how many matched and how many it shows."""
        listed = await self.get(path, **params)
        assert set(listed) == {"items", "total", "limit", "truncated"}, listed
        assert listed["truncated"] == (listed["total"] > len(listed["items"])) or listed["total"] >= listed["limit"]
        items: list[Any] = listed["items"]
        return items


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Supervisord]:
    (tmp_path / "sv").mkdir()
    with run_supervisord(tmp_path / "sv", {"laravel-worker": {"command": "/bin/sleep 1000"}}) as sv:
        yield sv


@pytest.fixture
def web() -> Iterator[LoopbackServer]:
    with serve_http() as server:
        server.script("/", Reply(200, b"Welcome to the shop"))
        yield server


def _config(tmp_path: Path, web: LoopbackServer, supervisord: Supervisord) -> Config:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(ALWAYS_FIRING_RULES, encoding="utf-8")
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "api_token": TOKEN, "hostname": "test-host"},
            "storage": {"fsync": False},
            "collectors": {
                "services": {"systemd": {"enabled": False}, "supervisor": {"url": supervisord.url}},
                "http_checks": [{"name": "shop", "url": web.url("/"), "keyword": "Welcome", "retries": 0}],
            },
            "notifications": {"slack": {"enabled": True, "webhook_url": SLACK_SECRET}},
            "alerts": {"rules_file": str(rules), "cpu_threshold": None, "memory_threshold": None},
        }
    )


@pytest.fixture
async def running(tmp_path: Path, web: LoopbackServer, supervisord: Supervisord) -> AsyncIterator[Running]:
    agent = Agent(_config(tmp_path, web, supervisord))
    await agent.start(schedule=False)
    app = build_app(agent, TOKEN, manage_agent=False)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://agent", headers=headers) as c:
        yield Running(agent, app, c, web, supervisord)
    await agent.stop()


async def test_health_needs_no_token_but_every_other_route_does(running: Running) -> None:
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(running.app), base_url="http://agent")
    async with anonymous:
        health = await anonymous.get("/api/v1/health")
        assert health.status_code == 200 and health.json()["host"] == "test-host"
        for path in GUARDED:
            refused = await anonymous.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"].startswith("Bearer")
            wrong = await anonymous.get(path, headers={"Authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401, path
        assert (await anonymous.post("/api/v1/config", json={})).status_code == 401
    for path in GUARDED:
        assert (await running.client.get(path)).status_code == 200, path


async def test_system_snapshot_reports_this_machine(running: Running) -> None:
    await running.collect_system_until_cpu_ratios()
    system = await running.get("/api/v1/metrics/system")
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines())
    assert system["memory"]["total_bytes"] == int(meminfo["MemTotal"].split()[0]) * 1024
    assert 0 <= system["cpu"]["usage_ratio"] <= 1
    assert "/" in [fs["mountpoint"] for fs in system["filesystems"]]
    assert set(system["load"]) == {"1m", "5m", "15m"}
    assert system["host"] == "test-host" and system["ts"].endswith("+00:00")


async def test_services_come_from_the_real_supervisord(running: Running) -> None:
    await anyio.to_thread.run_sync(
        lambda: wait_until(
            lambda: running.supervisord.process_info("laravel-worker")["statename"] == "RUNNING", 10, "RUNNING"
        )
    )
    await running.collect("services")
    [worker] = [s for s in await running.items("/api/v1/metrics/services") if s["name"] == "laravel-worker"]
    assert worker["manager"] == "supervisor" and worker["up"] is True and worker["category"] == "queue"
    assert worker["pid"] == running.supervisord.process_info("laravel-worker")["pid"]


async def test_http_checks_report_status_latency_and_failures_with_events(running: Running) -> None:
    await running.collect("http_check:shop")
    [check] = await running.items("/api/v1/metrics/http")
    assert check["ok"] is True and check["status_code"] == 200 and check["duration_seconds"] > 0
    running.web.script("/", Reply(503, b"down"))
    await running.collect("http_check:shop")
    [check] = await running.items("/api/v1/metrics/http")
    assert check["ok"] is False and check["failure"] == "status"
    events = await running.items("/api/v1/events", kind="check_failed")
    assert [e["subject"] for e in events] == ["shop"]


async def test_history_serves_gauges_and_counter_rates_from_stored_samples(running: Running) -> None:
    await running.collect("system", "system", "system")
    history = await running.get("/api/v1/metrics/history", metric="memory_total_bytes", since="1h", step="1h")
    assert history["kind"] == "gauge" and history["agg"] == "avg" and history["tiers"] == ["raw"]
    counted = await running.get("/api/v1/metrics/history", metric="memory_total_bytes", since="1h", agg="count")
    assert sum(value for _, value in counted["series"][0]["points"]) == 3
    subprocess.run(["true"], check=True)  # at least one fork between two readings
    await running.collect("system")
    rates = await running.get("/api/v1/metrics/history", metric="forks_total", since="1h", step="1h")
    assert rates["agg"] == "rate"
    [series] = rates["series"]
    assert series["points"][0][1] > 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"metric": "memory_totl_bytes"}, "did you mean memory_total_bytes"),
        ({"metric": "memory_used_bytes", "agg": "rate"}, "valid: avg, min, max, last, p95, count"),
        ({"metric": "memory_used_bytes", "start": "yesterday-ish"}, "invalid time 'yesterday-ish'"),
        ({"metric": "memory_used_bytes", "since": "30d", "step": "1s"}, "use a step of at least"),
        ({"metric": "memory_used_bytes", "labels": "oops"}, "invalid label filter 'oops'"),
        ({"metric": "memory_used_bytes", "start": "1h", "end": "2h"}, "the range is empty"),
    ],
)
async def test_bad_history_queries_are_refused_with_the_valid_choices(
    running: Running, params: dict[str, str], message: str
) -> None:
    response = await running.client.get("/api/v1/metrics/history", params=params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/events", {"since": "nan"}, "between 1970-01-01 and 9999-12-31"),
        ("/api/v1/events", {"since": "inf"}, "between 1970-01-01 and 9999-12-31"),
        ("/api/v1/events", {"since": "99999999999999d"}, "between 0s and 36500d"),
        ("/api/v1/metrics/report", {"metric": "memory", "since": "1e308"}, "between 1970-01-01 and 9999-12-31"),
        ("/api/v1/capacity", {"horizon": "99999999999999d"}, "between 0s and 36500d"),
        ("/api/v1/capacity", {"horizon": "inf"}, "between 0s and 36500d"),
        ("/api/v1/alerts/100000000000000000000000", {}, "less than or equal to 9223372036854775807"),
        ("/api/v1/anomalies/0/explanation", {}, "greater than or equal to 1"),
    ],
)
async def test_extreme_values_are_refused_with_the_valid_range_never_a_500(
    running: Running, path: str, params: dict[str, str], message: str
) -> None:
    response = await running.client.get(path, params=params)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.text


async def test_prometheus_exposition_parses_with_types_and_help(running: Running) -> None:
    await running.collect("system", "system", "agent")
    response = await running.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["crucible_memory_total_bytes"].type == "gauge"
    assert families["crucible_context_switches"].type == "counter"  # the parser strips _total
    assert families["crucible_memory_total_bytes"].documentation
    assert "crucible_agent_resident_memory_bytes" in families


async def test_config_is_redacted_and_can_be_changed_live(running: Running) -> None:
    shown = await running.get("/api/v1/config")
    assert shown["notifications"]["slack"]["webhook_url"] == "**********"
    assert TOKEN not in str(shown) and SLACK_SECRET not in str(shown)
    # posting back what GET returned, with a check's interval changed, keeps the secrets and rebuilds that check
    [check] = shown["collectors"]["http_checks"]
    check["interval"] = "45s"
    before = running.agent.collectors[f"http_check:{check['name']}"]
    response = await running.client.post("/api/v1/config", json=shown)
    assert response.status_code == 200, response.text
    assert response.json()["applied"] is True and response.json()["changed"] == ["collectors"]
    webhook = running.agent.config.notifications.slack.webhook_url
    assert webhook is not None and webhook.get_secret_value() == SLACK_SECRET
    assert running.agent.collectors[f"http_check:{check['name']}"] is not before
    names = [c["name"] for c in await running.items("/api/v1/collectors")]
    assert names.count(f"http_check:{check['name']}") == 1


@pytest.mark.parametrize(
    ("patch", "refused"),
    [
        ({"actions": {"restart_budget": 1000}}, "actions.restart_budget"),
        ({"actions": {"restart_allowlist": ["sshd"]}}, "actions.restart_allowlist"),
        ({"logs": {"files": {"shadow": "/etc/shadow"}}}, "logs.files.shadow"),
        ({"alerts": {"rules_file": "/etc/shadow"}}, "alerts.rules_file"),
        (
            {"collectors": {"services": {"supervisor": {"url": "http://127.0.0.1:1", "password_file": "/etc/shadow"}}}},
            "collectors.services.supervisor.password_file, collectors.services.supervisor.url",
        ),
        ({"notifications": {"email": {"smtp_port": 2525, "to": ["x@attacker.test"]}}}, "notifications.email.smtp_port"),
        ({"collectors": {"http_checks": [{"name": "exfil", "url": "http://127.0.0.1:1/"}]}}, "collectors.http_checks"),
        ({"agent": {"api_token": "mine"}}, "agent.api_token"),
        ({"collectors": {"commands": [{"name": "x", "argv": ["/bin/sh", "-c", "id"]}]}}, "collectors.commands"),
        ({"collectors": {"textfile": {"directory": "/etc"}}}, "collectors.textfile.directory"),
        ({"collectors": {"plugins": {"evil": {"enabled": True}}}}, "collectors.plugins.evil.enabled"),
    ],
)
async def test_the_config_api_cannot_touch_files_destinations_actions_or_tokens(
    running: Running, patch: dict[str, Any], refused: str
) -> None:
    before = running.agent.config
    response = await running.client.post("/api/v1/config", json=patch)
    assert response.status_code == 422, response.text
    assert refused in response.json()["detail"] and "cannot change over the API" in response.json()["detail"]
    assert "root:" not in response.text  # no file content is echoed
    assert running.agent.config is before


async def test_thresholds_and_a_configured_channel_switch_change_live(running: Running) -> None:
    patch = {"alerts": {"cpu_threshold": 70}, "notifications": {"slack": {"enabled": False}}}
    response = await running.client.post("/api/v1/config", json=patch)
    assert response.status_code == 200, response.text
    assert running.agent.config.alerts.cpu_threshold == 70
    assert running.agent.config.notifications.slack.enabled is False


async def test_a_live_config_change_keeps_unchanged_collectors_running(running: Running) -> None:
    system_before = running.agent.collectors["system"]
    response = await running.client.post("/api/v1/config", json={"agent": {"log_level": "debug"}})
    assert response.status_code == 200
    assert running.agent.collectors["system"] is system_before
    response = await running.client.post("/api/v1/config", json={"collectors": {"system": {"per_cpu": False}}})
    assert response.status_code == 200
    assert running.agent.collectors["system"] is not system_before


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"agent": {"collect_interval": "soon"}}, "agent.collect_interval: invalid duration 'soon'"),
        ({"agent": {"listen_addr": "0.0.0.0:9999"}}, "agent.listen_addr cannot change over the API"),
        ({"collectors": {"bogus": {}}}, "unknown key 'bogus'"),
    ],
)
async def test_invalid_config_changes_are_rejected_and_nothing_changes(
    running: Running, patch: dict[str, Any], message: str
) -> None:
    before = running.agent.config
    response = await running.client.post("/api/v1/config", json=patch)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert running.agent.config is before


async def test_alerts_fire_and_are_acknowledged_and_silenced_through_the_api(running: Running) -> None:
    await running.collect("system")
    await running.agent.evaluate_alerts()
    [alert] = await running.items("/api/v1/alerts", state="firing")
    assert alert["name"] == "MemoryPresent" and alert["severity"] == "warning"
    assert alert["annotations"]["summary"].startswith("memory is ")
    response = await running.client.post(
        f"/api/v1/alerts/{alert['id']}/acknowledge", json={"by": "alice", "note": "looking", "expires": "2h"}
    )
    assert response.status_code == 200 and response.json()["acknowledgement"]["by"] == "default (alice)"
    detail = await running.get(f"/api/v1/alerts/{alert['id']}")
    assert [t["kind"] for t in detail["history"]][-1] == "acknowledged"
    created = await running.client.post(
        "/api/v1/silences",
        json={"matchers": ["alertname=MemoryPresent"], "duration": "1h", "reason": "testing", "author": "alice"},
    )
    assert created.status_code == 201
    silence_id = created.json()["id"]
    assert [s["id"] for s in await running.items("/api/v1/silences")] == [silence_id]
    ended = await running.client.delete(f"/api/v1/silences/{silence_id}", params={"by": "alice"})
    assert ended.status_code == 200 and ended.json()["deleted_by"] == "default (alice)"
    history = await running.items("/api/v1/alerts/history", since="1h")
    assert {t["kind"] for t in history} >= {"firing", "acknowledged"}
    events = await running.items("/api/v1/events", kind="alert")
    assert any(e["subject"] == "MemoryPresent" for e in events)
    missing = await running.client.post("/api/v1/alerts/999/acknowledge", json={"by": "alice"})
    assert missing.status_code == 404 and "no alert with id 999" in missing.json()["detail"]
    bad = await running.client.get("/api/v1/alerts", params={"state": "burning"})
    assert bad.status_code == 422


async def test_the_openapi_spec_lists_every_route_with_bearer_security(running: Running) -> None:
    spec = await running.get("/api/v1/openapi.json")
    for path in [p.split("?")[0] for p in GUARDED if "openapi" not in p] + ["/api/v1/health"]:
        assert path in spec["paths"], path
    assert spec["paths"]["/api/v1/metrics/system"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "SystemSnapshot" in spec["components"]["schemas"]


async def test_no_response_contains_a_secret(running: Running) -> None:
    await running.collect("system", "services", "http_check:shop", "agent")
    for path in ["/api/v1/health", *GUARDED]:
        body = (await running.client.get(path)).text
        assert TOKEN not in body and SLACK_SECRET not in body, path


def test_a_generated_token_is_written_once_with_mode_0600(tmp_path: Path) -> None:
    config = Config.model_validate({"agent": {"data_dir": str(tmp_path)}})
    token = ensure_api_token(config)
    path = tmp_path / "api_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 32 and ensure_api_token(config) == token
