"""What the MCP tools return where it differs from the operations' results: ISO times, units with human forms,
and lists wrapped in a model (with a hint to the next tool) so that every tool has an output schema.

Every list says how much it holds: ``total`` entries matched (counted up to :data:`SCAN`), ``limit`` were asked for,
``truncated`` when the list shows fewer than matched. Events repeated with the same kind, subject and message are one
entry with their ``count`` and the time each was first and last seen.

Text read from the host (log lines, command lines, descriptions, error texts, event messages) is fenced as data
(:func:`crucible_monitor.untrusted.fence`) here, where the model's view is built; the operations keep it raw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self, TypeVar

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from crucible_monitor.models import iso
from crucible_monitor.schemas.agent import AuditView
from crucible_monitor.schemas.alerts import AlertView, SilenceView, TransitionView
from crucible_monitor.schemas.analysis import AnomalyView, Explanation, ProcessRef, Recommendation
from crucible_monitor.schemas.applications import RecentErrors
from crucible_monitor.schemas.fleet import HostStatus
from crucible_monitor.schemas.metrics import MetricInfo, MetricsReport
from crucible_monitor.schemas.readings import CheckResult, EventRef, ServiceStatus
from crucible_monitor.schemas.services import EventView, LogTail, ServiceDetail
from crucible_monitor.schemas.system import ProcessView, Quantity, StatusSummary
from crucible_monitor.units import human
from crucible_monitor.untrusted import COMMAND_CHARS, fence, fenced

__all__ = [
    "AlertList",
    "AnomalyList",
    "AuditList",
    "DATA_DESCRIBED",
    "EventGroup",
    "Listed",
    "CheckList",
    "CheckView",
    "EventList",
    "MetricCatalogue",
    "MetricEntry",
    "SCAN",
    "RecommendationList",
    "ServiceList",
    "ServiceView",
    "SilenceList",
    "TransitionList",
    "fenced_detail",
    "fenced_errors",
    "fenced_event",
    "fenced_explanation",
    "fenced_host",
    "fenced_status",
    "fenced_tail",
    "sparkline",
    "summarised",
]

_View = TypeVar("_View", bound=BaseModel)
_Item = TypeVar("_Item")

SCAN = 1000
"""Entries a list tool reads (to count, group and rank them) before it keeps ``limit``: the operations' maximum."""


class Listed(BaseModel):
    """How much of what matched a list shows."""

    total: int = Field(description=f"Entries that matched (counted up to {SCAN:,}; audit records all).")
    limit: int
    truncated: bool = Field(description="True when fewer entries are shown than matched.")

    @staticmethod
    def counts(items: Sequence[object], limit: int, *, cap: int = SCAN) -> dict[str, int | bool]:
        """``total``, ``limit`` and ``truncated`` for ``items`` read (``cap`` at most) of which ``limit`` are kept."""
        return {"total": len(items), "limit": limit, "truncated": len(items) > limit or len(items) >= cap}


def _view(view: type[_View], source: BaseModel, **converted: object) -> _View:
    """``view`` of ``source``: the fields it has under the same name as they are, the others as ``converted``."""
    same = source.model_dump(include=set(view.model_fields) & set(type(source).model_fields))
    return view.model_validate({**same, **converted})


def _quantity(value: float | None, unit: str) -> Quantity | None:
    return None if value is None else Quantity(value=value, unit=unit, human=human(value, unit))


_BARS = "▁▂▃▄▅▆▇█"
SPARKLINE_CHARS = 20


def sparkline(values: Sequence[float], width: int = SPARKLINE_CHARS) -> str:
    """``values`` as at most ``width`` bars (each the mean of its share of the values), lowest ▁, highest █."""
    if not values:
        return ""
    chunks = [values[i * len(values) // width : (i + 1) * len(values) // width] for i in range(width)]
    means = [sum(chunk) / len(chunk) for chunk in chunks if chunk]
    low, high = min(means), max(means)
    if high == low:
        return _BARS[0] * len(means)
    return "".join(_BARS[round((m - low) / (high - low) * (len(_BARS) - 1))] for m in means)


def summarised(report: MetricsReport) -> MetricsReport:
    """``report`` with each series' points replaced by their sparkline (the statistics stay), and the metrics
    without data named in the hint instead of listed."""
    empty = [metric.metric for metric in report.reports if not metric.series]
    reports = [
        metric.model_copy(
            update={
                "series": [
                    series.model_copy(update={"points": [], "sparkline": sparkline([v for _, v in series.points])})
                    for series in metric.series
                ]
            }
        )
        for metric in report.reports
        if metric.series
    ]
    hint = report.hint + "; points=true for the [time, value] points"
    if empty:
        hint += f"; no data in the range: {', '.join(empty)}"
    return report.model_copy(update={"reports": reports, "hint": hint})


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

    @classmethod
    def of(cls, status: ServiceStatus) -> Self:
        """The view of a collected service status."""
        return _view(
            cls,
            status,
            since=iso(status.since) if status.since else None,
            memory=_quantity(status.memory_bytes, "bytes"),
            description=fenced(status.description),
        )


class ServiceList(Listed):
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

    @classmethod
    def of(cls, check: CheckResult) -> Self:
        """The view of a check's latest result."""
        return _view(
            cls,
            check,
            error=fenced(check.error),
            latency=_quantity(check.duration_seconds, "seconds"),
            checked_at=iso(check.checked_at),
            certificate_expires=iso(check.tls_expires_at) if check.tls_expires_at else None,
            certificate_days_left=round(check.tls_days_left, 2) if check.tls_days_left is not None else None,
            certificate_issuer=check.tls_issuer,
        )


class CheckList(Listed):
    """HTTP checks, failing first."""

    checks: list[CheckView]
    hint: str


DATA_DESCRIBED = frozenset({"textfile", "command", "push"})
"""Collectors whose metrics' descriptions come from what they read (a ``# HELP`` line, a pushed ``help``)."""


class MetricEntry(BaseModel):
    """A metric of the catalogue; its description and collector only when asked for (or searched)."""

    name: str
    kind: str
    unit: str
    labels: list[str]
    description: str | None = None
    collector: str | None = None

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """The fields that are set: a catalogue without descriptions reads no ``null`` twice per metric."""
        return {k: v for k, v in handler(self).items() if v is not None}

    @classmethod
    def of(cls, info: MetricInfo, *, described: bool) -> Self:
        """The entry of ``info``, with its description and collector when ``described`` (fenced when it is host
        text: from a collector of :data:`DATA_DESCRIBED`)."""
        entry = cls.model_validate(info.model_dump(exclude=None if described else {"description", "collector"}))
        if described and info.collector in DATA_DESCRIBED:
            entry.description = fence(info.description)
        return entry


class MetricCatalogue(Listed):
    """Metrics that can be asked for, and the groups (prefixes) get_metrics accepts."""

    metrics: list[MetricEntry]
    groups: list[str]


class EventGroup(EventView):
    """An event, or identical ones (same kind, subject and message) repeated: ``ts`` and ``data`` are the newest's."""

    count: int = 1
    first_seen: str | None = Field(None, description="ISO 8601: the oldest of the group, when count > 1.")

    @classmethod
    def grouped(cls, events: Sequence[EventView]) -> list[Self]:
        """``events`` (newest first) with repeats folded into their newest, in the order each group last occurred."""
        groups: dict[tuple[str, str, str], Self] = {}
        for event in events:
            key = (event.kind, event.subject, event.message)
            if key in groups:
                group = groups[key]
                group.count += 1
                group.first_seen = event.ts
            else:
                groups[key] = cls.model_validate(fenced_event(event).model_dump())
        return list(groups.values())


class EventList(Listed):
    """Events, newest first; ``total`` counts events, each group counts once against ``limit``."""

    events: list[EventGroup]


class AlertList(Listed):
    """Alerts, newest first."""

    alerts: list[AlertView]
    hint: str


class TransitionList(Listed):
    """Alert transitions, newest first."""

    transitions: list[TransitionView]


class SilenceList(Listed):
    """Silences and maintenance windows."""

    silences: list[SilenceView]


class AnomalyList(Listed):
    """Anomalies, newest first."""

    anomalies: list[AnomalyView]
    hint: str


class RecommendationList(Listed):
    """Recommendations, most severe first."""

    recommendations: list[Recommendation]


class AuditList(Listed):
    """A page of the actions attempted on the host, newest first: ``limit`` records after skipping ``offset``."""

    records: list[AuditView]
    offset: int = 0

    @classmethod
    def page(cls, records: list[AuditView], total: int, limit: int, offset: int) -> AuditList:
        """The page of ``records`` (``limit`` at most, after ``offset``) of ``total`` that matched."""
        return cls(records=records, total=total, limit=limit, offset=offset, truncated=offset + len(records) < total)


_Event = TypeVar("_Event", bound=EventRef)
_Process = TypeVar("_Process", ProcessView, ProcessRef)


def fenced_event(event: _Event) -> _Event:
    """``event`` with its message (which may quote an error or a log line) and the texts of its data fenced."""
    update: dict[str, object] = {"message": fence(event.message)}
    if isinstance(event, EventView):
        update["data"] = {k: fence(v) if isinstance(v, str) else v for k, v in event.data.items()}
    return event.model_copy(update=update)


def fenced_tail(tail: LogTail) -> LogTail:
    """``tail`` with each line fenced."""
    return tail.model_copy(update={"lines": [fence(line) for line in tail.lines]})


def fenced_detail(detail: ServiceDetail) -> ServiceDetail:
    """``detail`` with the description, the events' messages, the log lines and the log's error fenced."""
    service = detail.service.model_copy(update={"description": fenced(detail.service.description)})
    return detail.model_copy(
        update={
            "service": service,
            "recent_events": [fenced_event(e) for e in detail.recent_events],
            "log": fenced_tail(detail.log) if detail.log else None,
            "log_error": fenced(detail.log_error),
        }
    )


def fenced_errors(errors: RecentErrors) -> RecentErrors:
    """``errors`` with the log entries' messages and exceptions, the failed jobs' exceptions and the problems
    fenced."""
    return errors.model_copy(
        update={
            "errors": [
                e.model_copy(update={"message": fence(e.message), "exception": fenced(e.exception)})
                for e in errors.errors
            ],
            "failed_jobs": [
                j.model_copy(
                    update={"exception": fenced(j.exception), "exception_message": fenced(j.exception_message)}
                )
                for j in errors.failed_jobs
            ],
            "problems": [fence(p) for p in errors.problems],
        }
    )


def _fenced_processes(processes: Sequence[_Process]) -> list[_Process]:
    return [p.model_copy(update={"name": fence(p.name), "cmdline": fence(p.cmdline, COMMAND_CHARS)}) for p in processes]


def fenced_status(status: StatusSummary) -> StatusSummary:
    """``status`` with what the host said in findings, and the top processes' names and command lines, fenced."""
    return status.model_copy(
        update={
            "findings": [f.model_copy(update={"detail": fenced(f.detail)}) for f in status.findings],
            "top_by_cpu": _fenced_processes(status.top_by_cpu),
            "top_by_memory": _fenced_processes(status.top_by_memory),
        }
    )


def fenced_host(host: HostStatus) -> HostStatus:
    """A fleet host's headline with what its host said in its worst finding fenced, as in ``fenced_status``."""
    if host.worst is None or host.worst.detail is None:
        return host
    return host.model_copy(update={"worst": host.worst.model_copy(update={"detail": fenced(host.worst.detail)})})


def fenced_explanation(explanation: Explanation) -> Explanation:
    """``explanation`` with its events' messages and its processes' names and command lines fenced."""
    return explanation.model_copy(
        update={
            "events": [fenced_event(e) for e in explanation.events],
            "top_processes_by_cpu": _fenced_processes(explanation.top_processes_by_cpu),
            "top_processes_by_memory": _fenced_processes(explanation.top_processes_by_memory),
        }
    )
