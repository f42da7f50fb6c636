"""The operations every interface offers, local (:class:`~crucible_monitor.monitor.Monitor`) or remote."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from crucible_monitor.analysis.results import (
    AnomalyRate,
    AnomalyView,
    CapacityReport,
    Explanation,
    Forecast,
    Recommendation,
)
from crucible_monitor.schemas import (
    AlertDetail,
    AlertFilter,
    AlertView,
    AuditView,
    CheckResult,
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

__all__ = ["Operations"]


class Operations(Protocol):
    """What every interface may ask of a monitor, local (:class:`Monitor`) or remote (``RemoteMonitor``)."""

    async def health(self) -> Health: ...
    async def status_summary(self) -> StatusSummary: ...
    async def system_status(self) -> SystemSnapshot: ...
    async def services(self, state: ServiceState = "all", category: str | None = None) -> list[ServiceStatus]: ...
    async def get_service(self, name: str) -> ServiceDetail: ...
    async def http_checks(self) -> list[CheckResult]: ...
    async def list_metrics(self) -> list[MetricInfo]: ...
    async def history(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float | None = None,
        agg: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> MetricHistory: ...
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
    ) -> MetricsReport: ...
    async def events(
        self,
        *,
        since: float | None = None,
        kinds: list[str] | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[EventView]: ...
    async def tail_logs(self, source: str, *, lines: int = 50, contains: str | None = None) -> LogTail: ...
    async def restart_service(
        self, name: str, *, reason: str, actor: str, confirmed: bool, dry_run: bool = False
    ) -> RestartResult: ...
    async def audit(self, *, target: str | None = None, since: float | None = None) -> list[AuditView]: ...
    async def list_alerts(
        self, *, state: AlertFilter = "active", severity: str | None = None, limit: int = 100
    ) -> list[AlertView]: ...
    async def get_alert(self, alert_id: int) -> AlertDetail: ...
    async def acknowledge_alert(
        self, alert_id: int, *, by: str, note: str | None = None, expires: timedelta | None = None
    ) -> AlertView: ...
    async def silence_alerts(
        self,
        matchers: list[str],
        *,
        duration: timedelta,
        reason: str,
        author: str,
        starts_at: float | None = None,
        recurrence: Recurrence | None = None,
    ) -> SilenceView: ...
    async def list_silences(self, *, include_expired: bool = False) -> list[SilenceView]: ...
    async def delete_silence(self, silence_id: str, *, by: str) -> SilenceView: ...
    async def alert_history(self, *, since: float | None = None, limit: int = 100) -> list[TransitionView]: ...
    async def list_anomalies(
        self, *, since: float | None = None, min_score: float = 0.0, limit: int = 100
    ) -> list[AnomalyView]: ...
    async def explain_anomaly(
        self, anomaly_id: int | None = None, *, start: float | None = None, end: float | None = None
    ) -> Explanation: ...
    async def forecast_capacity(self, resource: str, *, horizon: float | None = None) -> Forecast: ...
    async def capacity_report(self, *, horizon: float | None = None) -> CapacityReport: ...
    async def get_recommendations(self) -> list[Recommendation]: ...
    async def anomaly_rate(self, *, since: float, until: float | None = None, bucket: float = 3600) -> AnomalyRate: ...
    async def slow_queries(self, *, since: float, limit: int = 10, source: SlowQuerySource = "auto") -> SlowQueries: ...
    async def recent_errors(self, app: str, *, since: float, limit: int = 50) -> RecentErrors: ...
    async def top_endpoints(
        self, host: str | None = None, *, by: EndpointRanking = "latency", since: float | None = None, limit: int = 10
    ) -> TopEndpoints: ...
    async def get_config(self) -> dict[str, Any]: ...
