"""The operations every interface offers, local (:class:`~crucible_monitor.monitor.Monitor`) or remote.

:class:`Operations` types them. :data:`~crucible_monitor.operation_table.OPERATIONS` declares each one once with
the classes here: the Monitor method, its HTTP route(s) with typed parameters, the result type, whether it changes
anything and the errors it may raise. The ``/api/v1`` routes are registered from the table
(:mod:`crucible_monitor.server.api`) and :class:`~crucible_monitor.remote.RemoteMonitor` calls through it.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, create_model

from crucible_monitor.config import Scope
from crucible_monitor.errors import CrucibleError
from crucible_monitor.models import Aggregation
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
    PushResult,
    RecentErrors,
    Recommendation,
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
from crucible_monitor.schemas.views import AuditList

__all__ = ["ID_RANGE", "Operation", "Operations", "Param", "ParamKind", "Route", "range_params"]


class Operations(Protocol):
    """What every interface may ask of a monitor, local (:class:`Monitor`) or remote (``RemoteMonitor``)."""

    async def health(self) -> Health: ...
    async def collectors(self) -> list[CollectorStatus]: ...
    async def status_summary(self) -> StatusSummary: ...
    async def system_status(self) -> SystemSnapshot: ...
    async def services(self, state: ServiceState = "all", category: str | None = None) -> list[ServiceStatus]: ...
    async def get_service(self, name: str) -> ServiceDetail: ...
    async def http_checks(self) -> list[CheckResult]: ...
    async def list_metrics(self) -> list[MetricInfo]: ...
    async def push_metrics(self, body: str, *, content_type: str = "text/plain") -> PushResult: ...
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
        self,
        name: str,
        *,
        reason: str,
        actor: str,
        confirmed: bool,
        dry_run: bool = False,
        claimed_by: str | None = None,
    ) -> RestartResult: ...
    async def audit(
        self, *, target: str | None = None, since: float | None = None, limit: int = 100, offset: int = 0
    ) -> AuditList: ...
    async def list_alerts(
        self, *, state: AlertFilter = "active", severity: str | None = None, limit: int = 100
    ) -> list[AlertView]: ...
    async def get_alert(self, alert_id: int) -> AlertDetail: ...
    async def acknowledge_alert(
        self, alert_id: int, *, by: str = "api", note: str | None = None, expires: timedelta | None = None
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


# -- how the table declares an operation -------------------------------------------------------------------------

ParamKind = Literal["plain", "time", "duration", "labels", "actor", "principal", "raw", "media"]
"""How a parameter's wire form becomes the Monitor's value: as is; a time (:data:`~crucible_monitor.params.TIME_FORMS`);
a duration in seconds; a ``k=v,k2=v2`` label filter; the name the caller gives, which the API records after its
token's name (``ops-bot (alice)``); no wire form at all: the token's name (``principal``), filled by the API; or,
for a route that takes a raw body (:attr:`Route.media`), that body as text (``raw``) and its media type (``media``,
the ``Content-Type`` header)."""

ID_RANGE: Mapping[str, int] = {"ge": 1, "le": 2**63 - 1}
"""The constraints of a numeric id: what SQLite can hold."""

_REQUIRED: Any = ...


@dataclass(frozen=True)
class Param:
    """One parameter of a route: the Monitor's argument ``name``, its wire name, type, default and constraints.

    ``type`` and ``default`` are the wire's (what the OpenAPI spec shows: times and durations are text). A parameter
    with ``fills`` is only a shorthand for another (``since`` for ``start``); ``fallback`` is the text used when
    neither is given.
    """

    name: str
    type: Any
    default: Any = _REQUIRED
    where: Literal["path", "query", "body"] = "query"
    kind: ParamKind = "plain"
    wire: str | None = None
    description: str | None = None
    fills: str | None = None
    fallback: str | None = None
    constraints: Mapping[str, Any] = field(default_factory=dict)

    @property
    def wire_name(self) -> str:
        """The name on the wire: the query key, the path segment or the body field."""
        return self.wire or self.name

    @property
    def required(self) -> bool:
        """Whether the route needs it."""
        return self.default is _REQUIRED


@dataclass(frozen=True)
class Route:
    """One HTTP form of an operation; ``body`` is the request model whose fields the body params name."""

    method: Literal["GET", "POST", "DELETE"]
    path: str
    doc: str
    tag: str
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    status_code: int = 200
    media: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """For a raw body (text the Monitor reads itself, not JSON fields): each media type it may be (the default
    first) with its OpenAPI schema; the API answers 415 to any other and 413 to a body over ``max_body`` bytes."""
    max_body: int = 32 << 20

    @property
    def path_params(self) -> tuple[Param, ...]:
        """The parameters in the path."""
        return tuple(p for p in self.params if p.where == "path")


@dataclass(frozen=True)
class Operation:
    """A Monitor method offered over HTTP: its routes (the first whose path parameters are all given serves a call),
    result type, whether it changes anything, the errors it may raise, whether it needs a token at all and the
    scope that token needs (``read`` unless declared; the API, the MCP tools and resources all enforce it)."""

    name: str
    result: Any
    routes: tuple[Route, ...]
    read_only: bool = True
    errors: tuple[type[CrucibleError], ...] = ()
    public: bool = False
    scope: Scope = "read"

    def arguments(self) -> list[str]:
        """The Monitor's argument names in order (shorthands left out)."""
        names: list[str] = []
        for route in self.routes:
            names += [p.name for p in route.params if p.fills is None and p.name not in names]
        return names


_RANGE_HELP = {
    "labels": "Label filter: k=v,k2=v2 (exact matches).",
    "start": "ISO 8601, Unix seconds, or a duration ago (1h).",
    "end": "Same forms as start; default now.",
    "since": "Shorthand for start=<duration> ago, e.g. 1h.",
    "step": "Bucket width: 10s, 1m, 1h; default ~300 buckets.",
    "agg": "Default: rate for counters, avg for gauges.",
}


def range_params(described: bool) -> tuple[Param, ...]:
    """labels/start/end/since/step/agg, as history and the report take them (the report's are less described)."""
    notes = _RANGE_HELP if described else {"labels": "Label filter: k=v,k2=v2."}
    text = str | None
    return (
        Param("labels", text, None, kind="labels", description=notes.get("labels")),
        Param("start", text, None, kind="time", fallback="1h", description=notes.get("start")),
        Param("end", text, None, kind="time", fallback="now", description=notes.get("end")),
        Param("since", text, None, kind="time", fills="start", description=notes.get("since")),
        Param("step", text, None, kind="duration", description=notes.get("step")),
        Param("agg", Aggregation | None, None, description=notes.get("agg")),
    )


@functools.cache
def listed_model(result: Any) -> type[BaseModel] | None:
    """For an operation that returns ``list[X]``: the model of its HTTP answer, ``{items, total, limit, truncated}``
    (a list says how much of what matched it shows); None for any other result."""
    if typing.get_origin(result) is not list:
        return None
    (item,) = typing.get_args(result)
    return create_model(
        f"{getattr(item, '__name__', 'Item')}List",
        __doc__=f"A list of {getattr(item, '__name__', 'items')}: how many matched, how many are shown.",
        items=(list[item], ...),  # type: ignore[valid-type]
        total=(int, Field(description="Entries that matched (counted up to the limit's maximum).")),
        limit=(int, ...),
        truncated=(bool, Field(description="True when fewer entries are shown than matched.")),
    )
