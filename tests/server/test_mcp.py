"""The MCP server in memory (`Client(server)`, both protocol eras) over a real agent: real /proc, a real
supervisord whose programs get restarted, real log files."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitResult
from supervisor_fixture import Supervisord, run_supervisord, wait_until

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.monitor import Monitor
from crucible_monitor.server.mcp import build_mcp_server

pytestmark = pytest.mark.anyio

SECRET = "smtp-password-never-shown"
READ_TOOLS = {
    "get_system_status",
    "list_metrics",
    "get_metrics",
    "list_services",
    "get_service",
    "list_http_checks",
    "tail_logs",
    "get_events",
    "list_alerts",
    "get_alert",
    "alert_history",
    "list_silences",
    "get_audit",
    "list_anomalies",
    "explain_anomaly",
    "forecast_capacity",
    "capacity_report",
    "get_recommendations",
    "anomaly_rate",
    "slow_queries",
    "recent_errors",
    "top_endpoints",
}
CHANGING_TOOLS = {"acknowledge_alert"}
DESTRUCTIVE_TOOLS = {"restart_service", "silence_alerts", "delete_silence"}


@dataclass
class Setup:
    agent: Agent
    monitor: Monitor
    supervisord: Supervisord
    app_log: Path

    def pid(self, program: str) -> int:
        return int(self.supervisord.process_info(program)["pid"])


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Supervisord]:
    (tmp_path / "sv").mkdir()
    programs = {
        "web-worker": {
            "command": "/bin/sh -c 'echo worker ready; echo failed job 42 >&2; exec /bin/sleep 1000'",
            "startsecs": "0",
        },
        "mailer": {"command": "/bin/sleep 1000", "startsecs": "0"},
    }
    with run_supervisord(tmp_path / "sv", programs) as sv:
        wait_until(lambda: all(sv.process_info(p)["statename"] == "RUNNING" for p in programs), 15, "programs RUNNING")
        yield sv


RULES = """
rules:
  - name: WorkerUp
    kind: threshold
    metric: service_up
    match: {service: web-worker}
    op: ">="
    value: 1
    for: 0s
    severity: critical
    annotations:
      summary: "web-worker is up (a test rule that always fires)"
"""


FIXTURES = Path(__file__).parent.parent / "fixtures" / "apps"


def _app_files(tmp_path: Path) -> tuple[Path, Path]:
    """A Laravel app directory with a real-format log, and an empty Caddy access log."""
    app = tmp_path / "shop"
    (app / "storage" / "logs").mkdir(parents=True)
    (app / "storage" / "logs" / "laravel.log").write_bytes((FIXTURES / "laravel" / "laravel.log").read_bytes())
    access = tmp_path / "access.log"
    access.touch()
    return app, access


def _append_requests(access: Path) -> None:
    """Requests in Caddy's JSON access-log format, made just now: two failing, slow checkouts."""
    now = time.time()
    requests = [("/checkout", 502, 2.5), ("/checkout", 502, 2.1), ("/", 200, 0.01), ("/cart", 200, 0.3)]
    with access.open("a", encoding="utf-8") as log:
        log.write(
            "".join(
                json.dumps(
                    {
                        "level": "info",
                        "ts": now - 5,
                        "request": {"host": "shop.test", "uri": uri, "method": "GET"},
                        "duration": duration,
                        "status": status,
                    }
                )
                + "\n"
                for uri, status, duration in requests
            )
        )


def _config(tmp_path: Path, supervisord: Supervisord, app_log: Path, **actions: Any) -> Config:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    app, access = _app_files(tmp_path)
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "shop-1"},
            "storage": {"fsync": False},
            "collectors": {
                "services": {"systemd": {"enabled": False}, "supervisor": {"url": supervisord.url}},
                "laravel": {"apps": [{"name": "shop", "path": str(app), "queue_driver": "none"}]},
                "access_logs": {"files": [{"path": str(access), "format": "caddy"}]},
            },
            "actions": {"restart_allowlist": ["web-worker"], "restart_backoff": "1ms", **actions},
            "logs": {"files": {"laravel": str(app_log)}},
            # resource thresholds off: this machine's real load must not change what the tests expect
            "alerts": {
                "cpu_threshold": None,
                "memory_threshold": None,
                "disk_threshold": None,
                "rules_file": str(rules),
            },
            "notifications": {"email": {"password": SECRET}},
        }
    )


@pytest.fixture
async def setup(tmp_path: Path, supervisord: Supervisord) -> AsyncIterator[Setup]:
    app_log = tmp_path / "laravel.log"
    app_log.write_text(
        "".join(f"[2026-11-28 10:00:{i:02d}] production.INFO: request {i}\n" for i in range(30))
        + "[2026-11-28 10:01:00] production.ERROR: SQLSTATE[HY000] [2002] Connection refused\n",
        encoding="utf-8",
    )
    agent = Agent(_config(tmp_path, supervisord, app_log))
    await agent.start(schedule=False)
    with anyio.fail_after(5):
        while not agent.store.latest("cpu_usage_ratio", {"cpu": "total"}):
            await agent.run_collector("system")
    await agent.run_collector("services")
    await agent.run_collector("processes")
    yield Setup(agent, Monitor(agent), supervisord, app_log)
    await agent.stop()


async def accept(context: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="accept", content={"ok": True})


async def decline(context: Any, params: Any) -> ElicitResult:
    return ElicitResult(action="decline")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_are_listed_with_hints_and_answer_with_real_data(setup: Setup, mode: str) -> None:
    server = build_mcp_server(setup.monitor, read_only=False)
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == READ_TOOLS | CHANGING_TOOLS | DESTRUCTIVE_TOOLS
        for name in DESTRUCTIVE_TOOLS:
            assert tools[name].annotations is not None and tools[name].annotations.destructive_hint is True, name
        for name in READ_TOOLS:
            assert tools[name].annotations is not None and tools[name].annotations.read_only_hint is True, name
        restart = tools["restart_service"].annotations
        assert restart is not None and restart.destructive_hint is True and restart.read_only_hint is False
        assert "answer" not in tools["restart_service"].input_schema["properties"]

        status = await client.call_tool("get_system_status", {})
        assert not status.is_error
        summary = status.structured_content
        assert summary is not None and summary["host"] == "shop-1"
        # this machine's own load may add resource findings; nothing about services, checks or alerts is wrong
        assert not [f for f in summary["findings"] if f["subject"].startswith(("service", "check", "alert"))]
        assert summary["vitals"]["memory"]["human"].endswith("%")
        assert summary["services"] == {"total": 2, "up": 2, "down": 0}
        assert summary["alerts"] == {"firing": 0, "pending": 0, "acknowledged": 0}
        biggest = summary["top_by_memory"][0]  # from the real processes collector
        assert biggest["memory"]["unit"] == "bytes" and biggest["memory"]["human"].endswith("B")
        assert summary["ts"].endswith("+00:00")


async def test_get_system_status_puts_a_stopped_service_first_with_since(setup: Setup) -> None:
    with setup.supervisord.rpc() as rpc:
        rpc.supervisor.stopProcess("mailer")
    await setup.agent.run_collector("services")
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        summary = (await client.call_tool("get_system_status", {})).structured_content
    assert summary is not None and summary["status"] in ("warning", "critical")
    first = summary["findings"][0]
    assert first["subject"] == "service mailer" and "stopped" in first["problem"]
    assert first["since"].endswith("+00:00") and "get_service(name='mailer')" in first["hint"]
    assert "service mailer: other service is stopped" in summary["headline"]


async def test_get_metrics_is_bounded_summarised_and_reports_progress(setup: Setup) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        result = await client.call_tool(
            "get_metrics", {"metric": "memory", "max_points": 3}, progress_callback=on_progress
        )
        assert not result.is_error and result.structured_content is not None
        reports = {r["metric"]: r for r in result.structured_content["reports"]}
        assert {"memory_used_bytes", "memory_total_bytes", "memory_used_ratio"} <= set(reports)
        used = reports["memory_used_bytes"]["series"][0]
        assert len(used["points"]) <= 3 and used["human"]["last"].endswith("B")
        assert used["stats"]["min"] <= used["stats"]["avg"] <= used["stats"]["max"]
        assert progress and progress[-1] == len(reports)

        unknown = await client.call_tool("get_metrics", {"metric": "memroy_used"})
        assert unknown.is_error and "groups:" in unknown.content[0].text and "memory" in unknown.content[0].text
        bad_time = await client.call_tool("get_metrics", {"metric": "memory", "since": "last tuesday"})
        assert bad_time.is_error and "ISO 8601" in bad_time.content[0].text
        bad_agg = await client.call_tool("get_metrics", {"metric": "memory_used_bytes", "agg": "median"})
        assert bad_agg.is_error and "p95" in bad_agg.content[0].text  # the schema lists the valid values
        too_many = await client.call_tool("get_metrics", {"metric": "memory", "max_points": 100000})
        assert too_many.is_error


async def test_services_logs_and_files_are_read_without_a_shell(setup: Setup) -> None:
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        services = (await client.call_tool("list_services", {"category": "queue"})).structured_content
        assert services is not None and [s["name"] for s in services["services"]] == ["web-worker"]
        detail = (await client.call_tool("get_service", {"name": "web-worker"})).structured_content
        assert detail is not None and detail["service"]["up"] is True
        assert "worker ready" in detail["log"]["lines"] and "[stderr] failed job 42" in detail["log"]["lines"]
        unknown = await client.call_tool("get_service", {"name": "nginx"})
        assert unknown.is_error and "watched: mailer, web-worker" in unknown.content[0].text

        tail = (await client.call_tool("tail_logs", {"source": "laravel", "lines": 5})).structured_content
        assert tail is not None and len(tail["lines"]) == 5 and tail["truncated"] is True
        errors = await client.call_tool("tail_logs", {"source": "laravel", "contains": "error"})
        assert errors.structured_content is not None
        assert errors.structured_content["lines"] == [
            "[2026-11-28 10:01:00] production.ERROR: SQLSTATE[HY000] [2002] Connection refused"
        ]
        bad = await client.call_tool("tail_logs", {"source": "/etc/shadow"})
        assert bad.is_error and "valid: laravel, mailer, web-worker" in bad.content[0].text


async def _restart(client: Client, **arguments: Any) -> Any:
    return await client.call_tool("restart_service", {"reason": "worker stuck on job 42", **arguments})


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_restart_with_elicitation_accepted_restarts_and_audits_before_and_after(setup: Setup, mode: str) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False), mode=mode, elicitation_callback=accept) as c:
        result = await _restart(c, service="web-worker")
    assert not result.is_error, result.content
    restart = result.structured_content
    assert restart is not None and restart["result"] == "restarted"
    assert setup.pid("web-worker") != pid_before
    [record] = setup.agent.running.state.audit(target="web-worker")
    assert record.result == "restarted" and record.actor.startswith("mcp-memory")
    assert record.reason == "worker stuck on job 42"
    assert record.state_before is not None and record.state_before["pid"] == pid_before
    assert record.state_after is not None and record.state_after["pid"] == setup.pid("web-worker")


async def test_a_declined_confirmation_restarts_nothing_and_is_audited(setup: Setup) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=decline) as client:
        result = await _restart(client, service="web-worker")
    assert result.structured_content is not None and result.structured_content["result"] == "declined"
    assert setup.pid("web-worker") == pid_before
    assert [r.result for r in setup.agent.running.state.audit(target="web-worker")] == ["declined"]


async def test_without_elicitation_the_confirm_argument_decides(setup: Setup) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:  # no elicitation support
        unconfirmed = await _restart(client, service="web-worker")
        assert unconfirmed.structured_content is not None
        assert unconfirmed.structured_content["result"] == "declined"
        assert setup.pid("web-worker") == pid_before
        confirmed = await _restart(client, service="web-worker", confirm=True)
        assert confirmed.structured_content is not None and confirmed.structured_content["result"] == "restarted"
    assert setup.pid("web-worker") != pid_before


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ("mailer", "'mailer' is not on the restart allowlist; allowed: web-worker"),
        ("nginx; rm -rf /", "is not on the restart allowlist"),
        ("--help", "is not on the restart allowlist"),
        ("../x", "is not on the restart allowlist"),
    ],
)
async def test_services_off_the_allowlist_and_injection_strings_are_refused_and_audited(
    setup: Setup, service: str, message: str
) -> None:
    pids = {p: setup.pid(p) for p in ("web-worker", "mailer")}
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=accept) as client:
        result = await _restart(client, service=service)
    assert result.is_error and message in result.content[0].text
    assert {p: setup.pid(p) for p in pids} == pids
    [record] = setup.agent.running.state.audit(target=service)
    assert record.result == "refused" and message in record.detail


async def test_the_restart_budget_stops_a_restart_loop(setup: Setup) -> None:
    await setup.agent.apply_config(
        setup.agent.config.model_copy(
            update={"actions": setup.agent.config.actions.model_copy(update={"restart_budget": 2})}
        )
    )
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=accept) as client:
        results = [await _restart(client, service="web-worker") for _ in range(3)]
    assert [r.structured_content["result"] for r in results[:2]] == ["restarted", "restarted"]  # type: ignore[index]
    assert results[2].is_error and "restart budget exhausted: 2 restarts of web-worker" in results[2].content[0].text
    assert [r.result for r in setup.agent.running.state.audit(target="web-worker")] == [
        "refused",
        "restarted",
        "restarted",
    ]


async def test_a_dry_run_says_what_would_happen_and_changes_nothing(setup: Setup) -> None:
    pid_before = setup.pid("web-worker")
    async with Client(build_mcp_server(setup.monitor, read_only=False), elicitation_callback=decline) as client:
        result = await _restart(client, service="web-worker", dry_run=True)
    assert result.structured_content is not None and result.structured_content["result"] == "dry_run"
    assert "stopProcess/startProcess('web-worker')" in result.structured_content["message"]
    assert setup.pid("web-worker") == pid_before


async def test_read_only_mode_lists_no_destructive_tool_and_the_monitor_refuses(setup: Setup) -> None:
    async with Client(build_mcp_server(setup.monitor, read_only=True)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == READ_TOOLS | CHANGING_TOOLS
        result = await client.call_tool("restart_service", {"service": "web-worker", "reason": "x" * 5})
        assert result.is_error and "Unknown tool" in result.content[0].text
    await setup.agent.apply_config(
        setup.agent.config.model_copy(
            update={"actions": setup.agent.config.actions.model_copy(update={"read_only": True})}
        )
    )
    from crucible_monitor.errors import ActionRefused

    with pytest.raises(ActionRefused, match="read_only"):
        await setup.monitor.restart_service("web-worker", reason="test", actor="test", confirmed=True)
    assert setup.agent.running.state.audit(target="web-worker")[0].result == "refused"


async def test_prompts_embed_current_data_and_guide_through_the_tools(setup: Setup) -> None:
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == {"incident_triage", "capacity_report", "daily_health_summary", "explain_spike"}
        triage = await client.get_prompt("incident_triage", {"alert_id": "A7"})
        text = triage.messages[0].content.text  # type: ignore[union-attr]
        assert "starting from alert A7" in text and '"host":"shop-1"' in text and "get_service(name=" in text
        capacity = await client.get_prompt("capacity_report", {"horizon": "90d"})
        assert "**90d**" in capacity.messages[0].content.text  # type: ignore[union-attr]
        daily = await client.get_prompt("daily_health_summary", {})
        assert '"headline"' in daily.messages[0].content.text  # type: ignore[union-attr]
        spike = await client.get_prompt("explain_spike", {"metric": "memory_used_bytes", "when": "5m"})
        assert "memory_used_bytes" in spike.messages[0].content.text  # type: ignore[union-attr]
        with pytest.raises(MCPError):
            await client.get_prompt("explain_spike", {"metric": "no_such_metric"})


async def test_resources_give_status_redacted_config_and_metrics(setup: Setup) -> None:
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert uris == {"crucible://status", "crucible://config"}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"crucible://metrics/{name}"}
        config = (await client.read_resource("crucible://config")).contents[0]
        assert SECRET not in config.text and "**********" in config.text  # type: ignore[union-attr]
        status = (await client.read_resource("crucible://status")).contents[0]
        assert '"host":"shop-1"' in status.text  # type: ignore[union-attr]
        metric = (await client.read_resource("crucible://metrics/memory_used_bytes")).contents[0]
        assert '"metric":"memory_used_bytes"' in metric.text  # type: ignore[union-attr]


async def test_alerts_can_be_listed_acknowledged_and_silenced_over_mcp(setup: Setup) -> None:
    await setup.agent.evaluate_alerts()
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        summary = (await client.call_tool("get_system_status", {})).structured_content
        assert summary is not None and summary["status"] == "critical" and summary["alerts"]["firing"] == 1
        assert summary["findings"][0]["subject"] == "alert WorkerUp"
        listed = (await client.call_tool("list_alerts", {"state": "firing"})).structured_content
        assert listed is not None
        [alert] = listed["alerts"]
        acked = await client.call_tool("acknowledge_alert", {"alert_id": alert["id"], "note": "on it", "expires": "1h"})
        assert acked.structured_content is not None
        assert acked.structured_content["acknowledgement"]["by"].startswith("mcp-memory")
        bad = await client.call_tool("list_alerts", {"state": "burning"})
        assert bad.is_error and "firing" in bad.content[0].text
        silenced = await client.call_tool(
            "silence_alerts", {"matchers": ["alertname=WorkerUp"], "duration": "2h", "reason": "deploying"}
        )
        assert silenced.structured_content is not None
        silence_id = silenced.structured_content["id"]
        listed_silences = (await client.call_tool("list_silences", {})).structured_content
        assert listed_silences is not None and [x["id"] for x in listed_silences["silences"]] == [silence_id]
        nothing = await client.call_tool("silence_alerts", {"matchers": ["x=~.*"], "duration": "2h", "reason": "r"})
        assert nothing.is_error and "matcher" in nothing.content[0].text
        await client.call_tool("delete_silence", {"silence_id": silence_id})
        detail = (await client.call_tool("get_alert", {"alert_id": alert["id"]})).structured_content
        assert detail is not None and [t["kind"] for t in detail["history"]][-1] == "acknowledged"
        history = (await client.call_tool("alert_history", {"since": "1h"})).structured_content
        assert history is not None and {t["kind"] for t in history["transitions"]} >= {"firing", "acknowledged"}


async def test_application_tools_answer_from_real_log_files(setup: Setup, tmp_path: Path) -> None:
    await setup.agent.run_collector("access_logs")  # the tailer starts at the end of the log
    _append_requests(tmp_path / "access.log")
    await setup.agent.run_collector("access_logs")
    async with Client(build_mcp_server(setup.monitor, read_only=False)) as client:
        top = await client.call_tool("top_endpoints", {"by": "errors"})
        assert not top.is_error and top.structured_content is not None
        assert "/checkout" in json.dumps(top.structured_content)
        errors = await client.call_tool("recent_errors", {"app": "shop", "since": "2026-11-27T00:00:00Z"})
        assert not errors.is_error and errors.structured_content is not None
        assert "PaymentFailed" in json.dumps(errors.structured_content)
        unknown = await client.call_tool("recent_errors", {"app": "blog"})
        assert unknown.is_error and "apps: shop" in unknown.content[0].text
        no_mysql = await client.call_tool("slow_queries", {})
        assert no_mysql.is_error and "collectors.mysql.enabled" in no_mysql.content[0].text
