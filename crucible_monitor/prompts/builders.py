"""The MCP prompts' text: each builder reads what it needs from any Operations and fills its template; text read
from the host (event messages, processes) is fenced as data, as in the tools' results."""

from __future__ import annotations

import json
import string
import time
from importlib import resources

from crucible_monitor.errors import CrucibleError, QueryError
from crucible_monitor.models import iso
from crucible_monitor.operations import Operations
from crucible_monitor.schemas.views import EventGroup, fenced_event, fenced_status

__all__ = ["capacity_report", "daily_health_summary", "explain_spike", "incident_triage"]

_DAY = 86_400
_HOUR = 3_600


def _fill(template: str, **values: object) -> str:
    """A template from this package (``<template>.md``) with ``$names`` filled in (JSON for data)."""
    text = resources.files("crucible_monitor.prompts").joinpath(f"{template}.md").read_text(encoding="utf-8")
    filled = {
        k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), default=str, ensure_ascii=False)
        for k, v in values.items()
    }
    return string.Template(text).substitute(filled)


async def incident_triage(ops: Operations, alert_id: str | None) -> str:
    """Status, the last hour's events and the active alerts, then a guided investigation."""
    status = fenced_status(await ops.status_summary())
    events = await ops.events(since=time.time() - _HOUR, limit=30)
    alerts = await ops.list_alerts()
    return _fill(
        "incident_triage",
        host=status.host,
        now=status.ts,
        alert_clause=f", starting from alert {alert_id}" if alert_id else "",
        status=status.model_dump(mode="json", exclude={"vitals"}),
        events=[g.model_dump(mode="json", exclude={"data"}, exclude_none=True) for g in EventGroup.grouped(events)],
        alerts=[a.model_dump(mode="json", exclude={"fingerprint"}) for a in alerts],
    )


async def capacity_report(ops: Operations, horizon: str, horizon_seconds: float | None) -> str:
    """Usage and 7-day growth per resource, and when each fills within ``horizon`` (as the user wrote it)."""
    status = await ops.status_summary()
    now = time.time()
    growth = {}
    for name in ("filesystem_used_ratio", "memory_used_ratio", "swap_used_ratio"):
        try:
            report = await ops.metrics_report(
                name, start=now - 7 * _DAY, end=now, step=_DAY, max_points=8, max_series=10
            )
        except CrucibleError:
            continue
        for metric_report in report.reports:
            for series in metric_report.series:
                key = name + ("" if not series.labels else f" {series.labels.get('mountpoint', series.labels)}")
                growth[key] = [[ts[:10], value] for ts, value in series.points]
    try:
        capacity = await ops.capacity_report(horizon=horizon_seconds)
        forecasts: object = [
            f.model_dump(mode="json", include={"resource", "current", "slope_per_day", "thresholds", "fit_quality"})
            for f in capacity.forecasts
        ]
    except CrucibleError as exc:
        forecasts = f"not available: {exc}"
    return _fill(
        "capacity_report",
        host=status.host,
        now=status.ts,
        horizon=horizon,
        usage={k: v.human for k, v in status.vitals.items()},
        growth=growth,
        forecasts=forecasts,
    )


async def daily_health_summary(ops: Operations) -> str:
    """The last day: status, events, and the peaks of CPU, memory and load."""
    status = await ops.status_summary()
    now = time.time()
    events = await ops.events(since=now - _DAY, limit=50)
    peaks = {}
    for name in ("cpu_usage_ratio", "memory_used_ratio", "load1"):
        try:
            report = await ops.metrics_report(name, start=now - _DAY, end=now, step=_HOUR, max_points=24)
        except CrucibleError:
            continue
        for metric_report in report.reports:
            for series in metric_report.series[:1]:
                peaks[name] = {"max": series.human["max"], "avg": series.human["avg"]}
    return _fill(
        "daily_health_summary",
        host=status.host,
        now=status.ts,
        status=status.model_dump(mode="json", include={"status", "headline", "findings", "services", "checks"}),
        events=[fenced_event(e).model_dump(mode="json", include={"ts", "kind", "subject", "message"}) for e in events],
        peaks=peaks,
    )


async def explain_spike(ops: Operations, metric: str, at: float) -> str:
    """One metric an hour either side of ``at`` (Unix seconds), and the events in that window."""
    catalogue = {m.name: m for m in await ops.list_metrics()}
    if metric not in catalogue:
        raise QueryError(f"unknown metric {metric!r}; list_metrics shows them")
    report = await ops.metrics_report(metric, start=at - _HOUR, end=at + _HOUR, max_points=60)
    events = await ops.events(since=at - _HOUR, limit=50)
    window = [e for e in events if e.ts <= iso(at + _HOUR)]
    status = await ops.status_summary()
    return _fill(
        "explain_spike",
        host=status.host,
        metric=metric,
        when=iso(at),
        description=catalogue[metric].description,
        unit=report.reports[0].unit if report.reports else catalogue[metric].unit,
        series=[s.model_dump(mode="json") for r in report.reports for s in r.series],
        events=[fenced_event(e).model_dump(mode="json", include={"ts", "kind", "subject", "message"}) for e in window],
    )
