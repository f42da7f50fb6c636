"""What the MCP tools return where it differs from the operations' results: ISO times, units with human forms,
and lists wrapped in a model (with a hint to the next tool) so that every tool has an output schema."""

from __future__ import annotations

from typing import Self, TypeVar

from pydantic import BaseModel, Field

from crucible_monitor.models import iso
from crucible_monitor.schemas.agent import AuditView
from crucible_monitor.schemas.alerts import AlertView, SilenceView, TransitionView
from crucible_monitor.schemas.analysis import AnomalyView, Recommendation
from crucible_monitor.schemas.metrics import MetricInfo
from crucible_monitor.schemas.readings import CheckResult, ServiceStatus
from crucible_monitor.schemas.services import EventView
from crucible_monitor.schemas.system import Quantity
from crucible_monitor.units import human

__all__ = [
    "AlertList",
    "AnomalyList",
    "AuditList",
    "CheckList",
    "CheckView",
    "EventList",
    "MetricCatalogue",
    "RecommendationList",
    "ServiceList",
    "ServiceView",
    "SilenceList",
    "TransitionList",
]

_View = TypeVar("_View", bound=BaseModel)


def _view(view: type[_View], source: BaseModel, **converted: object) -> _View:
    """``view`` of ``source``: the fields it has under the same name as they are, the others as ``converted``."""
    same = source.model_dump(include=set(view.model_fields) & set(type(source).model_fields))
    return view.model_validate({**same, **converted})


def _quantity(value: float | None, unit: str) -> Quantity | None:
    return None if value is None else Quantity(value=value, unit=unit, human=human(value, unit))


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
        )


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

    @classmethod
    def of(cls, check: CheckResult) -> Self:
        """The view of a check's latest result."""
        return _view(
            cls,
            check,
            latency=_quantity(check.duration_seconds, "seconds"),
            checked_at=iso(check.checked_at),
            certificate_expires=iso(check.tls_expires_at) if check.tls_expires_at else None,
            certificate_days_left=round(check.tls_days_left, 2) if check.tls_days_left is not None else None,
            certificate_issuer=check.tls_issuer,
        )


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
