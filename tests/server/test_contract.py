"""The contract over every operation of the table: ``Monitor`` in-process and ``RemoteMonitor`` over HTTP agree.

(a) The same Monitor, with a manual clock, called directly and through ``httpx.ASGITransport`` into the app built
around it: equal results (compared as JSON dumps) or the same error type for the same bad input.
(b) A real ``crucible-monitor serve`` on loopback: every case's result validates against the declared type, and
errors map to the same types.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_process import ServedAgent
from helpers import ALWAYS_FIRING_RULES
from manual_clock import Clock
from pydantic import TypeAdapter

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.errors import (
    ActionRefused,
    ConfigError,
    CrucibleError,
    MetricsRejected,
    NotFoundError,
    PushLimit,
    QueryError,
)
from crucible_monitor.monitor import Monitor
from crucible_monitor.operation_table import OPERATIONS
from crucible_monitor.operations import Operations
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.server.app import build_app

pytestmark = pytest.mark.anyio

TOKEN = "contract-token-0123456789"
DAY = 86400.0
FIXTURES = Path(__file__).parent.parent / "fixtures" / "apps"


@dataclass(frozen=True)
class Case:
    """One call: arguments, the error it must raise (if any), whether the in-process result is compared, and the
    fields left out of the comparison (ids a changing operation draws anew)."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: type[CrucibleError] | None = None
    compare: bool = True
    exclude: frozenset[str] = frozenset()


_ACK = frozenset({"acknowledgement"})


def cases(now: float, alert_id: int) -> dict[str, list[Case]]:
    """The contract cases of every operation, by name; ``now`` is the manual clock, ``alert_id`` a firing alert."""
    hour_ago = {"start": now - 3600, "end": now}
    return {
        "health": [Case()],
        "collectors": [Case()],
        "system_status": [Case()],
        "status_summary": [Case()],
        "services": [Case(), Case(("down",), {"category": "database"})],
        "get_service": [Case(("no-such-service",), error=NotFoundError)],
        "restart_service": [
            Case(
                ("no-such-service",),
                {"reason": "contract", "actor": "tester", "confirmed": True, "dry_run": True},
                error=ActionRefused,
            )
        ],
        "tail_logs": [
            Case(("app",), {"lines": 5, "contains": "ERROR"}),
            Case(("laravel:shop",), {"lines": 3}),  # the app's logs glob, without a logs.files entry
            Case(("nowhere",), error=NotFoundError),
        ],
        "audit": [Case(kwargs={"since": now - DAY})],
        "http_checks": [Case()],
        "list_metrics": [Case()],
        "push_metrics": [
            Case(('# TYPE contract_jobs gauge\ncontract_jobs{queue="mail"} 3\n',)),
            Case(
                ('[{"name": "contract_depth_total", "value": 2, "type": "counter"}]',),
                {"content_type": "application/json"},
            ),
            Case(("memory_used_bytes 1\n",), error=MetricsRejected),  # one of the agent's own
            Case(("".join(f'contract_many{{n="{i}"}} 1\n' for i in range(1001)),), error=PushLimit),
        ],
        "history": [
            Case(("memory_used_bytes",), {**hour_ago, "step": 60.0}),
            Case(("filesystem_used_ratio",), {**hour_ago, "agg": "max", "labels": {"mountpoint": "/"}}),
            Case(("memory_totl_bytes",), hour_ago, error=QueryError),
            Case(("memory_used_bytes",), {"start": now, "end": now - 3600}, error=QueryError),
        ],
        "metrics_report": [
            Case(("memory",), {**hour_ago, "max_points": 5, "max_series": 2}),
            Case(("memroy",), hour_ago, error=QueryError),
            Case(("memory",), {**hour_ago, "max_points": 100_000}, error=QueryError, compare=False),
        ],
        "events": [
            Case(kwargs={"since": now - DAY, "kinds": ["alert", "agent"], "limit": 10}),
            Case(kwargs={"kinds": ["bogus"]}, error=QueryError),
        ],
        "list_alerts": [
            Case(kwargs={"state": "all", "severity": "warning"}),
            Case(kwargs={"severity": "catastrophic"}, error=QueryError),
            Case(kwargs={"limit": 5000}, error=QueryError, compare=False),  # 4xx over HTTP, never 500
        ],
        "get_alert": [Case((alert_id,)), Case((999_999,), error=NotFoundError)],
        "acknowledge_alert": [
            # over HTTP "by" is the token's name, then the caller's claim ("default (tester)"): not compared
            Case((alert_id,), {"by": "tester", "note": "on", "expires": timedelta(days=30)}, exclude=_ACK),
            Case((alert_id,), exclude=_ACK),  # no body: by is the token's name
            Case((999_999,), {"by": "tester"}, error=NotFoundError),
        ],
        "silence_alerts": [
            Case(
                (["alertname=MemoryPresent"],),
                {"duration": timedelta(days=30), "reason": "contract", "author": "tester", "starts_at": now},
                exclude=frozenset({"id", "author"}),  # the author over HTTP: "default (tester)"
            ),
            Case((["alertname~~x"],), {"duration": timedelta(hours=1), "reason": "r", "author": "a"}, error=QueryError),
        ],
        "list_silences": [Case(kwargs={"include_expired": True})],
        "delete_silence": [Case(("no-such-silence",), {"by": "tester"}, error=NotFoundError)],
        "alert_history": [Case(kwargs={"since": now - DAY, "limit": 50}), Case(kwargs={"limit": 50})],
        "list_anomalies": [Case(kwargs={"since": now - 7 * DAY, "min_score": 0.5}), Case()],
        "explain_anomaly": [  # a fresh agent has no host model yet: a window is compared with the one before it
            Case(kwargs=hour_ago),
            Case(kwargs={"start": now, "end": now - 3600}, error=QueryError),
            Case((999_999,), error=NotFoundError),
        ],
        "forecast_capacity": [
            Case(("memory",), {"horizon": 30 * DAY}),
            Case(("filesystem:/",), {"horizon": 90 * DAY}),
            Case(("no-such-resource",), error=QueryError),
        ],
        "capacity_report": [Case(kwargs={"horizon": 30 * DAY}), Case()],
        "get_recommendations": [Case()],
        "anomaly_rate": [Case(kwargs={"since": now - DAY, "until": now, "bucket": 3600.0})],
        "slow_queries": [Case(kwargs={"since": now - 3600}, error=NotFoundError)],
        "recent_errors": [
            Case(("shop",), {"since": now - 3650 * DAY, "limit": 5}),
            Case(("blog",), {"since": now - 3600}, error=NotFoundError),
        ],
        "top_endpoints": [Case(kwargs={"by": "errors", "limit": 5}), Case(("no-such-host",), error=NotFoundError)],
        "get_config": [Case()],
        "update_config": [Case(({},)), Case(({"agent": {"collect_interval": "soon"}},), error=ConfigError)],
    }


@dataclass
class Pair:
    """One Monitor, and a RemoteMonitor into the app built around it."""

    monitor: Monitor
    remote: RemoteMonitor
    clock: Clock
    alert_id: int


def _config(tmp_path: Path) -> Config:
    (tmp_path / "alerts.yaml").write_text(ALWAYS_FIRING_RULES, encoding="utf-8")
    shop = tmp_path / "shop"
    (shop / "storage" / "logs").mkdir(parents=True)
    (shop / "storage" / "logs" / "laravel.log").write_bytes((FIXTURES / "laravel" / "laravel.log").read_bytes())
    app_log = tmp_path / "app.log"
    app_log.write_text("one\nERROR two\nthree\nERROR four\n", encoding="utf-8")
    (tmp_path / "access.log").touch()
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "api_token": TOKEN, "hostname": "contract-host"},
            "storage": {"fsync": False},
            "collectors": {
                "services": {"systemd": {"enabled": False}, "supervisor": {"enabled": False}},
                "laravel": {"apps": [{"name": "shop", "path": str(shop), "queue_driver": "none"}]},
                "access_logs": {"files": [{"path": str(tmp_path / "access.log"), "format": "caddy"}]},
            },
            "logs": {"files": {"app": str(app_log)}},
            "alerts": {"rules_file": str(tmp_path / "alerts.yaml"), "cpu_threshold": None, "memory_threshold": None},
        }
    )


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    clock = Clock(float(int(time.time())))
    agent = Agent(_config(tmp_path), clock=clock)
    await agent.start(schedule=False)
    for _ in range(3):
        await agent.run_collector("system")
        clock.advance(10)
    await agent.run_collector("processes")
    await agent.evaluate_alerts()
    monitor = Monitor(agent)
    [alert] = await monitor.list_alerts(state="firing")
    transport = httpx.ASGITransport(build_app(agent, TOKEN, manage_agent=False))
    async with RemoteMonitor("http://agent", TOKEN, transport=transport) as remote:
        yield Pair(monitor, remote, clock, alert.id)
    await agent.stop()


def test_every_operation_has_contract_cases_and_every_protocol_member_is_in_the_table() -> None:
    assert set(cases(0.0, 1)) == set(OPERATIONS)
    protocol = {name for name in vars(Operations) if not name.startswith("_")}
    assert protocol <= set(OPERATIONS), protocol - set(OPERATIONS)
    assert all(hasattr(Monitor, name) for name in OPERATIONS)


async def _outcome(call: Callable[..., Any], case: Case, result_type: Any) -> tuple[str, Any]:
    """``("ok", the JSON dump less the excluded fields)`` or ``("error", the error type)``."""
    try:
        result = await call(*case.args, **case.kwargs)
    except CrucibleError as exc:
        return "error", type(exc)
    dumped = TypeAdapter(result_type).dump_python(result, mode="json")
    if isinstance(dumped, dict):
        dumped = {k: v for k, v in dumped.items() if k not in case.exclude}
    return "ok", json.loads(json.dumps(dumped))


async def test_acknowledge_takes_an_empty_body(pair: Pair) -> None:
    """A dashboard's "ack" key posts nothing at all (not even ``{}``): the caller is recorded by its token's name."""
    transport = httpx.ASGITransport(build_app(pair.monitor.agent, TOKEN, manage_agent=False))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://agent", headers=headers) as client:
        response = await client.post(f"/api/v1/alerts/{pair.alert_id}/acknowledge")
        assert response.status_code == 200, response.text
        assert response.json()["acknowledgement"]["by"] == "default"
        named = await client.post(f"/api/v1/alerts/{pair.alert_id}/acknowledge", json={"by": "ops", "note": "on it"})
        assert named.json()["acknowledgement"]["by"] == "default (ops)"  # the token's name, then the claim
        empty_name = await client.post(f"/api/v1/alerts/{pair.alert_id}/acknowledge", json={"by": ""})
        assert empty_name.status_code == 422
        missing = await client.post("/api/v1/alerts/999999/acknowledge")
        assert missing.status_code == 404


def test_the_table_and_the_protocol_take_the_monitors_arguments_in_its_order() -> None:
    """RemoteMonitor maps positional arguments by the table's order and mypy cannot check its methods (they come from
    the table): so every operation's arguments must be the Monitor method's, positional ones first and in order, and
    the protocol must declare the Monitor's signature."""
    for name, operation in OPERATIONS.items():
        local = inspect.signature(getattr(Monitor, name)).parameters
        positional = [p for p in local if p != "self" and local[p].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        arguments = operation.arguments()
        assert set(arguments) <= set(local), (name, set(arguments) - set(local))
        assert arguments[: len(positional)] == positional, (name, arguments, positional)
        if hasattr(Operations, name):  # the protocol may leave out the Monitor's own extras (health's detailed)
            declared = inspect.signature(getattr(Operations, name)).parameters
            required = [p for p in local if local[p].default is inspect.Parameter.empty]
            assert set(required) <= set(declared), (name, set(required) - set(declared))
            for param in declared.values():
                assert (param.kind, param.default) == (local[param.name].kind, local[param.name].default), (name, param)


def test_an_argument_left_out_means_the_same_in_process_and_over_http() -> None:
    """RemoteMonitor leaves out an argument the caller left as None; the route's default must then be None too, or a
    remote call would answer for another window than the same call in-process (alert_history once took 1d)."""
    drifting = []
    for operation in OPERATIONS.values():
        signature = inspect.signature(getattr(Monitor, operation.name))
        for route in operation.routes:
            for param in route.params:
                local = signature.parameters.get(param.name)
                if local is None or param.fills is not None or param.required:
                    continue
                if local.default is None and param.default is not None:
                    drifting.append(f"{operation.name}.{param.name}: route default {param.default!r}, Monitor None")
    assert drifting == []


async def test_monitor_and_remote_monitor_agree_on_every_case(pair: Pair) -> None:
    for name, operation_cases in cases(pair.clock(), pair.alert_id).items():
        result_type = OPERATIONS[name].result
        for case in operation_cases:
            remote = await _outcome(getattr(pair.remote, name), case, result_type)
            if case.error is not None:
                assert remote == ("error", case.error), (name, case, remote)
            else:
                assert remote[0] == "ok", (name, case, remote)
            if not case.compare:
                continue
            local = await _outcome(getattr(pair.monitor, name), case, result_type)
            assert local == remote, (name, case)


async def test_a_real_agent_answers_every_case_with_valid_results_or_declared_errors(served: ServedAgent) -> None:
    now = time.time()
    async with RemoteMonitor(served.base_url, served.token()) as remote:
        for name, operation_cases in cases(now, 1).items():
            declared = (*OPERATIONS[name].errors, NotFoundError)  # ids and apps of the contract agent are absent here
            for case in operation_cases:
                kind, value = await _outcome(getattr(remote, name), case, OPERATIONS[name].result)
                if case.error is not None:
                    assert (kind, value) == ("error", case.error), (name, case)
                elif kind == "error":
                    assert issubclass(value, declared), (name, case, value)
