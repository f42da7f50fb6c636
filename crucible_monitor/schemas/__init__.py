"""What the Monitor's operations return and take: pydantic models shared by the HTTP API, MCP, the CLI and
RemoteMonitor, and the result types the collectors produce for the layers above.

Import from here (``from crucible_monitor.schemas import X``); the modules split the models by subject:

- :mod:`~crucible_monitor.schemas.readings`: what collectors and ``state.db`` produce (checks, processes, services,
  events);
- :mod:`~crucible_monitor.schemas.agent`: collectors' health, storage, config changes, audit records;
- :mod:`~crucible_monitor.schemas.system`: system readings and the status summary;
- :mod:`~crucible_monitor.schemas.metrics`: the catalogue, history and metric reports;
- :mod:`~crucible_monitor.schemas.services`: service details, log tails, restarts, event views;
- :mod:`~crucible_monitor.schemas.applications`: MySQL, Laravel and access-log drill-downs;
- :mod:`~crucible_monitor.schemas.alerts`: alert, transition and silence views and requests;
- :mod:`~crucible_monitor.schemas.analysis`: anomalies, explanations, forecasts, recommendations;
- :mod:`~crucible_monitor.schemas.views`: the MCP tools' compact views (imported from there, not re-exported).
"""

from __future__ import annotations

from crucible_monitor.schemas.agent import AuditView, BlindSpotView, CollectorStatus, ConfigUpdate, Health, StorageView
from crucible_monitor.schemas.alerts import (
    Acknowledgement,
    AcknowledgeRequest,
    AlertDetail,
    AlertFilter,
    AlertState,
    AlertView,
    Recurrence,
    SilenceRequest,
    SilenceView,
    TransitionKind,
    TransitionView,
    Weekday,
)
from crucible_monitor.schemas.analysis import (
    AnomalyRate,
    AnomalyScore,
    AnomalyView,
    CapacityReport,
    ContributingSeries,
    Explanation,
    FillForecast,
    FitQuality,
    Forecast,
    ModelInfo,
    NextTool,
    ProcessRef,
    RateBucket,
    Recommendation,
    ScoreRun,
    SimilarAnomaly,
    ThresholdEta,
)
from crucible_monitor.schemas.applications import (
    EndpointRanking,
    EndpointStats,
    ExceptionCount,
    FailedJob,
    LogError,
    RecentErrors,
    SlowQueries,
    SlowQuerySource,
    StatementDigest,
    TopEndpoints,
)
from crucible_monitor.schemas.metrics import (
    HistorySeries,
    MetricHistory,
    MetricInfo,
    MetricReport,
    MetricsReport,
    SeriesReport,
)
from crucible_monitor.schemas.readings import (
    CheckResult,
    EventRef,
    FailureKind,
    Manager,
    ProcessInfo,
    ProcessSnapshot,
    ServiceStatus,
)
from crucible_monitor.schemas.services import (
    EventView,
    LogTail,
    RestartBody,
    RestartResult,
    ServiceDetail,
    ServiceState,
)
from crucible_monitor.schemas.system import (
    CpuView,
    DiskView,
    FilesystemView,
    Finding,
    InterfaceView,
    MemoryView,
    ProcessView,
    Quantity,
    StatusSummary,
    SystemSnapshot,
)

__all__ = [
    "AnomalyRate",
    "AnomalyScore",
    "AnomalyView",
    "CapacityReport",
    "ContributingSeries",
    "Explanation",
    "FillForecast",
    "FitQuality",
    "Forecast",
    "ModelInfo",
    "NextTool",
    "ProcessRef",
    "RateBucket",
    "Recommendation",
    "ScoreRun",
    "SimilarAnomaly",
    "ThresholdEta",
    "AcknowledgeRequest",
    "Acknowledgement",
    "AlertDetail",
    "AlertFilter",
    "AlertState",
    "AlertView",
    "AuditView",
    "BlindSpotView",
    "CheckResult",
    "CollectorStatus",
    "ConfigUpdate",
    "CpuView",
    "DiskView",
    "EndpointRanking",
    "EndpointStats",
    "EventRef",
    "EventView",
    "ExceptionCount",
    "FailedJob",
    "FailureKind",
    "FilesystemView",
    "Finding",
    "Health",
    "HistorySeries",
    "InterfaceView",
    "LogError",
    "LogTail",
    "Manager",
    "MemoryView",
    "MetricHistory",
    "MetricInfo",
    "MetricReport",
    "MetricsReport",
    "ProcessInfo",
    "ProcessSnapshot",
    "ProcessView",
    "Quantity",
    "RecentErrors",
    "Recurrence",
    "RestartBody",
    "RestartResult",
    "SeriesReport",
    "ServiceDetail",
    "ServiceState",
    "ServiceStatus",
    "SilenceRequest",
    "SilenceView",
    "SlowQueries",
    "SlowQuerySource",
    "StatementDigest",
    "StatusSummary",
    "StorageView",
    "SystemSnapshot",
    "TopEndpoints",
    "TransitionKind",
    "TransitionView",
    "Weekday",
]
