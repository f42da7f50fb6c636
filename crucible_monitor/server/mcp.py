"""The MCP server: tools, prompts and resources over any :class:`~crucible_monitor.operations.Operations`.

Built by :func:`build_mcp_server` around a local Monitor (the agent's ``/mcp``, or an embedded agent for stdio) or a
RemoteMonitor (``crucible-monitor mcp`` next to a running agent). Read tools carry ``read_only_hint``; the one
destructive tool, ``restart_service``, asks the user through elicitation where the client supports it and
otherwise needs ``confirm=true`` (hosts such as Claude Code and Crush ask the user before a destructive tool runs;
clients without elicitation, such as the Inspector CLI, can still act, but only explicitly). With
``actions.read_only`` it is not listed at all.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Annotated, Any, Literal, TypeVar, get_args

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import AnyHttpUrl, BaseModel, Field

from crucible_monitor import __version__
from crucible_monitor.analysis.results import (
    AnomalyRate,
    AnomalyView,
    CapacityReport,
    Explanation,
    Forecast,
    Recommendation,
)
from crucible_monitor.config import parse_duration
from crucible_monitor.errors import CrucibleError
from crucible_monitor.models import EventKind, iso
from crucible_monitor.monitor import metric_group
from crucible_monitor.operations import Operations
from crucible_monitor.schemas import (
    AlertDetail,
    AlertFilter,
    AlertView,
    AuditView,
    CheckResult,
    EventView,
    LogTail,
    MetricInfo,
    MetricsReport,
    Quantity,
    RecentErrors,
    RestartResult,
    ServiceDetail,
    ServiceStatus,
    SilenceView,
    SlowQueries,
    StatusSummary,
    TopEndpoints,
    TransitionView,
)
from crucible_monitor.timeparse import parse_time
from crucible_monitor.units import human

__all__ = ["McpAuth", "build_mcp_server"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
_TIME_HELP = "now, a duration ago (30m, 6h, 7d), ISO 8601 (2026-11-28T10:00:00Z) or Unix seconds"
Category = Literal["web", "database", "cache", "php", "queue", "other"]
Agg = Literal["avg", "min", "max", "last", "p95", "count", "rate"]
EventKindName = Literal[
    "service_state",
    "service_restart",
    "check_failed",
    "check_recovered",
    "collector_error",
    "alert",
    "anomaly",
    "agent",
    "config",
    "action",
]
assert set(get_args(EventKindName)) == {k.value for k in EventKind}, "EventKindName must list every EventKind"


@dataclass(frozen=True)
class McpAuth:
    """Bearer-token auth for MCP over HTTP: the agent's API token, checked by a TokenVerifier."""

    token: str
    base_url: str


class _StaticTokenVerifier(TokenVerifier):
    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        if secrets.compare_digest(token.encode(), self._token.encode()):
            return AccessToken(token=token, client_id="api-token", scopes=["crucible"])
        return None


# -- result models (what the model reads: ISO times, units and human forms) ---------------------------------------


class ServiceView(BaseModel):
    """A service as the model reads it."""

    name: str
    manager: str
    category: str
    up: bool
    state: str
    sub_state: str | None
    since: str | None = Field(description="ISO 8601: when it entered this state")
    restarts: int
    memory: Quantity | None
    pid: int | None
    description: str | None


class ServiceDetailView(BaseModel):
    """One service, its recent events and its last log lines."""

    service: ServiceView
    recent_events: list[EventView]
    log: LogTail | None
    log_error: str | None
    hint: str


class ServiceList(BaseModel):
    """Watched services, down first."""

    services: list[ServiceView]
    hint: str


class CheckView(BaseModel):
    """An HTTP check as the model reads it."""

    name: str
    url: str
    ok: bool
    failure: str | None
    error: str | None
    status_code: int | None
    latency: Quantity | None
    checked_at: str
    consecutive_failures: int
    certificate_expires: str | None
    certificate_days_left: float | None
    certificate_issuer: str | None


class CheckList(BaseModel):
    """HTTP checks, failing first."""

    checks: list[CheckView]
    hint: str


class MetricCatalogue(BaseModel):
    """Metrics that can be asked for, and the groups (prefixes) get_metrics accepts."""

    metrics: list[MetricInfo]
    groups: list[str]


class EventList(BaseModel):
    """Events, newest first."""

    events: list[EventView]


class AlertList(BaseModel):
    """Alerts, newest first."""

    alerts: list[AlertView]
    hint: str


class TransitionList(BaseModel):
    """Alert transitions, newest first."""

    transitions: list[TransitionView]


class SilenceList(BaseModel):
    """Silences and maintenance windows."""

    silences: list[SilenceView]


class AnomalyList(BaseModel):
    """Anomalies, newest first."""

    anomalies: list[AnomalyView]
    hint: str


class RecommendationList(BaseModel):
    """Recommendations, most severe first."""

    recommendations: list[Recommendation]


class AuditList(BaseModel):
    """Actions attempted on the host, newest first."""

    records: list[AuditView]


class Confirm(BaseModel):
    """The user's answer to a restart question."""

    ok: bool = Field(description="Restart it now?")


def _service_view(s: ServiceStatus) -> ServiceView:
    return ServiceView(
        name=s.name,
        manager=s.manager,
        category=s.category,
        up=s.up,
        state=s.state,
        sub_state=s.sub_state,
        since=iso(s.since) if s.since else None,
        restarts=s.restarts,
        memory=Quantity(value=s.memory_bytes, unit="bytes", human=human(s.memory_bytes, "bytes"))
        if s.memory_bytes is not None
        else None,
        pid=s.pid,
        description=s.description,
    )


def _check_view(c: CheckResult) -> CheckView:
    return CheckView(
        name=c.name,
        url=c.url,
        ok=c.ok,
        failure=c.failure,
        error=c.error,
        status_code=c.status_code,
        latency=Quantity(value=c.duration_seconds, unit="seconds", human=human(c.duration_seconds, "seconds"))
        if c.duration_seconds is not None
        else None,
        checked_at=iso(c.checked_at),
        consecutive_failures=c.consecutive_failures,
        certificate_expires=iso(c.tls_expires_at) if c.tls_expires_at else None,
        certificate_days_left=round(c.tls_days_left, 2) if c.tls_days_left is not None else None,
        certificate_issuer=c.tls_issuer,
    )


def _ask_confirmation(
    service: str, reason: str, confirm: bool, dry_run: bool, ctx: Context[Any, Any]
) -> Confirm | Elicit[Confirm]:
    """Ask the user through elicitation; where the client cannot be asked, the explicit ``confirm`` decides."""
    if dry_run:
        return Confirm(ok=True)  # nothing happens: no question
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return Confirm(ok=confirm)
    return Elicit(f"Restart {service} on this server? Reason given: {reason}", Confirm)


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Our errors become ToolErrors: the model reads the message (which lists the valid choices) and retries."""
    try:
        yield
    except CrucibleError as exc:
        raise ToolError(str(exc)) from None


async def _guarded(call: Awaitable[_T]) -> _T:
    with _tool_errors():
        return await call


def _time(text: str, name: str) -> float:
    try:
        return parse_time(text, time.time())
    except ValueError:
        raise ToolError(f"invalid {name} {text!r}: use {_TIME_HELP}") from None


def _seconds(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text).total_seconds()
    except ValueError:
        raise ToolError(f"invalid {name} {text!r}: use a duration such as 10s, 5m, 1h, 1d") from None


def _duration(text: str | None, name: str) -> timedelta | None:
    seconds = _seconds(text, name)
    return None if seconds is None else timedelta(seconds=seconds)


def _actor(ctx: Context[Any, Any], transport: str) -> str:
    """Who is asking, for the audit record: the token's client (HTTP) or stdio, and the MCP client's name."""
    token = get_access_token()
    who = f"mcp-http:{token.client_id}" if token is not None else f"mcp-{transport}"
    params = ctx.session.client_params
    if params is not None:
        who += f" ({params.client_info.name} {params.client_info.version})"
    return who


def _prompt(name: str, **values: object) -> str:
    """A prompt template from ``crucible_monitor/prompts/`` with ``$names`` filled in (JSON for data)."""
    text = resources.files("crucible_monitor.prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
    filled = {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), default=str) for k, v in values.items()
    }
    return string.Template(text).substitute(filled)


def build_mcp_server(
    ops: Operations,
    *,
    read_only: bool,
    transport: Literal["http", "stdio", "memory"] = "memory",
    auth: McpAuth | None = None,
) -> MCPServer:
    """An MCP server over ``ops``; with ``auth`` it requires the bearer token (for HTTP)."""
    auth_kwargs: dict[str, Any] = {}
    if auth is not None:
        auth_kwargs = {
            "token_verifier": _StaticTokenVerifier(auth.token),
            "auth": AuthSettings(
                issuer_url=AnyHttpUrl(auth.base_url),
                resource_server_url=AnyHttpUrl(f"{auth.base_url}/mcp"),
                required_scopes=["crucible"],
            ),
        }
    mcp = MCPServer(
        "crucible-monitor",
        version=__version__,
        instructions=(
            "Monitoring of one Linux web server (CPU, memory, disks, services, HTTP checks, events). Start with "
            "get_system_status; drill down with get_service, get_metrics, tail_logs and get_events. Times are ISO "
            "8601 with zone; values come with units and a human form."
        ),
        log_level="WARNING",
        **auth_kwargs,
    )

    @mcp.tool(annotations=_READ)
    async def get_system_status() -> StatusSummary:
        """One-call health summary: what is wrong (most urgent first, since when, how bad), vital signs, top
        processes, and what to call next."""
        return await _guarded(ops.status_summary())

    @mcp.tool(annotations=_READ)
    async def list_metrics(
        search: Annotated[
            str | None, Field(description="Only metrics whose name or description contains this.")
        ] = None,
    ) -> MetricCatalogue:
        """The metric catalogue: name, kind (gauge or counter), unit, labels, description; and the metric groups."""
        metrics = await _guarded(ops.list_metrics())
        if search:
            needle = search.lower()
            metrics = [m for m in metrics if needle in m.name or needle in m.description.lower()]
        return MetricCatalogue(metrics=metrics, groups=sorted({m.name.split("_")[0] for m in metrics}))

    @mcp.tool(annotations=_READ)
    async def get_metrics(
        ctx: Context[Any, Any],
        metric: Annotated[str, Field(description="A metric name (cpu_usage_ratio) or a group prefix (cpu, memory).")],
        labels: Annotated[
            dict[str, str] | None, Field(description='Exact label filter, e.g. {"mountpoint": "/var"}.')
        ] = None,
        since: Annotated[str, Field(description=f"Start: {_TIME_HELP}.")] = "1h",
        until: Annotated[str, Field(description=f"End: {_TIME_HELP}.")] = "now",
        step: Annotated[str | None, Field(description="Bucket width (1m, 1h); default fits max_points.")] = None,
        agg: Annotated[
            Agg | None, Field(description="Default: rate for counters (per second), avg for gauges.")
        ] = None,
        max_points: Annotated[int, Field(ge=2, le=500, description="Points per series at most.")] = 60,
        max_series: Annotated[int, Field(ge=1, le=50, description="Series per metric at most (largest first).")] = 10,
    ) -> MetricsReport:
        """History of a metric or a metric group: min, max, avg, p95, last (raw and human) and bounded points."""
        start, end = _time(since, "since"), _time(until, "until")
        catalogue = [m.name for m in await _guarded(ops.list_metrics())]
        with _tool_errors():
            names = metric_group(catalogue, metric)
        reports = []
        for done, name in enumerate(names):
            await ctx.report_progress(done, len(names), f"reading {name}")
            report = await _guarded(
                ops.metrics_report(
                    name,
                    start=start,
                    end=end,
                    step=_seconds(step, "step"),
                    agg=agg,
                    labels=labels,
                    max_points=max_points,
                    max_series=max_series,
                )
            )
            reports.extend(report.reports)
        await ctx.report_progress(len(names), len(names), "done")
        return MetricsReport(reports=reports, hint=report.hint)

    @mcp.tool(annotations=_READ)
    async def list_services(
        state: Annotated[Literal["all", "up", "down"], Field(description="Filter by state.")] = "all",
        category: Annotated[Category | None, Field(description="Filter by category.")] = None,
    ) -> ServiceList:
        """Watched systemd units and supervisor programs: state, since when, restarts, memory."""
        services = sorted(await _guarded(ops.services(state, category)), key=lambda s: (s.up, s.name))
        return ServiceList(
            services=[_service_view(s) for s in services],
            hint="get_service(name=...) for one service's restarts and log",
        )

    @mcp.tool(annotations=_READ)
    async def get_service(
        name: Annotated[str, Field(description="Unit or program name, as list_services shows.")],
    ) -> ServiceDetail:
        """One service: its state, recent state changes and restarts, and the last lines of its log."""
        return await _guarded(ops.get_service(name))

    @mcp.tool(annotations=_READ)
    async def list_http_checks() -> CheckList:
        """HTTP checks: up or failing (and why: dns, connect, tls, timeout, status, keyword), latency, certificate."""
        checks = sorted(await _guarded(ops.http_checks()), key=lambda c: (c.ok, c.name))
        return CheckList(
            checks=[_check_view(c) for c in checks],
            hint="get_metrics(metric='http_check_duration_seconds', labels={'check': ...}) for latency over time",
        )

    @mcp.tool(annotations=_READ)
    async def tail_logs(
        source: Annotated[str, Field(description="A watched service, or a log file named in the config.")],
        lines: Annotated[int, Field(ge=1, le=500)] = 50,
        contains: Annotated[str | None, Field(description="Plain text the lines must contain (not a regex).")] = None,
    ) -> LogTail:
        """The last lines of a service's log (journal or supervisor) or of a configured log file."""
        return await _guarded(ops.tail_logs(source, lines=lines, contains=contains))

    @mcp.tool(annotations=_READ)
    async def get_events(
        since: Annotated[str, Field(description=f"From: {_TIME_HELP}.")] = "1h",
        kinds: Annotated[list[EventKindName] | None, Field(description="Only these kinds.")] = None,
        subject: Annotated[str | None, Field(description="A service, check or collector name.")] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
    ) -> EventList:
        """Service state changes and restarts, check failures and recoveries, collector errors, config changes and
        actions taken, newest first."""
        kind_list: list[str] | None = [str(k) for k in kinds] if kinds else None
        return EventList(
            events=await _guarded(
                ops.events(since=_time(since, "since"), kinds=kind_list, subject=subject, limit=limit)
            )
        )

    @mcp.tool(annotations=_READ)
    async def list_alerts(
        state: Annotated[AlertFilter, Field(description="active = pending or firing.")] = "active",
        severity: Annotated[Literal["info", "warning", "critical"] | None, Field(description="Only this.")] = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> AlertList:
        """Alerts newest first: state, severity, labels, summary, since when, acknowledged or silenced."""
        alerts = await _guarded(ops.list_alerts(state=state, severity=severity, limit=limit))
        return AlertList(alerts=alerts, hint="get_alert(alert_id=...) for the history; acknowledge_alert when on it")

    @mcp.tool(annotations=_READ)
    async def get_alert(alert_id: Annotated[int, Field(ge=1)]) -> AlertDetail:
        """One alert with its history of transitions (pending, firing, acknowledged, resolved...)."""
        return await _guarded(ops.get_alert(alert_id))

    @mcp.tool(annotations=_READ)
    async def alert_history(
        since: Annotated[str, Field(description=f"From: {_TIME_HELP}.")] = "1d",
        limit: Annotated[int, Field(ge=1, le=500)] = 100,
    ) -> TransitionList:
        """Every alert's transitions, newest first."""
        return TransitionList(transitions=await _guarded(ops.alert_history(since=_time(since, "since"), limit=limit)))

    @mcp.tool(annotations=_READ)
    async def list_silences(include_expired: bool = False) -> SilenceList:
        """Silences and maintenance windows, and whether each is in force now."""
        return SilenceList(silences=await _guarded(ops.list_silences(include_expired=include_expired)))

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True))
    async def acknowledge_alert(
        ctx: Context[Any, Any],
        alert_id: Annotated[int, Field(ge=1)],
        note: Annotated[str | None, Field(description="What is being done about it.")] = None,
        expires: Annotated[str | None, Field(description="e.g. 2h; unset: until the alert resolves.")] = None,
    ) -> AlertView:
        """Acknowledge an alert: someone is on it, so it is not notified again until it resolves or expires."""
        return await _guarded(
            ops.acknowledge_alert(alert_id, by=_actor(ctx, transport), note=note, expires=_duration(expires, "expires"))
        )

    @mcp.tool(annotations=_READ)
    async def list_anomalies(
        since: Annotated[str, Field(description=f"From: {_TIME_HELP}.")] = "1d",
        min_score: Annotated[float, Field(ge=0, le=1, description="Only anomalies at least this strong.")] = 0.0,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> AnomalyList:
        """Anomalies the host model found: start, peak, end, score, the series that drove them, a summary."""
        anomalies = await _guarded(ops.list_anomalies(since=_time(since, "since"), min_score=min_score, limit=limit))
        return AnomalyList(anomalies=anomalies, hint="explain_anomaly(anomaly_id=...) says why, with evidence")

    @mcp.tool(annotations=_READ)
    async def explain_anomaly(
        anomaly_id: Annotated[int | None, Field(ge=1, description="An id from list_anomalies.")] = None,
        start: Annotated[str | None, Field(description=f"Or a window: start ({_TIME_HELP}).")] = None,
        end: Annotated[str | None, Field(description="End of the window (default now).")] = None,
    ) -> Explanation:
        """Why an anomaly (or any time window) was unusual: each contributing series against its baseline (in MADs,
        since when), the events in and just before it, the top processes then, similar past anomalies, a summary
        and the next tools to call."""
        if anomaly_id is None and start is None:
            raise ToolError("give anomaly_id (from list_anomalies) or a window with start (and end)")
        window_start = _time(start, "start") if start else None
        window_end = _time(end, "end") if end else (time.time() if start else None)
        return await _guarded(ops.explain_anomaly(anomaly_id, start=window_start, end=window_end))

    @mcp.tool(annotations=_READ)
    async def forecast_capacity(
        resource: Annotated[str, Field(description="memory, filesystem:<mountpoint> or inodes:<mountpoint>.")],
        horizon: Annotated[str, Field(description="How far ahead, e.g. 30d.")] = "30d",
    ) -> Forecast:
        """When a resource reaches 90 % and 100 % (robust Theil–Sen trend with an interval); times are only given
        when the fit is fair or good."""
        return await _guarded(ops.forecast_capacity(resource, horizon=_seconds(horizon, "horizon")))

    @mcp.tool(annotations=_READ)
    async def capacity_report(horizon: Annotated[str, Field(description="e.g. 30d")] = "30d") -> CapacityReport:
        """Forecasts of every resource (memory, each filesystem, inodes), the most urgent first."""
        return await _guarded(ops.capacity_report(horizon=_seconds(horizon, "horizon")))

    @mcp.tool(annotations=_READ)
    async def anomaly_rate(
        since: Annotated[str, Field(description=f"From: {_TIME_HELP}.")] = "7d",
        bucket: Annotated[str, Field(description="Bucket width, e.g. 1h or 1d.")] = "1h",
    ) -> AnomalyRate:
        """The host's anomalies per time bucket and the share of time spent inside one: is it getting worse?"""
        width = _seconds(bucket, "bucket")
        assert width is not None
        return await _guarded(ops.anomaly_rate(since=_time(since, "since"), bucket=width))

    @mcp.tool(annotations=_READ)
    async def get_recommendations() -> RecommendationList:
        """Actionable items drawn from anomalies, forecasts and alerts, each with its evidence."""
        return RecommendationList(recommendations=await _guarded(ops.get_recommendations()))

    @mcp.tool(annotations=_READ)
    async def slow_queries(
        since: Annotated[str, Field(description=f"From: {_TIME_HELP}.")] = "1h",
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
        source: Annotated[
            Literal["auto", "performance_schema", "slow_log"], Field(description="Where to read.")
        ] = "auto",
    ) -> SlowQueries:
        """MySQL/MariaDB statements that took the most time (normalised digests, calls, total and mean time)."""
        return await _guarded(ops.slow_queries(since=_time(since, "since"), limit=limit, source=source))

    @mcp.tool(annotations=_READ)
    async def recent_errors(
        app: Annotated[str, Field(description="A Laravel app name from the config.")],
        since: Annotated[str, Field(description=f"From: {_TIME_HELP}.")] = "1h",
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> RecentErrors:
        """A Laravel app's recent error log entries (level, exception class, message, first stack frame) and its
        failed jobs."""
        return await _guarded(ops.recent_errors(app, since=_time(since, "since"), limit=limit))

    @mcp.tool(annotations=_READ)
    async def top_endpoints(
        host: Annotated[str | None, Field(description="A virtual host; default all.")] = None,
        by: Annotated[Literal["latency", "errors"], Field(description="Slowest first, or most failing first.")] = (
            "latency"
        ),
        since: Annotated[str | None, Field(description=f"From: {_TIME_HELP} (default: the kept window).")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> TopEndpoints:
        """The slowest or most failing paths per virtual host, from the web server's access logs."""
        return await _guarded(
            ops.top_endpoints(host, by=by, since=_time(since, "since") if since else None, limit=limit)
        )

    @mcp.tool(annotations=_READ)
    async def get_audit(
        service: Annotated[str | None, Field(description="Only actions on this service.")] = None,
        since: Annotated[str, Field(description=f"From: {_TIME_HELP}.")] = "7d",
    ) -> AuditList:
        """Actions attempted on the host (restarts, including refused and declined ones), with who, why, result."""
        return AuditList(records=await _guarded(ops.audit(target=service, since=_time(since, "since"))))

    if not read_only:

        @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False))
        async def silence_alerts(
            ctx: Context[Any, Any],
            matchers: Annotated[
                list[str],
                Field(min_length=1, max_length=20, description="e.g. ['alertname=HighCpuUsage', 'service=mysql']"),
            ],
            duration: Annotated[str, Field(description="How long, e.g. 2h (at most a year).")],
            reason: Annotated[str, Field(min_length=1, max_length=500, description="Why: shown with the silence.")],
        ) -> SilenceView:
            """Mute notifications of the alerts matching every matcher for a while (name=value, name!=value,
            name=~regex, name!~regex). Alerts still fire and show in list_alerts."""
            span = _duration(duration, "duration")
            assert span is not None
            return await _guarded(
                ops.silence_alerts(matchers, duration=span, reason=reason, author=_actor(ctx, transport))
            )

        @mcp.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True))
        async def delete_silence(ctx: Context[Any, Any], silence_id: str) -> SilenceView:
            """End a silence now (list_silences shows the ids)."""
            return await _guarded(ops.delete_silence(silence_id, by=_actor(ctx, transport)))

        @mcp.tool(
            title="Restart a service",
            annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=False, read_only_hint=False),
        )
        async def restart_service(
            ctx: Context[Any, Any],
            service: Annotated[str, Field(description="Exact name of an allowlisted service.")],
            reason: Annotated[str, Field(min_length=3, description="Why: recorded in the audit log.")],
            answer: Annotated[ElicitationResult[Confirm], Resolve(_ask_confirmation)],
            confirm: Annotated[
                bool, Field(description="Only for clients that cannot ask the user: true once the user agreed.")
            ] = False,
            dry_run: Annotated[bool, Field(description="Check the guard rails and say what would run.")] = False,
        ) -> RestartResult:
            """Restart an allowlisted systemd unit or supervisor program: asks the user first, respects a
            per-service budget with back-off, and is audited. Try dry_run=true first."""
            confirmed = isinstance(answer, AcceptedElicitation) and answer.data.ok
            return await _guarded(
                ops.restart_service(
                    service, reason=reason, actor=_actor(ctx, transport), confirmed=confirmed, dry_run=dry_run
                )
            )

    @mcp.prompt(title="Incident triage")
    async def incident_triage(alert_id: str | None = None) -> str:
        """Triage what is wrong now: status, recent events and alerts, then a guided investigation."""
        status = await _guarded(ops.status_summary())
        events = await _guarded(ops.events(since=time.time() - 3600, limit=30))
        alerts = await _guarded(ops.list_alerts())
        return _prompt(
            "incident_triage",
            host=status.host,
            now=status.ts,
            alert_clause=f", starting from alert {alert_id}" if alert_id else "",
            status=status.model_dump(mode="json", exclude={"vitals"}),
            events=[e.model_dump(mode="json") for e in events],
            alerts=[a.model_dump(mode="json", exclude={"fingerprint"}) for a in alerts],
        )

    @mcp.prompt(name="capacity_report", title="Capacity report")
    async def capacity_report_prompt(horizon: str = "30d") -> str:
        """A capacity report: current usage and 7-day growth per resource, and when each fills."""
        status = await _guarded(ops.status_summary())
        now = time.time()
        growth = {}
        for name in ("filesystem_used_ratio", "memory_used_ratio", "swap_used_ratio"):
            try:
                report = await ops.metrics_report(
                    name, start=now - 7 * 86400, end=now, step=86400, max_points=8, max_series=10
                )
            except CrucibleError:
                continue
            for metric_report in report.reports:
                for series in metric_report.series:
                    key = name + ("" if not series.labels else f" {series.labels.get('mountpoint', series.labels)}")
                    growth[key] = [[ts[:10], value] for ts, value in series.points]
        try:
            capacity = await ops.capacity_report(horizon=_seconds(horizon, "horizon"))
            forecasts: object = [
                f.model_dump(mode="json", include={"resource", "current", "slope_per_day", "thresholds", "fit_quality"})
                for f in capacity.forecasts
            ]
        except CrucibleError as exc:
            forecasts = f"not available: {exc}"
        return _prompt(
            "capacity_report",
            host=status.host,
            now=status.ts,
            horizon=horizon,
            usage={k: v.human for k, v in status.vitals.items()},
            growth=growth,
            forecasts=forecasts,
        )

    @mcp.prompt(title="Daily health summary")
    async def daily_health_summary() -> str:
        """Yesterday in ten lines: incidents, restarts, peaks, trends."""
        status = await _guarded(ops.status_summary())
        now = time.time()
        events = await _guarded(ops.events(since=now - 86400, limit=50))
        peaks = {}
        for name in ("cpu_usage_ratio", "memory_used_ratio", "load1"):
            try:
                report = await ops.metrics_report(name, start=now - 86400, end=now, step=3600, max_points=24)
            except CrucibleError:
                continue
            for metric_report in report.reports:
                for series in metric_report.series[:1]:
                    peaks[name] = {"max": series.human["max"], "avg": series.human["avg"]}
        return _prompt(
            "daily_health_summary",
            host=status.host,
            now=status.ts,
            status=status.model_dump(mode="json", include={"status", "headline", "findings", "services", "checks"}),
            events=[e.model_dump(mode="json", include={"ts", "kind", "subject", "message"}) for e in events],
            peaks=peaks,
        )

    @mcp.prompt(title="Explain a spike")
    async def explain_spike(metric: str, when: str = "1h") -> str:
        """Explain a change in one metric around a time: the series around it and the events in the window."""
        at = _time(when, "when")
        catalogue = {m.name: m for m in await _guarded(ops.list_metrics())}
        if metric not in catalogue:
            raise ToolError(f"unknown metric {metric!r}; list_metrics shows them")
        report = await _guarded(ops.metrics_report(metric, start=at - 3600, end=at + 3600, max_points=60))
        events = await _guarded(ops.events(since=at - 3600, limit=50))
        window = [e for e in events if e.ts <= iso(at + 3600)]
        status = await _guarded(ops.status_summary())
        return _prompt(
            "explain_spike",
            host=status.host,
            metric=metric,
            when=iso(at),
            description=catalogue[metric].description,
            unit=report.reports[0].unit if report.reports else catalogue[metric].unit,
            series=[s.model_dump(mode="json") for r in report.reports for s in r.series],
            events=[e.model_dump(mode="json", include={"ts", "kind", "subject", "message"}) for e in window],
        )

    @mcp.resource("crucible://status", mime_type="application/json")
    async def status_resource() -> str:
        """The health summary (as get_system_status)."""
        return (await _guarded(ops.status_summary())).model_dump_json()

    @mcp.resource("crucible://config", mime_type="application/json")
    async def config_resource() -> str:
        """The agent's configuration, secrets redacted."""
        return json.dumps(await _guarded(ops.get_config()))

    @mcp.resource("crucible://metrics/{name}", mime_type="application/json")
    async def metric_resource(name: str) -> str:
        """The last hour of one metric: statistics and up to 60 points per series."""
        now = time.time()
        return (await _guarded(ops.metrics_report(name, start=now - 3600, end=now))).model_dump_json()

    return mcp
