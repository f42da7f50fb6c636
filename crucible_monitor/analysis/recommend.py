"""Recommendations: actionable items from anomalies, forecasts, active alerts and the maintenance window.

A pure function of what the Monitor gathers (:data:`RECENT_SECONDS` and :data:`RECENT_LIMIT` say which anomalies);
alerts are read through :class:`ActiveAlert`, which the alert views of
:mod:`crucible_monitor.alerts.operations` satisfy as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from crucible_monitor.schemas import AnomalyView, Forecast, NextTool, Recommendation

__all__ = ["RECENT_LIMIT", "RECENT_SECONDS", "ActiveAlert", "recommendations"]

RECENT_SECONDS = 86400.0
"""Anomalies that ended this long ago or later are recommended on."""
RECENT_LIMIT = 10
"""At most this many anomalies (the newest) are."""

_Severity = Literal["info", "warning", "critical"]
_SEVERITIES: dict[str, _Severity] = {"info": "info", "warning": "warning", "critical": "critical"}
_ORDER = {"critical": 0, "warning": 1, "info": 2}
_FORECAST_DAYS = 30  # forecasts reaching 90 % later than this are not recommended on


class ActiveAlert(Protocol):
    """What a recommendation reads of an active alert (an ``AlertView`` has all of it)."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...


def recommendations(
    anomalies: Sequence[AnomalyView],
    forecasts: Sequence[Forecast],
    alerts: Sequence[ActiveAlert],
    window: Recommendation | None = None,
) -> list[Recommendation]:
    """One item per anomaly, per forecast reaching 90 % within 30 days and per alert, the most severe first.

    ``window`` (the maintenance window of :func:`crucible_monitor.analysis.quiet.maintenance_window`) comes last
    among the items of its severity.
    """
    items = [_from_anomaly(a) for a in anomalies]
    items += [item for f in forecasts if (item := _from_forecast(f)) is not None]
    items += [_from_alert(a) for a in alerts]
    items += [window] if window is not None else []
    return sorted(items, key=lambda r: _ORDER[r.severity])


def _from_anomaly(anomaly: AnomalyView) -> Recommendation:
    severity: _Severity = (
        "critical" if anomaly.ongoing and anomaly.score >= 0.75 else "warning" if anomaly.ongoing else "info"
    )
    return Recommendation(
        severity=severity,
        source="anomaly",
        title=f"Anomaly {'ongoing since' if anomaly.ongoing else 'at'} {anomaly.start} in "
        f"{', '.join(anomaly.series[:2]) or 'the host'}",
        action="Read the explanation: which series moved, the top processes and the events around it.",
        evidence=[anomaly.summary, f"score {anomaly.score} (threshold {anomaly.threshold})"],
        next_tools=[NextTool(tool="explain_anomaly", arguments={"anomaly_id": anomaly.id}, why="the evidence")],
    )


def _from_forecast(forecast: Forecast) -> Recommendation | None:
    days_90 = forecast.thresholds[0].days
    days_full = forecast.thresholds[1].days
    if days_90 is None or days_90 > _FORECAST_DAYS:
        return None
    severity: _Severity = (
        "critical" if days_full is not None and days_full <= 3 else "warning" if days_90 <= 7 else "info"
    )
    return Recommendation(
        severity=severity,
        source="forecast",
        title=f"{forecast.resource} reaches 90 % in about {days_90:g} days",
        action=_capacity_action(forecast.resource),
        evidence=[forecast.note],
        next_tools=[
            NextTool(
                tool="forecast_capacity",
                arguments={"resource": forecast.resource},
                why="the trend, its interval and fit quality",
            )
        ],
    )


def _from_alert(alert: ActiveAlert) -> Recommendation:
    annotations = alert.annotations
    summary = annotations.get("summary") or annotations.get("description") or alert.name
    return Recommendation(
        severity=_SEVERITIES.get(str(alert.severity), "warning"),
        source="alert",
        title=f"Alert {alert.name} is {alert.state or 'active'}",
        action="Find the cause and fix it; acknowledge the alert while you work on it.",
        evidence=[summary] + ([f"value {alert.value}"] if alert.value is not None else []),
        next_tools=[NextTool(tool="get_alert", arguments={"alert_id": alert.id}, why="its history")],
    )


def _capacity_action(resource: str) -> str:
    kind, _, mount = resource.partition(":")
    if kind == "filesystem":
        return f"Free space on {mount} (old logs, caches, backups) or grow the volume before it fills."
    if kind == "inodes":
        return f"Remove many small files on {mount} (sessions, caches, mail queues) before inodes run out."
    return "Find what grows (top processes by memory), fix leaks or add memory before it runs out."
