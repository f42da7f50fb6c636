"""RemoteMonitor: the Monitor's operations over a running agent's HTTP API (for the CLI, TUI and stdio MCP)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import TypeAdapter

from crucible_monitor.analysis.results import (
    AnomalyRate,
    AnomalyView,
    CapacityReport,
    Explanation,
    Forecast,
    Recommendation,
)
from crucible_monitor.config import Config
from crucible_monitor.errors import ActionRefused, CollectorError, ConfigError, CrucibleError, NotFoundError, QueryError
from crucible_monitor.schemas import (
    AlertDetail,
    AlertFilter,
    AlertView,
    AuditView,
    CheckResult,
    CollectorStatus,
    EndpointRanking,
    EventView,
    Health,
    LogTail,
    MetricHistory,
    MetricInfo,
    MetricsReport,
    RecentErrors,
    Recurrence,
    RestartResult,
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
from crucible_monitor.tokens import read_api_token

__all__ = ["AgentUnavailable", "RemoteMonitor"]

_COLLECTORS = TypeAdapter(list[CollectorStatus])
_SERVICES = TypeAdapter(list[ServiceStatus])
_CHECKS = TypeAdapter(list[CheckResult])
_METRICS = TypeAdapter(list[MetricInfo])
_EVENTS = TypeAdapter(list[EventView])
_AUDIT = TypeAdapter(list[AuditView])
_ALERTS = TypeAdapter(list[AlertView])
_SILENCES = TypeAdapter(list[SilenceView])
_TRANSITIONS = TypeAdapter(list[TransitionView])
_ANOMALIES = TypeAdapter(list[AnomalyView])
_RECOMMENDATIONS = TypeAdapter(list[Recommendation])


class AgentUnavailable(CrucibleError):
    """No agent answers at the configured address."""


class RemoteMonitor:
    """A client of one agent's ``/api/v1`` offering the Monitor's operations; use as an async context manager."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    @classmethod
    def from_config(cls, config: Config) -> RemoteMonitor:
        """Connect to the agent that ``config`` describes, with its token."""
        host = config.agent.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
        url_host = f"[{host}]" if ":" in host else host
        return cls(f"http://{url_host}:{config.agent.port}", read_api_token(config))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, json: Any = None, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        try:
            response = await self._http.request(method, path, params=query, json=json)
        except httpx.TransportError as exc:
            raise AgentUnavailable(f"no agent answers at {self.base_url} ({type(exc).__name__})") from exc
        _raise_for(response)
        return response.json()

    async def health(self) -> Health:
        """``GET /api/v1/health``."""
        return Health.model_validate(await self._call("GET", "/api/v1/health"))

    async def collectors(self) -> list[CollectorStatus]:
        """``GET /api/v1/collectors``."""
        return _COLLECTORS.validate_python(await self._call("GET", "/api/v1/collectors"))

    async def status_summary(self) -> StatusSummary:
        """``GET /api/v1/status``."""
        return StatusSummary.model_validate(await self._call("GET", "/api/v1/status"))

    async def system_status(self) -> SystemSnapshot:
        """``GET /api/v1/metrics/system``."""
        return SystemSnapshot.model_validate(await self._call("GET", "/api/v1/metrics/system"))

    async def services(self, state: ServiceState = "all", category: str | None = None) -> list[ServiceStatus]:
        """``GET /api/v1/metrics/services``."""
        return _SERVICES.validate_python(
            await self._call("GET", "/api/v1/metrics/services", state=state, category=category)
        )

    async def get_service(self, name: str) -> ServiceDetail:
        """``GET /api/v1/services/{name}``."""
        return ServiceDetail.model_validate(await self._call("GET", f"/api/v1/services/{name}"))

    async def http_checks(self) -> list[CheckResult]:
        """``GET /api/v1/metrics/http``."""
        return _CHECKS.validate_python(await self._call("GET", "/api/v1/metrics/http"))

    async def list_metrics(self) -> list[MetricInfo]:
        """``GET /api/v1/metrics/catalogue``."""
        return _METRICS.validate_python(await self._call("GET", "/api/v1/metrics/catalogue"))

    async def history(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float | None = None,
        agg: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> MetricHistory:
        """``GET /api/v1/metrics/history``."""
        params = _range(start, end, step, labels)
        return MetricHistory.model_validate(
            await self._call("GET", "/api/v1/metrics/history", metric=metric, agg=agg, **params)
        )

    async def metrics_report(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float | None = None,
        agg: str | None = None,
        labels: Mapping[str, str] | None = None,
        max_points: int = 60,
        max_series: int = 10,
    ) -> MetricsReport:
        """``GET /api/v1/metrics/report``."""
        params = _range(start, end, step, labels)
        return MetricsReport.model_validate(
            await self._call(
                "GET",
                "/api/v1/metrics/report",
                metric=metric,
                agg=agg,
                max_points=max_points,
                max_series=max_series,
                **params,
            )
        )

    async def events(
        self,
        *,
        since: float | None = None,
        kinds: list[str] | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[EventView]:
        """``GET /api/v1/events``."""
        return _EVENTS.validate_python(
            await self._call("GET", "/api/v1/events", since=since, kind=kinds, subject=subject, limit=limit)
        )

    async def tail_logs(self, source: str, *, lines: int = 50, contains: str | None = None) -> LogTail:
        """``GET /api/v1/logs``."""
        return LogTail.model_validate(
            await self._call("GET", "/api/v1/logs", source=source, lines=lines, contains=contains)
        )

    async def restart_service(
        self, name: str, *, reason: str, actor: str, confirmed: bool, dry_run: bool = False
    ) -> RestartResult:
        """``POST /api/v1/services/{name}/restart``."""
        body = {"reason": reason, "confirm": confirmed, "dry_run": dry_run, "actor": actor}
        return RestartResult.model_validate(await self._call("POST", f"/api/v1/services/{name}/restart", json=body))

    async def audit(self, *, target: str | None = None, since: float | None = None) -> list[AuditView]:
        """``GET /api/v1/audit``."""
        return _AUDIT.validate_python(await self._call("GET", "/api/v1/audit", target=target, since=since))

    async def list_alerts(
        self, *, state: AlertFilter = "active", severity: str | None = None, limit: int = 100
    ) -> list[AlertView]:
        """``GET /api/v1/alerts``."""
        return _ALERTS.validate_python(
            await self._call("GET", "/api/v1/alerts", state=state, severity=severity, limit=limit)
        )

    async def get_alert(self, alert_id: int) -> AlertDetail:
        """``GET /api/v1/alerts/{id}``."""
        return AlertDetail.model_validate(await self._call("GET", f"/api/v1/alerts/{alert_id}"))

    async def acknowledge_alert(
        self, alert_id: int, *, by: str, note: str | None = None, expires: timedelta | None = None
    ) -> AlertView:
        """``POST /api/v1/alerts/{id}/acknowledge``."""
        body = {"by": by, "note": note, "expires": _duration(expires)}
        return AlertView.model_validate(await self._call("POST", f"/api/v1/alerts/{alert_id}/acknowledge", json=body))

    async def silence_alerts(
        self,
        matchers: list[str],
        *,
        duration: timedelta,
        reason: str,
        author: str,
        starts_at: float | None = None,
        recurrence: Recurrence | None = None,
    ) -> SilenceView:
        """``POST /api/v1/silences``."""
        body = {
            "matchers": matchers,
            "duration": _duration(duration),
            "reason": reason,
            "author": author,
            "starts_at": starts_at,
            "recurrence": recurrence.model_dump(mode="json") if recurrence else None,
        }
        return SilenceView.model_validate(await self._call("POST", "/api/v1/silences", json=body))

    async def list_silences(self, *, include_expired: bool = False) -> list[SilenceView]:
        """``GET /api/v1/silences``."""
        return _SILENCES.validate_python(
            await self._call("GET", "/api/v1/silences", include_expired=str(include_expired).lower())
        )

    async def delete_silence(self, silence_id: str, *, by: str) -> SilenceView:
        """``DELETE /api/v1/silences/{id}``."""
        return SilenceView.model_validate(await self._call("DELETE", f"/api/v1/silences/{silence_id}", by=by))

    async def alert_history(self, *, since: float | None = None, limit: int = 100) -> list[TransitionView]:
        """``GET /api/v1/alerts/history``."""
        return _TRANSITIONS.validate_python(await self._call("GET", "/api/v1/alerts/history", since=since, limit=limit))

    async def list_anomalies(
        self, *, since: float | None = None, min_score: float = 0.0, limit: int = 100
    ) -> list[AnomalyView]:
        """``GET /api/v1/anomalies``."""
        return _ANOMALIES.validate_python(
            await self._call("GET", "/api/v1/anomalies", since=since, min_score=min_score, limit=limit)
        )

    async def explain_anomaly(
        self, anomaly_id: int | None = None, *, start: float | None = None, end: float | None = None
    ) -> Explanation:
        """``GET /api/v1/anomalies/{id}/explanation`` or ``GET /api/v1/explanation?start=&end=``."""
        if anomaly_id is not None:
            return Explanation.model_validate(await self._call("GET", f"/api/v1/anomalies/{anomaly_id}/explanation"))
        return Explanation.model_validate(await self._call("GET", "/api/v1/explanation", start=start, end=end))

    async def forecast_capacity(self, resource: str, *, horizon: float | None = None) -> Forecast:
        """``GET /api/v1/capacity/{resource}``."""
        return Forecast.model_validate(
            await self._call("GET", f"/api/v1/capacity/{resource}", horizon=_seconds(horizon))
        )

    async def capacity_report(self, *, horizon: float | None = None) -> CapacityReport:
        """``GET /api/v1/capacity``."""
        return CapacityReport.model_validate(await self._call("GET", "/api/v1/capacity", horizon=_seconds(horizon)))

    async def get_recommendations(self) -> list[Recommendation]:
        """``GET /api/v1/recommendations``."""
        return _RECOMMENDATIONS.validate_python(await self._call("GET", "/api/v1/recommendations"))

    async def anomaly_rate(self, *, since: float, until: float | None = None, bucket: float = 3600) -> AnomalyRate:
        """``GET /api/v1/anomalies/rate``."""
        return AnomalyRate.model_validate(
            await self._call("GET", "/api/v1/anomalies/rate", since=since, until=until, bucket=_seconds(bucket))
        )

    async def slow_queries(self, *, since: float, limit: int = 10, source: SlowQuerySource = "auto") -> SlowQueries:
        """``GET /api/v1/mysql/slow-queries``."""
        return SlowQueries.model_validate(
            await self._call("GET", "/api/v1/mysql/slow-queries", since=since, limit=limit, source=source)
        )

    async def recent_errors(self, app: str, *, since: float, limit: int = 50) -> RecentErrors:
        """``GET /api/v1/laravel/{app}/errors``."""
        return RecentErrors.model_validate(
            await self._call("GET", f"/api/v1/laravel/{app}/errors", since=since, limit=limit)
        )

    async def top_endpoints(
        self, host: str | None = None, *, by: EndpointRanking = "latency", since: float | None = None, limit: int = 10
    ) -> TopEndpoints:
        """``GET /api/v1/access-logs/top-endpoints``."""
        return TopEndpoints.model_validate(
            await self._call("GET", "/api/v1/access-logs/top-endpoints", host=host, by=by, since=since, limit=limit)
        )

    async def get_config(self) -> dict[str, Any]:
        """``GET /api/v1/config`` (secrets redacted)."""
        config: dict[str, Any] = await self._call("GET", "/api/v1/config")
        return config


def _range(start: float, end: float, step: float | None, labels: Mapping[str, str] | None) -> dict[str, Any]:
    return {
        "start": repr(start),
        "end": repr(end),
        "step": f"{step}s" if step else None,
        "labels": ",".join(f"{k}={v}" for k, v in labels.items()) if labels else None,
    }


def _duration(value: timedelta | None) -> str | None:
    return None if value is None else _seconds(value.total_seconds())


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:g}s"


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = str(response.json().get("detail", response.text))
    except ValueError:
        detail = response.text
    match response.status_code:
        case 400:
            raise QueryError(detail)
        case 401:
            raise CrucibleError(
                f"the agent refused the token ({detail}); check agent.api_token or <data_dir>/api_token"
            )
        case 403:
            raise ActionRefused(detail)
        case 404:
            raise NotFoundError(detail)
        case 422:
            raise ConfigError(detail)
        case 503:
            raise CollectorError(detail)
        case _:
            raise CrucibleError(f"the agent answered {response.status_code}: {detail}")
