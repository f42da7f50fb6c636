"""Token budgets, measured as the model reads them: characters of ``tools/list`` and of tool results through the
real MCP client in memory (both protocol eras), against real agents: a healthy one (real /proc, nothing failing)
and the scripted incident of tests/token_scene.py (a real supervisord, real HTTP checks on loopback, a firing
alert, real-format application logs)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import Tool
from mcp_agent import agent_config, running_agent, text
from token_scene import CALLS, FLAPS, Scene, scene_fleet, token_scene

from crucible_monitor.agent import Agent
from crucible_monitor.models import EventKind, iso
from crucible_monitor.monitor import Monitor
from crucible_monitor.server.compact import compact_json, lean_input_schema, lean_output_schema, without_nulls
from crucible_monitor.server.mcp import build_mcp_server

pytestmark = pytest.mark.anyio

TOOLS_LIST_BUDGET = 20_000
HEALTHY_STATUS_BUDGET = 3_000
INCIDENT_STATUS_BUDGET = 6_000
RESULT_BUDGET = 15_000
"""No tool result of the scene may be larger (Claude Code cuts a result at 25,000 tokens)."""
EXPECTED_ERRORS = {
    "slow_queries": "collectors.mysql.enabled",  # MySQL is not watched in the scene
    "explain_anomaly": "no model fitted yet",  # until a window is explained without a model (issue 10, item 3)
}


def tools_list_chars(tools: list[Tool]) -> int:
    """The characters of a tools/list result's tools as compact JSON."""
    return len(compact_json([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]))


@pytest.fixture
async def healthy(tmp_path: Path) -> AsyncIterator[Agent]:
    async with running_agent(agent_config(tmp_path)) as running:
        yield running


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    async with token_scene(tmp_path) as running:
        yield running


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("read_only", [False, True])
async def test_tools_list_fits_its_budget_and_keeps_argument_descriptions(
    healthy: Agent, mode: str, read_only: bool
) -> None:
    async with Client(build_mcp_server(Monitor(healthy), read_only=read_only), mode=mode) as client:
        tools = (await client.list_tools()).tools
    assert tools_list_chars(tools) <= TOOLS_LIST_BUDGET
    by_name = {t.name: t for t in tools}
    assert ("restart_service" in by_name) is not read_only
    metrics = by_name["get_metrics"]
    assert "group prefix" in metrics.input_schema["properties"]["metric"]["description"]
    assert metrics.input_schema["required"] == ["metric"]
    # the output schema names the fields the structured content has; no titles anywhere
    assert metrics.output_schema is not None and set(metrics.output_schema["properties"]) == {"reports", "hint"}
    assert '"title"' not in compact_json([t.input_schema for t in tools])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_healthy_status_fits_3000_characters_as_compact_json(healthy: Agent, mode: str) -> None:
    async with Client(build_mcp_server(Monitor(healthy), read_only=True), mode=mode) as client:
        result = await client.call_tool("get_system_status", {})
    body = text(result)
    assert result.structured_content is not None and json.loads(body) == without_nulls(result.structured_content)
    assert "\n" not in body and ", " not in body.split('"headline"')[0]
    summary = result.structured_content
    # the test causes no finding; what this machine's own state adds (a full disk, a load) is not the budget's
    own = len(compact_json(summary["findings"])) - len("[]")
    assert len(body) - own <= HEALTHY_STATUS_BUDGET
    for process in summary["top_by_cpu"] + summary["top_by_memory"]:
        assert len(process["cmdline"]) <= 60
    assert len(summary["top_by_cpu"]) <= 3 and len(summary["top_by_memory"]) <= 3


async def test_every_tool_result_of_the_incident_is_compact_and_within_budget(scene: Scene) -> None:
    fleet = scene_fleet()
    async with Client(build_mcp_server(Monitor(scene.agent), read_only=False, fleet=fleet)) as client:
        sizes: dict[str, int] = {}
        for name, arguments in CALLS:
            result = await client.call_tool(name, arguments)
            body = text(result)
            sizes[f"{name}({compact_json(arguments)})"] = len(body)
            if result.is_error and name in EXPECTED_ERRORS:
                assert EXPECTED_ERRORS[name] in body, body
                continue
            assert not result.is_error, (name, body)
            assert json.loads(body) == without_nulls(result.structured_content) and "\n" not in body, name
    await fleet.aclose()
    assert max(sizes.values()) <= RESULT_BUDGET, sizes
    assert sizes["get_system_status({})"] <= INCIDENT_STATUS_BUDGET


@pytest.mark.parametrize("read_only", [False, True])
async def test_tools_list_with_a_fleet_fits_the_same_budget(healthy: Agent, read_only: bool) -> None:
    fleet = scene_fleet()
    async with Client(build_mcp_server(Monitor(healthy), read_only=read_only, fleet=fleet)) as client:
        tools = (await client.list_tools()).tools
    await fleet.aclose()
    assert tools_list_chars(tools) <= TOOLS_LIST_BUDGET
    assert {"list_hosts", "get_fleet_status"} <= {t.name for t in tools}
    assert all("host" in t.input_schema["properties"] for t in tools if not t.name.endswith(("_hosts", "_status")))


async def test_get_metrics_summarises_a_group_per_series_unless_points_are_asked_for(scene: Scene) -> None:
    async with Client(build_mcp_server(Monitor(scene.agent), read_only=True)) as client:
        summary = await client.call_tool("get_metrics", {"metric": "http"})
        points = await client.call_tool("get_metrics", {"metric": "http", "points": True})
        top = await _structured(client, "get_metrics", {"metric": "http_check_up", "max_series": 1})
    assert summary.structured_content is not None and points.structured_content is not None
    reports = summary.structured_content["reports"]
    up = {tuple(s["labels"].values()): s for r in reports if r["metric"] == "http_check_up" for s in r["series"]}
    assert set(up) == {("homepage",), ("checkout",), ("api",)}
    for series in (s for r in reports for s in r["series"]):
        assert series["points"] == [] and series["sparkline"] and set(series["sparkline"]) <= set("▁▂▃▄▅▆▇█")
        assert {"min", "max", "avg", "p95", "last"} <= set(series["stats"]) and series["human"]["last"]
    assert "points=true" in summary.structured_content["hint"]
    assert all(r["series"] for r in reports)  # metrics without data are named in the hint, not listed
    with_points = [s for r in points.structured_content["reports"] for s in r["series"]]
    assert with_points and all(s["points"] and s["sparkline"] is None for s in with_points)
    assert len(text(summary)) < len(text(points))
    [report] = top["reports"]
    assert (len(report["series"]), report["series_total"], report["series_limit"], report["truncated"]) == (
        1,
        3,
        1,
        True,
    )


async def test_events_group_repeats_and_lists_say_limit_total_and_truncated(scene: Scene) -> None:
    async with Client(build_mcp_server(Monitor(scene.agent), read_only=True)) as client:
        events = await _structured(client, "get_events", {"subject": "checkout", "kinds": ["check_failed"]})
        one = await _structured(client, "get_events", {"limit": 1})
        alerts = await _structured(client, "list_alerts", {})
        first = await _structured(client, "list_alerts", {"limit": 1})
        errors = await _structured(client, "recent_errors", {"app": "shop", "since": "2026-11-27T00:00:00Z"})
        rate = await _structured(client, "anomaly_rate", {"since": "7d", "bucket": "1h"})
    [flapped] = events["events"]
    assert (flapped["count"], events["total"], events["truncated"]) == (FLAPS, FLAPS, False)
    stored = scene.agent.running.state.events(kinds=[EventKind.CHECK_FAILED], subject="checkout")
    assert (flapped["id"], flapped["first_seen"]) == (stored[0].id, iso(stored[-1].event.ts))
    assert (one["limit"], len(one["events"]), one["truncated"]) == (1, 1, True) and one["total"] > 1
    # every active alert of the scene (the always-firing rule among them)
    assert (alerts["total"], alerts["truncated"]) == (len(alerts["alerts"]), False) and alerts["total"] >= 2
    assert (first["limit"], first["total"], first["truncated"]) == (1, alerts["total"], True)
    assert errors["limit"] == 50 and errors["total"] == len(errors["errors"]) and not errors["truncated"]
    # no model has been fitted: no anomaly, and no empty bucket listed, only counted
    assert rate["buckets"] == [] and rate["empty_buckets"] == rate["buckets_total"] >= 168


async def _structured(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error and result.structured_content is not None, text(result)
    return result.structured_content


def test_lean_schemas_keep_a_property_named_title_and_read_optional_arguments_as_their_type() -> None:
    schema = {
        "title": "Arguments",
        "type": "object",
        "properties": {
            "title": {"title": "Title", "type": "string", "description": "A property called title."},
            "since": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "description": "From."},
            "step": {
                "anyOf": [
                    {"anyOf": [{"type": "string"}, {"type": "number"}], "description": "a duration"},
                    {"type": "null"},
                ],
                "default": None,
                "description": "Bucket width.",
            },
        },
        "required": ["title"],
    }
    assert lean_input_schema(schema) == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "A property called title."},
            "since": {"type": "string", "description": "From."},
            "step": {"anyOf": [{"type": "string"}, {"type": "number"}], "description": "Bucket width."},
        },
        "required": ["title"],
    }
    output = {"type": "object", "$defs": {"X": {}}, "properties": {"a": {"$ref": "#/$defs/X"}, "b": {"type": "string"}}}
    assert lean_output_schema(output) == {"type": "object", "properties": {"a": {}, "b": {}}}


async def test_the_metric_catalogue_names_each_metric_and_describes_it_when_asked_or_searched(healthy: Agent) -> None:
    async with Client(build_mcp_server(Monitor(healthy), read_only=True)) as client:
        names = await _structured(client, "list_metrics", {})
        described = await _structured(client, "list_metrics", {"descriptions": True, "limit": 5})
        searched = await _structured(client, "list_metrics", {"search": "memory_used"})
    assert names["total"] == len(names["metrics"]) and not names["truncated"]
    assert all(set(m) == {"name", "kind", "unit", "labels"} for m in names["metrics"])
    assert (described["total"], described["limit"], described["truncated"]) == (names["total"], 5, True)
    assert all(m["description"] and m["collector"] for m in described["metrics"] + searched["metrics"])
    assert {"memory_used_bytes", "memory_used_ratio"} <= {m["name"] for m in searched["metrics"]}
