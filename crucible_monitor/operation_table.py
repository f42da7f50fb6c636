"""The operation table: every Monitor operation offered over HTTP, declared once.

To add an operation: declare it here (or, if it changes something, in
:mod:`~crucible_monitor.operation_actions`), write its Monitor method, add it to the
:class:`~crucible_monitor.operations.Operations` protocol (and an MCP tool if it is one). The API registers its
route and RemoteMonitor calls it from this declaration.
"""

from __future__ import annotations

from typing import Any

from crucible_monitor.config import Category
from crucible_monitor.errors import CollectorError, NotFoundError, QueryError
from crucible_monitor.models import Severity
from crucible_monitor.operation_actions import CHANGES
from crucible_monitor.operations import ID_RANGE, Operation, Param, Route, range_params
from crucible_monitor.schemas import (
    AlertDetail,
    AlertFilter,
    AlertView,
    AnomalyRate,
    AnomalyView,
    CapacityReport,
    CheckResult,
    CollectorStatus,
    EndpointRanking,
    EventView,
    Explanation,
    Forecast,
    Health,
    LogTail,
    MetricHistory,
    MetricInfo,
    MetricsReport,
    RecentErrors,
    Recommendation,
    ServiceDetail,
    ServiceState,
    ServiceStatus,
    SilenceView,
    SlowQueries,
    SlowQuerySource,
    StatusSummary,
    SystemSnapshot,
    TopEndpoints,
    TransitionView,
)
from crucible_monitor.schemas.views import AuditList

__all__ = ["OPERATIONS"]


_AGO = "ISO 8601, Unix seconds, or a duration ago."
_LIMIT_1000 = Param("limit", int, 100, constraints={"ge": 1, "le": 1000})


def _since(default: str | None = None, *, optional: bool = True) -> Param:
    return Param("since", str | None if optional else str, default, kind="time", description=_AGO)


def _get(path: str, doc: str, tag: str, *params: Param) -> Route:
    return Route("GET", path, doc, tag, params)


def _op(name: str, result: Any, *routes: Route, **options: Any) -> Operation:
    return Operation(name, result, routes, **options)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        _op(
            "health",
            Health,
            _get(
                "/health",
                "Liveness and a summary of collectors and storage (no token needed; no error details).",
                "health",
            ),
            public=True,
        ),
        _op(
            "collectors",
            list[CollectorStatus],
            _get("/collectors", "Each collector's runs, errors (with the last error message) and timing.", "agent"),
        ),
        _op(
            "system_status",
            SystemSnapshot,
            _get(
                "/metrics/system",
                "The newest CPU, memory, disk, network, load and pressure readings and the top processes.",
                "metrics",
            ),
        ),
        _op(
            "status_summary",
            StatusSummary,
            _get(
                "/status",
                "What is wrong, since when and how bad (most urgent first), then the vital signs and top processes.",
                "agent",
            ),
        ),
        _op(
            "services",
            list[ServiceStatus],
            _get(
                "/metrics/services",
                "systemd units and supervisor programs: state, restarts, memory, since when.",
                "metrics",
                Param("state", ServiceState, "all"),
                Param("category", Category | None, None),
            ),
        ),
        _op(
            "get_service",
            ServiceDetail,
            _get(
                "/services/{name}",
                "One service: status, recent state changes and restarts, last log lines.",
                "services",
                Param("name", str, where="path"),
            ),
            errors=(NotFoundError,),
        ),
        _op(
            "tail_logs",
            LogTail,
            _get(
                "/logs",
                "The last lines of a service's log (journal or supervisor) or of a configured log file.",
                "services",
                Param("source", str, description="A watched service or a name in logs.files."),
                Param("lines", int, 50, constraints={"ge": 1, "le": 500}),
                Param("contains", str | None, None, description="Plain text the lines must contain."),
            ),
            errors=(NotFoundError, CollectorError),
        ),
        _op(
            "audit",
            AuditList,
            _get(
                "/audit",
                "Actions attempted on the host (restarts, refused ones included), newest first, a page at a time.",
                "services",
                Param("target", str | None, None),
                _since(),
                _LIMIT_1000,
                Param("offset", int, 0, constraints={"ge": 0, "le": 2**31}, description="Records to skip."),
            ),
        ),
        _op(
            "http_checks",
            list[CheckResult],
            _get(
                "/metrics/http",
                "The latest result of each HTTP check: status, latency, failure class, certificate expiry.",
                "metrics",
            ),
        ),
        _op(
            "list_metrics",
            list[MetricInfo],
            _get(
                "/metrics/catalogue",
                "Every metric the running collectors emit, with kind, unit, labels and description.",
                "metrics",
            ),
        ),
        _op(
            "history",
            MetricHistory,
            _get(
                "/metrics/history",
                "Points of one metric over time, read from the coarsest storage tier that serves the step.",
                "metrics",
                Param("metric", str, description="Metric name, e.g. cpu_usage_ratio."),
                *range_params(described=True),
            ),
            errors=(QueryError,),
        ),
        _op(
            "metrics_report",
            MetricsReport,
            _get(
                "/metrics/report",
                "Summary statistics and a bounded number of points per series, for one metric or a group.",
                "metrics",
                Param("metric", str, description="A metric name, or a group prefix such as memory or disk."),
                *range_params(described=False),
                Param("max_points", int, 60, constraints={"ge": 2, "le": 500}),
                Param("max_series", int, 10, constraints={"ge": 1, "le": 50}),
            ),
            errors=(QueryError,),
        ),
        _op(
            "events",
            list[EventView],
            _get(
                "/events",
                "Service state changes and restarts, check failures, collector errors, config changes.",
                "events",
                _since(),
                Param("kinds", list[str] | None, None, wire="kind", description="Event kinds to include (repeatable)."),
                Param("subject", str | None, None, description="A service, check or collector name."),
                _LIMIT_1000,
            ),
            errors=(QueryError,),
        ),
        _op(
            "list_alerts",
            list[AlertView],
            _get(
                "/alerts",
                "Alerts newest first, with their acknowledgement, silences and inhibition.",
                "alerts",
                Param("state", AlertFilter, "active", description="active = pending or firing"),
                Param("severity", Severity | None, None),
                _LIMIT_1000,
            ),
            errors=(QueryError,),
        ),
        _op(
            "alert_history",
            list[TransitionView],
            _get(
                "/alerts/history",
                "Every alert's transitions (pending, firing, acknowledged, resolved...), newest first.",
                "alerts",
                _since(),
                _LIMIT_1000,
            ),
        ),
        _op(
            "get_alert",
            AlertDetail,
            _get(
                "/alerts/{alert_id}",
                "One alert with its history.",
                "alerts",
                Param("alert_id", int, where="path", constraints=ID_RANGE),
            ),
            errors=(NotFoundError,),
        ),
        _op(
            "list_silences",
            list[SilenceView],
            _get(
                "/silences",
                "Silences (from the API and MCP) and maintenance windows (from the alerting file).",
                "alerts",
                Param("include_expired", bool, False),
            ),
        ),
        _op(
            "list_anomalies",
            list[AnomalyView],
            _get(
                "/anomalies",
                "Anomalies newest first: when, how strong, which series drove them.",
                "analysis",
                _since(),
                Param("min_score", float, 0.0, constraints={"ge": 0, "le": 1}),
                _LIMIT_1000,
            ),
            errors=(NotFoundError,),
        ),
        _op(
            "anomaly_rate",
            AnomalyRate,
            _get(
                "/anomalies/rate",
                "The host's anomalies per bucket and the share of time inside one.",
                "analysis",
                _since("7d", optional=False),
                Param("until", str | None, None, kind="time"),
                Param("bucket", str, "1h", kind="duration", description="Bucket width, e.g. 1h."),
            ),
            errors=(NotFoundError, QueryError),
        ),
        _op(
            "explain_anomaly",
            Explanation,
            _get(
                "/anomalies/{anomaly_id}/explanation",
                "Why it was unusual: contributing series vs baseline, events, top processes, similar anomalies.",
                "analysis",
                Param("anomaly_id", int, where="path", constraints=ID_RANGE),
            ),
            _get(
                "/explanation",
                "The same explanation for any time window.",
                "analysis",
                Param("start", str, kind="time", description=_AGO),
                Param("end", str | None, None, kind="time", description="Same forms; default now."),
            ),
            errors=(NotFoundError, QueryError),
        ),
        _op(
            "capacity_report",
            CapacityReport,
            _get(
                "/capacity",
                "Forecasts of every resource (memory, filesystems, inodes), the most urgent first.",
                "analysis",
                Param("horizon", str | None, None, kind="duration", description="e.g. 30d"),
            ),
            errors=(NotFoundError, QueryError),
        ),
        _op(
            "forecast_capacity",
            Forecast,
            _get(
                "/capacity/{resource:path}",
                "When one resource (memory, filesystem:/var, inodes:/) fills, with the fit quality stated.",
                "analysis",
                Param("resource", str, where="path"),
                Param("horizon", str | None, None, kind="duration"),
            ),
            errors=(NotFoundError, QueryError),
        ),
        _op(
            "get_recommendations",
            list[Recommendation],
            _get(
                "/recommendations",
                "Actionable items from anomalies, forecasts, alerts and the weekly maintenance window, with evidence.",
                "analysis",
            ),
            errors=(NotFoundError,),
        ),
        _op(
            "slow_queries",
            SlowQueries,
            _get(
                "/mysql/slow-queries",
                "The statements that took the most time (digests from performance_schema, else the slow log).",
                "applications",
                _since("1h", optional=False),
                Param("limit", int, 10, constraints={"ge": 1, "le": 100}),
                Param("source", SlowQuerySource, "auto"),
            ),
            errors=(NotFoundError, CollectorError),
        ),
        _op(
            "recent_errors",
            RecentErrors,
            _get(
                "/laravel/{app}/errors",
                "A Laravel app's recent errors (level, exception class, message) and failed jobs.",
                "applications",
                Param("app", str, where="path"),
                _since("1h", optional=False),
                Param("limit", int, 50, constraints={"ge": 1, "le": 500}),
            ),
            errors=(NotFoundError,),
        ),
        _op(
            "top_endpoints",
            TopEndpoints,
            _get(
                "/access-logs/top-endpoints",
                "The slowest or most failing paths per virtual host, from the access logs.",
                "applications",
                Param("host", str | None, None, description="A virtual host; default all."),
                Param("by", EndpointRanking, "latency"),
                _since(),
                Param("limit", int, 10, constraints={"ge": 1, "le": 100}),
            ),
            errors=(NotFoundError, QueryError),
        ),
        _op(
            "get_config",
            dict[str, Any],
            _get("/config", "The configuration in force, secrets redacted.", "config"),
            scope="admin",
        ),
        *CHANGES,
    )
}
"""Every operation offered over HTTP, by Monitor method name."""
