"""The HTTP API (``/api/v1``): a thin layer over :class:`~crucible_monitor.monitor.Monitor`.

Every route but ``/api/v1/health`` needs ``Authorization: Bearer <token>``. The OpenAPI spec is served at
``/api/v1/openapi.json`` (with the token).
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from crucible_monitor.analysis.results import (
    AnomalyRate,
    AnomalyView,
    CapacityReport,
    Explanation,
    Forecast,
    Recommendation,
)
from crucible_monitor.config import parse_duration
from crucible_monitor.errors import ActionRefused, CollectorError, ConfigError, NotFoundError, QueryError
from crucible_monitor.monitor import Monitor
from crucible_monitor.schemas import (
    AcknowledgeRequest,
    AlertDetail,
    AlertFilter,
    AlertView,
    AuditView,
    CheckResult,
    CollectorStatus,
    ConfigUpdate,
    EventView,
    Health,
    LogTail,
    MetricHistory,
    MetricInfo,
    MetricsReport,
    RecentErrors,
    RestartResult,
    ServiceDetail,
    ServiceStatus,
    SilenceRequest,
    SilenceView,
    SlowQueries,
    StatusSummary,
    SystemSnapshot,
    TopEndpoints,
    TransitionView,
)
from crucible_monitor.timeparse import parse_labels, parse_time

__all__ = ["build_api", "install_error_handlers", "require_token"]

_bearer = HTTPBearer(auto_error=False, description="The agent's API token (agent.api_token or <data_dir>/api_token).")


def require_token(token: str) -> Any:
    """A dependency that accepts only ``Authorization: Bearer <token>`` (compared in constant time)."""

    async def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="crucible-monitor"'},
            )

    return Depends(check)


def install_error_handlers(app: FastAPI) -> None:
    """Map the package's errors to HTTP statuses with the message as ``detail``."""

    async def bad_query(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    async def bad_config(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "errors": str(exc).splitlines()}, status_code=422)

    async def refused(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    app.add_exception_handler(QueryError, bad_query)
    app.add_exception_handler(ActionRefused, refused)
    app.add_exception_handler(CollectorError, unavailable)
    app.add_exception_handler(NotFoundError, not_found)
    app.add_exception_handler(ConfigError, bad_config)


class RestartBody(BaseModel):
    """A restart request."""

    reason: str = Field(description="Why: it goes into the audit record.")
    confirm: bool = Field(False, description="Must be true to restart (false records a declined attempt).")
    dry_run: bool = Field(False, description="Check the guard rails and say what would run, without running it.")
    actor: str | None = Field(None, description="Who asks, for the audit record (e.g. the MCP client's name).")


def _time(text: str) -> float:
    try:
        return parse_time(text, time.time())
    except ValueError as exc:
        raise QueryError(str(exc)) from None


def _duration(text: str) -> float:
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise QueryError(str(exc)) from None


def _range(
    start: str | None, end: str | None, since: str | None, step: str | None, labels: str | None
) -> dict[str, Any]:
    """Query text forms → the Monitor's arguments (start, end, step in seconds, labels)."""
    now = time.time()
    try:
        return {
            "start": parse_time(start or since or "1h", now),
            "end": parse_time(end, now) if end else now,
            "step": parse_duration(step).total_seconds() if step else None,
            "labels": parse_labels(labels) if labels else None,
        }
    except ValueError as exc:
        raise QueryError(str(exc)) from None


def build_api(monitor: Monitor, token: str) -> APIRouter:
    """The ``/api/v1`` routes over ``monitor``, guarded by ``token``."""
    public = APIRouter(prefix="/api/v1", tags=["health"])
    api = APIRouter(prefix="/api/v1", dependencies=[require_token(token)])

    @public.get("/health")
    async def health() -> Health:
        """Liveness and a summary of collectors and storage (no token needed; no error details)."""
        return await monitor.health()

    @api.get("/collectors", tags=["agent"])
    async def collectors() -> list[CollectorStatus]:
        """Each collector's runs, errors (with the last error message) and timing."""
        return await monitor.collectors()

    @api.get("/metrics/system", tags=["metrics"])
    async def system() -> SystemSnapshot:
        """The newest CPU, memory, disk, network, load and pressure readings and the top processes."""
        return await monitor.system_status()

    @api.get("/status", tags=["agent"])
    async def status() -> StatusSummary:
        """What is wrong, since when and how bad (most urgent first), then the vital signs and top processes."""
        return await monitor.status_summary()

    @api.get("/metrics/services", tags=["metrics"])
    async def services(
        state: Annotated[Literal["all", "up", "down"], Query()] = "all",
        category: Annotated[Literal["web", "database", "cache", "php", "queue", "other"] | None, Query()] = None,
    ) -> list[ServiceStatus]:
        """systemd units and supervisor programs: state, restarts, memory, since when."""
        return await monitor.services(state, category)

    @api.get("/services/{name}", tags=["services"])
    async def service(name: str) -> ServiceDetail:
        """One service: status, recent state changes and restarts, last log lines."""
        return await monitor.get_service(name)

    @api.post("/services/{name}/restart", tags=["services"])
    async def restart(name: str, body: RestartBody) -> RestartResult:
        """Restart an allowlisted service (within its budget, audited). ``confirm`` must be true; try ``dry_run``."""
        actor = f"api ({body.actor})" if body.actor else "api"
        return await monitor.restart_service(
            name, reason=body.reason, actor=actor, confirmed=body.confirm, dry_run=body.dry_run
        )

    @api.get("/logs", tags=["services"])
    async def logs(
        source: Annotated[str, Query(description="A watched service or a name in logs.files.")],
        lines: Annotated[int, Query(ge=1, le=500)] = 50,
        contains: Annotated[str | None, Query(description="Plain text the lines must contain.")] = None,
    ) -> LogTail:
        """The last lines of a service's log (journal or supervisor) or of a configured log file."""
        return await monitor.tail_logs(source, lines=lines, contains=contains)

    @api.get("/audit", tags=["services"])
    async def audit(
        target: Annotated[str | None, Query()] = None,
        since: Annotated[str | None, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = None,
    ) -> list[AuditView]:
        """Actions attempted on the host (restarts, refused ones included), newest first."""
        return await monitor.audit(target=target, since=_time(since) if since else None)

    @api.get("/metrics/http", tags=["metrics"])
    async def http_checks() -> list[CheckResult]:
        """The latest result of each HTTP check: status, latency, failure class, certificate expiry."""
        return await monitor.http_checks()

    @api.get("/metrics/catalogue", tags=["metrics"])
    async def catalogue() -> list[MetricInfo]:
        """Every metric the running collectors emit, with kind, unit, labels and description."""
        return await monitor.list_metrics()

    @api.get("/metrics/history", tags=["metrics"])
    async def history(
        metric: Annotated[str, Query(description="Metric name, e.g. cpu_usage_ratio.")],
        labels: Annotated[str | None, Query(description="Label filter: k=v,k2=v2 (exact matches).")] = None,
        start: Annotated[str | None, Query(description="ISO 8601, Unix seconds, or a duration ago (1h).")] = None,
        end: Annotated[str | None, Query(description="Same forms as start; default now.")] = None,
        since: Annotated[str | None, Query(description="Shorthand for start=<duration> ago, e.g. 1h.")] = None,
        step: Annotated[str | None, Query(description="Bucket width: 10s, 1m, 1h; default ~300 buckets.")] = None,
        agg: Annotated[
            Literal["avg", "min", "max", "last", "p95", "count", "rate"] | None,
            Query(description="Default: rate for counters, avg for gauges."),
        ] = None,
    ) -> MetricHistory:
        """Points of one metric over time, read from the coarsest storage tier that serves the step."""
        query = _range(start, end, since, step, labels)
        return await monitor.history(metric, agg=agg, **query)

    @api.get("/metrics/report", tags=["metrics"])
    async def report(
        metric: Annotated[str, Query(description="A metric name, or a group prefix such as memory or disk.")],
        labels: Annotated[str | None, Query(description="Label filter: k=v,k2=v2.")] = None,
        start: Annotated[str | None, Query()] = None,
        end: Annotated[str | None, Query()] = None,
        since: Annotated[str | None, Query()] = None,
        step: Annotated[str | None, Query()] = None,
        agg: Annotated[Literal["avg", "min", "max", "last", "p95", "count", "rate"] | None, Query()] = None,
        max_points: Annotated[int, Query(ge=2, le=500)] = 60,
        max_series: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> MetricsReport:
        """Summary statistics and a bounded number of points per series, for one metric or a group."""
        query = _range(start, end, since, step, labels)
        return await monitor.metrics_report(metric, agg=agg, max_points=max_points, max_series=max_series, **query)

    @api.get("/events", tags=["events"])
    async def events(
        since: Annotated[str | None, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = None,
        kind: Annotated[list[str] | None, Query(description="Event kinds to include (repeatable).")] = None,
        subject: Annotated[str | None, Query(description="A service, check or collector name.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[EventView]:
        """Service state changes and restarts, check failures, collector errors, config changes."""
        return await monitor.events(since=_time(since) if since else None, kinds=kind, subject=subject, limit=limit)

    @api.get("/alerts", tags=["alerts"])
    async def alerts(
        state: Annotated[AlertFilter, Query(description="active = pending or firing")] = "active",
        severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertView]:
        """Alerts newest first, with their acknowledgement, silences and inhibition."""
        return await monitor.list_alerts(state=state, severity=severity, limit=limit)

    @api.get("/alerts/history", tags=["alerts"])
    async def alert_history(
        since: Annotated[str | None, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = "1d",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[TransitionView]:
        """Every alert's transitions (pending, firing, acknowledged, resolved...), newest first."""
        return await monitor.alert_history(since=_time(since) if since else None, limit=limit)

    @api.get("/alerts/{alert_id}", tags=["alerts"])
    async def alert(alert_id: int) -> AlertDetail:
        """One alert with its history."""
        return await monitor.get_alert(alert_id)

    @api.post("/alerts/{alert_id}/acknowledge", tags=["alerts"])
    async def acknowledge(alert_id: int, body: AcknowledgeRequest) -> AlertView:
        """Acknowledge an alert: no re-notification until it resolves or the acknowledgement expires."""
        return await monitor.acknowledge_alert(alert_id, by=body.by, note=body.note, expires=body.expires)

    @api.get("/silences", tags=["alerts"])
    async def silences(include_expired: Annotated[bool, Query()] = False) -> list[SilenceView]:
        """Silences (from the API and MCP) and maintenance windows (from the alerting file)."""
        return await monitor.list_silences(include_expired=include_expired)

    @api.post("/silences", tags=["alerts"], status_code=201)
    async def silence(body: SilenceRequest) -> SilenceView:
        """Mute the alerts matching every matcher for ``duration`` (optionally only inside recurring windows)."""
        return await monitor.silence_alerts(
            body.matchers,
            duration=body.duration,
            reason=body.reason,
            author=body.author,
            starts_at=body.starts_at,
            recurrence=body.recurrence,
        )

    @api.delete("/silences/{silence_id}", tags=["alerts"])
    async def delete_silence(silence_id: str, by: Annotated[str, Query(min_length=1)]) -> SilenceView:
        """End a silence now."""
        return await monitor.delete_silence(silence_id, by=by)

    @api.get("/anomalies", tags=["analysis"])
    async def anomalies(
        since: Annotated[str | None, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = "1d",
        min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AnomalyView]:
        """Anomalies newest first: when, how strong, which series drove them."""
        return await monitor.list_anomalies(since=_time(since) if since else None, min_score=min_score, limit=limit)

    @api.get("/anomalies/rate", tags=["analysis"])
    async def anomaly_rate(
        since: Annotated[str, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = "7d",
        until: Annotated[str | None, Query()] = None,
        bucket: Annotated[str, Query(description="Bucket width, e.g. 1h.")] = "1h",
    ) -> AnomalyRate:
        """The host's anomalies per bucket and the share of time inside one."""
        width = _duration(bucket)
        return await monitor.anomaly_rate(since=_time(since), until=_time(until) if until else None, bucket=width)

    @api.get("/anomalies/{anomaly_id}/explanation", tags=["analysis"])
    async def explanation(anomaly_id: int) -> Explanation:
        """Why it was unusual: contributing series vs baseline, events, top processes, similar anomalies."""
        return await monitor.explain_anomaly(anomaly_id)

    @api.get("/explanation", tags=["analysis"])
    async def window_explanation(
        start: Annotated[str, Query(description="ISO 8601, Unix seconds, or a duration ago.")],
        end: Annotated[str, Query()] = "now",
    ) -> Explanation:
        """The same explanation for any time window."""
        return await monitor.explain_anomaly(start=_time(start), end=_time(end))

    @api.get("/capacity", tags=["analysis"])
    async def capacity(horizon: Annotated[str | None, Query(description="e.g. 30d")] = None) -> CapacityReport:
        """Forecasts of every resource (memory, filesystems, inodes), the most urgent first."""
        return await monitor.capacity_report(horizon=_duration(horizon) if horizon else None)

    @api.get("/capacity/{resource:path}", tags=["analysis"])
    async def forecast(resource: str, horizon: Annotated[str | None, Query()] = None) -> Forecast:
        """When one resource (memory, filesystem:/var, inodes:/) fills, with the fit quality stated."""
        return await monitor.forecast_capacity(resource, horizon=_duration(horizon) if horizon else None)

    @api.get("/recommendations", tags=["analysis"])
    async def recommendations() -> list[Recommendation]:
        """Actionable items from anomalies, forecasts and alerts, each with its evidence."""
        return await monitor.get_recommendations()

    @api.get("/mysql/slow-queries", tags=["applications"])
    async def slow_queries(
        since: Annotated[str, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = "1h",
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        source: Annotated[Literal["auto", "performance_schema", "slow_log"], Query()] = "auto",
    ) -> SlowQueries:
        """The statements that took the most time (digests from performance_schema, else the slow log)."""
        return await monitor.slow_queries(since=_time(since), limit=limit, source=source)

    @api.get("/laravel/{app}/errors", tags=["applications"])
    async def laravel_errors(
        app: str,
        since: Annotated[str, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = "1h",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> RecentErrors:
        """A Laravel app's recent errors (level, exception class, message) and failed jobs."""
        return await monitor.recent_errors(app, since=_time(since), limit=limit)

    @api.get("/access-logs/top-endpoints", tags=["applications"])
    async def top_endpoints(
        host: Annotated[str | None, Query(description="A virtual host; default all.")] = None,
        by: Annotated[Literal["latency", "errors"], Query()] = "latency",
        since: Annotated[str | None, Query(description="ISO 8601, Unix seconds, or a duration ago.")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> TopEndpoints:
        """The slowest or most failing paths per virtual host, from the access logs."""
        return await monitor.top_endpoints(host, by=by, since=_time(since) if since else None, limit=limit)

    @api.get("/config", tags=["config"])
    async def get_config() -> dict[str, Any]:
        """The configuration in force, secrets redacted."""
        return await monitor.get_config()

    @api.post("/config", tags=["config"])
    async def post_config(
        patch: Annotated[dict[str, Any], Body(description="A partial config tree merged onto the current one.")],
    ) -> ConfigUpdate:
        """Validate and apply a config change live; an invalid one is rejected (422) with every error named."""
        return await monitor.update_config(patch)

    router = APIRouter()
    router.include_router(public)
    router.include_router(api)
    return router
