"""The MCP server in memory (`Client(server)`, both protocol eras), on the cheapest footing that shows each behaviour:

- `RecordedOperations`, a stub defined here that records every call: the MCP layer alone (the tool list and its
  annotations, argument validation and error texts, read-only listing, how a confirmation reaches the restart);
- a real agent watching no service manager (tests/mcp_agent.py): real /proc, real log files, a real HTTP server on
  loopback for checks.

What needs real programs (service state, their logs, restarts) is in test_mcp_services.py.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from loopback_servers import Reply, serve_http
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_agent import SECRET, accept, agent_config, audit_of, decline, running_agent, text

from crucible_monitor.agent import Agent
from crucible_monitor.errors import ActionRefused, NotFoundError
from crucible_monitor.monitor import Monitor
from crucible_monitor.operations import Operations
from crucible_monitor.schemas import RestartResult
from crucible_monitor.server.mcp import build_mcp_server

pytestmark = pytest.mark.anyio

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

# -- the MCP layer alone, over a recorded stub ------------------------------------------------------------------------


@dataclass
class Call:
    operation: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordedOperations:
    """A stand-in for any Operations, for tests of the MCP layer alone: each call is checked against the protocol's
    signature and recorded in ``calls`` by argument name, then answered from ``answers`` (an exception there is
    raised); an operation without an answer fails the test."""

    answers: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def __getattr__(self, operation: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        declared = getattr(Operations, operation, None)
        if operation.startswith("_") or declared is None:
            raise AttributeError(operation)

        async def call(*args: Any, **kwargs: Any) -> Any:
            bound = inspect.signature(declared).bind(self, *args, **kwargs)
            self.calls.append(Call(operation, {k: v for k, v in bound.arguments.items() if k != "self"}))
            answer = self.answers[operation]
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_are_listed_with_hints_and_the_confirmation_is_no_argument(mode: str) -> None:
    async with Client(build_mcp_server(RecordedOperations(), read_only=False), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS | CHANGING_TOOLS | DESTRUCTIVE_TOOLS
    for name in DESTRUCTIVE_TOOLS:
        hints = tools[name].annotations
        assert hints is not None and hints.destructive_hint is True, name
    for name in READ_TOOLS:
        hints = tools[name].annotations
        assert hints is not None and hints.read_only_hint is True, name
    restart = tools["restart_service"].annotations
    assert restart is not None and restart.destructive_hint is True and restart.read_only_hint is False
    assert "answer" not in tools["restart_service"].input_schema["properties"]


async def test_bad_arguments_are_refused_with_the_valid_forms_before_any_operation_runs() -> None:
    ops = RecordedOperations()
    async with Client(build_mcp_server(ops, read_only=False)) as client:
        bad_time = await client.call_tool("get_metrics", {"metric": "memory", "since": "last tuesday"})
        assert bad_time.is_error and "ISO 8601" in text(bad_time)
        bad_agg = await client.call_tool("get_metrics", {"metric": "memory_used_bytes", "agg": "median"})
        assert bad_agg.is_error and "p95" in text(bad_agg)  # the schema lists the valid values
        too_many = await client.call_tool("get_metrics", {"metric": "memory", "max_points": 100000})
        assert too_many.is_error
        bad_state = await client.call_tool("list_alerts", {"state": "burning"})
        assert bad_state.is_error and "firing" in text(bad_state)
    assert ops.calls == []


async def test_the_operations_errors_reach_the_model_as_tool_errors_with_their_message() -> None:
    ops = RecordedOperations({"get_alert": NotFoundError("no alert 7; list_alerts shows them")})
    async with Client(build_mcp_server(ops, read_only=False)) as client:
        result = await client.call_tool("get_alert", {"alert_id": 7})
    assert result.is_error and text(result).endswith(": no alert 7; list_alerts shows them")
    assert ops.calls == [Call("get_alert", {"alert_id": 7})]


async def test_read_only_mode_lists_no_destructive_tool() -> None:
    async with Client(build_mcp_server(RecordedOperations(), read_only=True)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == READ_TOOLS | CHANGING_TOOLS
        result = await client.call_tool("restart_service", {"service": "web-worker", "reason": "x" * 5})
        assert result.is_error and "Unknown tool" in text(result)


@pytest.mark.parametrize(
    ("elicitation", "arguments", "confirmed"),
    [
        (accept, {}, True),
        (decline, {}, False),
        (decline, {"confirm": True}, False),  # a client that can ask: only the user's answer counts
        (None, {}, False),
        (None, {"confirm": True}, True),
    ],
)
async def test_the_users_answer_or_else_the_confirm_argument_reaches_the_restart(
    elicitation: Any, arguments: dict[str, Any], confirmed: bool
) -> None:
    answer = RestartResult(
        service="w", manager="supervisor", result="declined", message="", audit_id=1, restarts_left=1
    )
    ops = RecordedOperations({"restart_service": answer})
    async with Client(build_mcp_server(ops, read_only=False), elicitation_callback=elicitation) as client:
        result = await client.call_tool("restart_service", {"service": "w", "reason": "stuck", **arguments})
    assert not result.is_error, result.content
    [call] = ops.calls
    assert call.operation == "restart_service" and call.arguments["name"] == "w" and call.arguments["reason"] == "stuck"
    assert call.arguments["confirmed"] is confirmed and call.arguments["dry_run"] is False
    assert call.arguments["actor"].startswith("mcp-memory")


# -- a real agent watching no service manager -------------------------------------------------------------------------


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


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    async with running_agent(agent_config(tmp_path)) as running:
        yield running


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_get_system_status_answers_with_real_data(agent: Agent, mode: str) -> None:
    async with Client(build_mcp_server(Monitor(agent), read_only=False), mode=mode) as client:
        status = await client.call_tool("get_system_status", {})
    assert not status.is_error
    summary = status.structured_content
    assert summary is not None and summary["host"] == "shop-1"
    # this machine's own load may add resource findings; nothing about services, checks or alerts is wrong
    assert not [f for f in summary["findings"] if f["subject"].startswith(("service", "check", "alert"))]
    assert summary["vitals"]["memory"]["human"].endswith("%")
    assert summary["alerts"] == {"firing": 0, "pending": 0, "acknowledged": 0}
    biggest = summary["top_by_memory"][0]  # from the real processes collector
    assert biggest["memory"]["unit"] == "bytes" and biggest["memory"]["human"].endswith("B")
    assert summary["ts"].endswith("+00:00")


async def test_get_metrics_is_bounded_summarised_and_reports_progress(agent: Agent) -> None:
    reported: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append(progress)

    async with Client(build_mcp_server(Monitor(agent), read_only=False)) as client:
        result = await client.call_tool(
            "get_metrics", {"metric": "memory", "max_points": 3, "points": True}, progress_callback=on_progress
        )
        assert not result.is_error and result.structured_content is not None
        reports = {r["metric"]: r for r in result.structured_content["reports"]}
        assert {"memory_used_bytes", "memory_total_bytes", "memory_used_ratio"} <= set(reports)
        used = reports["memory_used_bytes"]["series"][0]
        assert len(used["points"]) <= 3 and used["human"]["last"].endswith("B")
        assert used["stats"]["min"] <= used["stats"]["avg"] <= used["stats"]["max"]
        assert reported and reported[-1] == len(reports)

        unknown = await client.call_tool("get_metrics", {"metric": "memroy_used"})
        assert unknown.is_error and "groups:" in text(unknown) and "memory" in text(unknown)


async def test_http_checks_are_listed_failing_first_with_latency_and_iso_times(tmp_path: Path) -> None:
    with serve_http() as server:
        server.script("/health", Reply(200, b"ok"))
        server.script("/broken", Reply(503, b"unavailable"))
        checks: list[dict[str, Any]] = [
            {"name": "homepage", "url": server.url("/health")},
            {"name": "checkout", "url": server.url("/broken"), "retries": 0},
        ]
        async with running_agent(agent_config(tmp_path, http_checks=checks)) as running:
            for check in checks:
                await running.run_collector(f"http_check:{check['name']}")
            async with Client(build_mcp_server(Monitor(running), read_only=False)) as client:
                listed = (await client.call_tool("list_http_checks", {})).structured_content
    assert listed is not None and [c["name"] for c in listed["checks"]] == ["checkout", "homepage"]
    failing, up = listed["checks"]
    assert failing["ok"] is False and failing["failure"] == "status" and failing["status_code"] == 503
    assert up["ok"] is True and up["latency"]["unit"] == "seconds" and up["latency"]["human"]
    assert up["checked_at"].endswith("+00:00") and up["certificate_expires"] is None
    assert "http_check_duration_seconds" in listed["hint"]


async def test_read_only_config_makes_the_monitor_refuse_and_audit_a_restart(agent: Agent) -> None:
    await agent.apply_config(
        agent.config.model_copy(update={"actions": agent.config.actions.model_copy(update={"read_only": True})})
    )
    with pytest.raises(ActionRefused, match="read_only"):
        await Monitor(agent).restart_service("web-worker", reason="test", actor="test", confirmed=True)
    assert audit_of(agent, "web-worker")[0].result == "refused"


async def test_prompts_embed_current_data_and_guide_through_the_tools(agent: Agent) -> None:
    async with Client(build_mcp_server(Monitor(agent), read_only=False)) as client:
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == {"incident_triage", "capacity_report", "daily_health_summary", "explain_spike"}
        triage = text(await client.get_prompt("incident_triage", {"alert_id": "A7"}))
        assert "starting from alert A7" in triage and '"host":"shop-1"' in triage and "get_service(name=" in triage
        assert "**90d**" in text(await client.get_prompt("capacity_report", {"horizon": "90d"}))
        assert '"headline"' in text(await client.get_prompt("daily_health_summary", {}))
        spike = await client.get_prompt("explain_spike", {"metric": "memory_used_bytes", "when": "5m"})
        assert "memory_used_bytes" in text(spike)
        with pytest.raises(MCPError):
            await client.get_prompt("explain_spike", {"metric": "no_such_metric"})


async def test_resources_give_status_redacted_config_and_metrics(agent: Agent) -> None:
    async with Client(build_mcp_server(Monitor(agent), read_only=False)) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert uris == {"crucible://status", "crucible://config"}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"crucible://metrics/{name}"}
        config = text(await client.read_resource("crucible://config"))
        assert SECRET not in config and "**********" in config
        assert '"host":"shop-1"' in text(await client.read_resource("crucible://status"))
        metric = text(await client.read_resource("crucible://metrics/memory_used_bytes"))
        assert '"metric":"memory_used_bytes"' in metric


async def test_alerts_can_be_listed_acknowledged_and_silenced_over_mcp(agent: Agent) -> None:
    await agent.evaluate_alerts()
    async with Client(build_mcp_server(Monitor(agent), read_only=False)) as client:
        summary = (await client.call_tool("get_system_status", {})).structured_content
        assert summary is not None and summary["status"] == "critical" and summary["alerts"]["firing"] == 1
        # the host's own disks or load may add findings of their own; the alert must be among the critical ones
        critical = [f["subject"] for f in summary["findings"] if f["severity"] == "critical"]
        assert "alert:AlwaysFiring" in critical
        listed = (await client.call_tool("list_alerts", {"state": "firing"})).structured_content
        assert listed is not None
        [alert] = listed["alerts"]
        acked = await client.call_tool("acknowledge_alert", {"alert_id": alert["id"], "note": "on it", "expires": "1h"})
        assert acked.structured_content is not None
        assert acked.structured_content["acknowledgement"]["by"].startswith("mcp-memory")
        bad = await client.call_tool("list_alerts", {"state": "burning"})
        assert bad.is_error and "firing" in text(bad)
        silenced = await client.call_tool(
            "silence_alerts", {"matchers": ["alertname=AlwaysFiring"], "duration": "2h", "reason": "deploying"}
        )
        assert silenced.structured_content is not None
        silence_id = silenced.structured_content["id"]
        listed_silences = (await client.call_tool("list_silences", {})).structured_content
        assert listed_silences is not None and [x["id"] for x in listed_silences["silences"]] == [silence_id]
        nothing = await client.call_tool("silence_alerts", {"matchers": ["x=~.*"], "duration": "2h", "reason": "r"})
        assert nothing.is_error and "matcher" in text(nothing)
        await client.call_tool("delete_silence", {"silence_id": silence_id})
        detail = (await client.call_tool("get_alert", {"alert_id": alert["id"]})).structured_content
        assert detail is not None and [t["kind"] for t in detail["history"]][-1] == "acknowledged"
        history = (await client.call_tool("alert_history", {"since": "1h"})).structured_content
        assert history is not None and {t["kind"] for t in history["transitions"]} >= {"firing", "acknowledged"}


async def test_application_tools_answer_from_real_log_files(agent: Agent, tmp_path: Path) -> None:
    await agent.run_collector("access_logs")  # the tailer starts at the end of the log
    _append_requests(tmp_path / "access.log")
    await agent.run_collector("access_logs")
    async with Client(build_mcp_server(Monitor(agent), read_only=False)) as client:
        top = await client.call_tool("top_endpoints", {"by": "errors"})
        assert not top.is_error and top.structured_content is not None
        assert "/checkout" in json.dumps(top.structured_content)
        errors = await client.call_tool("recent_errors", {"app": "shop", "since": "2026-11-27T00:00:00Z"})
        assert not errors.is_error and errors.structured_content is not None
        assert "PaymentFailed" in json.dumps(errors.structured_content)
        unknown = await client.call_tool("recent_errors", {"app": "blog"})
        assert unknown.is_error and "apps: shop" in text(unknown)
        no_mysql = await client.call_tool("slow_queries", {})
        assert no_mysql.is_error and "collectors.mysql.enabled" in text(no_mysql)
