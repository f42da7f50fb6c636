"""The one-call health summary: what is wrong, since when, how bad, the newest incident first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from crucible_monitor.findings import RECENT_SECONDS, Context, Judgment, Sources, judge
from crucible_monitor.findings.incidents import alert_subject
from crucible_monitor.findings.sources import iso_or_none, quantity
from crucible_monitor.history import baseline, rise, since_above
from crucible_monitor.models import EventKind, iso
from crucible_monitor.schemas import (
    AlertView,
    AnomalyView,
    CheckResult,
    CollectorStatus,
    Finding,
    GpuReading,
    ProcessInfo,
    ProcessView,
    Quantity,
    RecoveredView,
    ServiceStatus,
    StatusSummary,
    SystemSnapshot,
)
from crucible_monitor.schemas.readings import UNSETTLED_STATES
from crucible_monitor.units import human_ratio
from crucible_monitor.untrusted import trim

if TYPE_CHECKING:
    from crucible_monitor.agent import Agent
    from crucible_monitor.storage.state import StoredEvent

__all__ = ["Context", "gather_context", "summarize"]

_HEADLINE_INCIDENTS = 3


def summarize(
    system: SystemSnapshot,
    services: Sequence[ServiceStatus],
    checks: Sequence[CheckResult],
    collectors: Sequence[CollectorStatus],
    context: Context,
    gpus: Sequence[GpuReading] = (),
) -> StatusSummary:
    """Incidents (cause first, newest first), what someone is on, what recovered, vital signs and next steps."""
    judgment = judge(Sources(system, services, checks, collectors, context, gpus))
    findings = judgment.findings
    status = (
        "critical"
        if any(f.severity == "critical" for f in findings)
        else ("warning" if any(f.severity == "warning" for f in findings) else "ok")
    )
    down = sum(1 for s in services if s.settled and not s.up)
    failing = sum(1 for c in checks if not c.ok)
    return StatusSummary(
        host=system.host,
        ts=system.ts or "",
        status=status,
        headline=_headline(judgment, system, [c.name for c in collectors if c.ok and c.last_success is None]),
        findings=findings,
        incidents=len(judgment.incidents),
        handled=judgment.handled,
        recovered=judgment.recovered,
        vitals=_vitals(system),
        services={"total": len(services), "up": len(services) - down, "down": down},
        checks={"total": len(checks), "failing": failing},
        alerts={
            "firing": sum(1 for a in context.alerts if a.state == "firing"),
            "pending": sum(1 for a in context.alerts if a.state == "pending"),
            "acknowledged": sum(1 for a in context.alerts if a.acknowledgement is not None),
        },
        top_by_cpu=_processes(system.top_processes.by_cpu if system.top_processes else []),
        top_by_memory=_processes(system.top_processes.by_memory if system.top_processes else []),
        hints=_hints(judgment.incidents),
    )


_CMDLINE_CHARS = 58  # the summary names a process (60 characters fenced); explain_anomaly says more


def _processes(processes: Sequence[ProcessInfo], count: int = 3) -> list[ProcessView]:
    """The first ``count`` processes, each command line cut to ``_CMDLINE_CHARS`` (ending in "…" where cut)."""
    return [
        ProcessView(
            pid=p.pid,
            name=p.name,
            user=p.user,
            cmdline=trim(p.cmdline, _CMDLINE_CHARS),
            cpu=quantity(round(p.cpu_cores, 2), "cores") if p.cpu_cores is not None else None,
            memory=quantity(p.memory_bytes, "bytes"),
            started_at=iso_or_none(p.started_at),
        )
        for p in processes[:count]
    ]


def _vitals(system: SystemSnapshot) -> dict[str, Quantity]:
    vitals: dict[str, Quantity] = {}
    if system.cpu.usage_ratio is not None:
        vitals["cpu"] = quantity(system.cpu.usage_ratio, "ratio")
    if system.memory.used_ratio is not None:
        vitals["memory"] = quantity(system.memory.used_ratio, "ratio")
    if system.memory.used_bytes is not None:
        vitals["memory_used"] = quantity(system.memory.used_bytes, "bytes")
    if system.memory.swap_used_ratio is not None:
        vitals["swap"] = quantity(system.memory.swap_used_ratio, "ratio")
    for window, value in system.load.items():
        vitals[f"load_{window}"] = quantity(value, "")
    for fs in system.filesystems:
        if fs.used_ratio is not None:
            vitals[f"disk {fs.mountpoint}"] = quantity(fs.used_ratio, "ratio")
    if system.uptime_seconds is not None:
        vitals["uptime"] = quantity(system.uptime_seconds, "seconds")
    return vitals


def _headline(judgment: Judgment, system: SystemSnapshot, unread: Sequence[str]) -> str:
    """The newest three incidents, each by its cause; "All clear" only when nothing is wrong and every collector
    has read its sources."""
    serious = [f for f in judgment.incidents if f.severity != "info"]
    if not serious and unread:
        return f"Nothing wrong seen yet, but not read yet: {', '.join(unread)} (their first collection is pending)."
    if not serious:
        cpu = human_ratio(system.cpu.usage_ratio) if system.cpu.usage_ratio is not None else "unknown"
        memory = human_ratio(system.memory.used_ratio) if system.memory.used_ratio is not None else "unknown"
        handled = f"; {len(judgment.handled)} handled" if judgment.handled else ""
        return f"All clear: CPU {cpu}, memory {memory}, no service down, no check failing{handled}."
    symptoms = {lead.subject: sum(1 for f in judgment.findings if f.caused_by == lead.subject) for lead in serious}
    parts = [
        f"{f.subject}: {f.problem}" + (f" (+{symptoms[f.subject]} symptoms)" if symptoms[f.subject] else "")
        for f in serious[:_HEADLINE_INCIDENTS]
    ]
    more = f" (+{len(serious) - _HEADLINE_INCIDENTS} more)" if len(serious) > _HEADLINE_INCIDENTS else ""
    unseen = [
        f.subject.removeprefix("collector:")
        for f in serious[_HEADLINE_INCIDENTS:]
        if f.subject.startswith("collector:")
    ]
    blind = f"; blind: {', '.join(unseen)}" if unseen else ""
    noun = "incident" if len(serious) == 1 else "incidents"
    return f"{len(serious)} {noun}: " + "; ".join(parts) + more + blind


def _hints(incidents: Sequence[Finding]) -> list[str]:
    hints = list(dict.fromkeys(f.hint for f in incidents[:5]))
    hints.append("get_events(since='1h') shows state changes, restarts and check failures in order")
    return hints


_UP_STATES = frozenset({"running", "active"})


def gather_context(agent: Agent, alerts: Sequence[AlertView], resolved: Sequence[AlertView]) -> Context:
    """What the findings read besides the current readings, from the agent's store, state and config."""
    now = agent.clock()
    store, state = agent.store, agent.running.state
    restarts: dict[str, int] = {}
    failing_since: dict[str, float] = {}
    for stored in state.events(since=now - RECENT_SECONDS, kinds=[EventKind.SERVICE_RESTART], limit=1000):
        count = int(stored.event.data.get("count", 1))
        restarts[stored.event.subject] = restarts.get(stored.event.subject, 0) + count
    for stored in state.events(kinds=[EventKind.CHECK_FAILED], limit=1000):
        failing_since.setdefault(stored.event.subject, stored.event.ts)
    stats = store.stats()
    return Context(
        alerts=alerts,
        thresholds=agent.config.alerts,
        restarts_last_hour=restarts,
        check_failing_since=failing_since,
        since_above=lambda metric, labels, threshold: since_above(store, metric, labels, threshold, now),
        held_samples=stats.held_rows,
        held_since=stats.held_since,
        dropped_samples=stats.dropped_rows,
        now=now,
        latest=store.latest(),
        baseline=lambda metric, labels: baseline(store, metric, labels, now),
        rise=lambda metric, labels, seconds: rise(store, metric, labels, seconds, now),
        recovered=_recovered(state.events(since=now - RECENT_SECONDS, kinds=_RECOVERY_KINDS, limit=200), resolved, now),
        anomalies=_ongoing_anomalies(agent, now),
        memory=agent.recoveries,
        fresh_seconds=3 * agent.config.agent.collect_interval.total_seconds(),
    )


_RECOVERY_KINDS = (EventKind.CHECK_RECOVERED, EventKind.COLLECTOR_RECOVERED, EventKind.SERVICE_STATE)
_RECOVERY_PREFIX = {
    EventKind.CHECK_RECOVERED: "check",
    EventKind.COLLECTOR_RECOVERED: "collector",
    EventKind.SERVICE_STATE: "service",
}


def _recovered(events: Sequence[StoredEvent], resolved: Sequence[AlertView], now: float) -> list[RecoveredView]:
    """What ended in the last 15 minutes, newest first, once per subject: checks and collectors that recovered,
    services that came back up, alerts that resolved."""
    found: list[tuple[float, RecoveredView]] = []
    for stored in events:
        event = stored.event
        if event.kind is EventKind.SERVICE_STATE and (
            event.data.get("to") not in _UP_STATES or event.data.get("from") in UNSETTLED_STATES
        ):
            continue  # a start (starting → running) is no recovery
        subject = f"{_RECOVERY_PREFIX[event.kind]}:{event.subject}"
        found.append((event.ts, RecoveredView(subject=subject, what=event.message, at=iso(event.ts))))
    for alert in resolved:
        at = datetime.fromisoformat(alert.resolved_at).timestamp() if alert.resolved_at else None
        if at is not None and now - at <= RECENT_SECONDS:
            what = f"alert {alert.name} resolved: {alert.annotations.get('summary') or alert.name}"
            found.append((at, RecoveredView(subject=alert_subject(alert), what=what, at=iso(at))))
    seen: set[str] = set()
    out = []
    for _, view in sorted(found, key=lambda pair: -pair[0]):
        if view.subject not in seen:
            seen.add(view.subject)
            out.append(view)
    return out


def _ongoing_anomalies(agent: Agent, now: float) -> list[AnomalyView]:
    analysis = agent.running.analysis
    if analysis is None:
        return []
    return [a for a in analysis.list_anomalies(since=now - RECENT_SECONDS, limit=20) if a.ongoing]
