"""From findings to incidents: alerts folded into what they repeat, symptoms tied to their cause, the new first.

Known dependencies, deepest first: a failing check or a virtual host answering 5xx follows from a php-fpm service down,
else its pool not answering (``collector:php_fpm``, ``php_fpm:<pool>``), else the web server down, else the
database; a pool from its php-fpm service; a queue or an app's failed jobs from its workers (``queue`` services),
else the database; CPU, load and CPU pressure from a process pegging a core; memory, swap and memory pressure from a
process whose memory grows; an anomaly of CPU or memory from that process too. The cause leads its incident, at the
worst severity of its symptoms."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from crucible_monitor.findings.sources import RECENT_SECONDS, Sources
from crucible_monitor.schemas import AlertView, Finding, HandledView

__all__ = ["fold_alerts", "link_causes", "merge_subjects", "order"]

_SEVERITY = {"critical": 0, "warning": 1, "info": 2}
_LABEL_SUBJECTS = (
    ("service", "service:{}"),
    ("check", "check:{}"),
    ("mountpoint", "filesystem:{}"),
    ("vhost", "vhost:{}"),
    ("pool", "php_fpm:{}"),
)
_RESOURCES = {"cpu": "cpu", "memory": "memory", "disk": "filesystem:{mountpoint}"}


def merge_subjects(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per subject: the worst first, the others' problems after it."""
    merged: dict[str, Finding] = {}
    for finding in sorted(findings, key=lambda f: _SEVERITY[f.severity]):
        known = merged.get(finding.subject)
        merged[finding.subject] = (
            finding if known is None else known.model_copy(update={"problem": f"{known.problem}; {finding.problem}"})
        )
    return list(merged.values())


def alert_subject(alert: AlertView) -> str:
    """The finding subject an alert speaks of (``alert:<name>`` when it names none)."""
    resource = alert.labels.get("resource")
    if resource in _RESOURCES:
        return _RESOURCES[resource].format(mountpoint=alert.labels.get("mountpoint", ""))
    for label, subject in _LABEL_SUBJECTS:
        if label in alert.labels:
            return subject.format(alert.labels[label])
    return f"alert:{alert.name}"


def _handling(alert: AlertView, subject: str, problem: str) -> HandledView | None:
    if alert.acknowledgement is not None:
        ack = alert.acknowledgement
        return HandledView(subject=subject, problem=problem, how="acknowledged", by=ack.by, until=ack.expires_at)
    if alert.silenced_by:
        return HandledView(subject=subject, problem=problem, how="silenced", by=", ".join(alert.silenced_by))
    if alert.silenced_upstream:
        upstream = ", ".join(alert.silenced_upstream)
        return HandledView(subject=subject, problem=problem, how="silenced", by=f"alertmanager ({upstream})")
    if alert.inhibited:
        return HandledView(subject=subject, problem=problem, how="inhibited")
    return None


def fold_alerts(findings: Sequence[Finding], alerts: Sequence[AlertView]) -> tuple[list[Finding], list[HandledView]]:
    """Each firing alert joins the finding it repeats (or becomes one); what someone is on moves to ``handled``."""
    kept = list(findings)
    first: dict[str, int] = {}
    for index, finding in enumerate(kept):
        first.setdefault(finding.subject, index)
    extra: list[Finding] = []
    handled: dict[str, HandledView] = {}
    for alert in alerts:
        if alert.state != "firing":
            continue
        subject = alert_subject(alert)
        summary = alert.annotations.get("summary") or alert.name
        known = kept[first[subject]] if subject in first else None
        handling = _handling(alert, subject, known.problem if known else summary)
        if handling is not None:
            handled.setdefault(subject, handling)
        elif known is not None:
            worse = "critical" if "critical" in (known.severity, alert.severity) else known.severity
            kept[first[subject]] = known.model_copy(update={"alert": f"{alert.name} #{alert.id}", "severity": worse})
        else:
            extra.append(
                Finding(
                    severity="critical" if alert.severity == "critical" else "warning",
                    subject=subject,
                    problem=summary,
                    since=alert.fired_at or alert.active_since,
                    hint=f"get_alert(alert_id={alert.id}) for its history; acknowledge_alert when someone is on it",
                    alert=f"{alert.name} #{alert.id}",
                )
            )
    return [f for f in (*kept, *extra) if f.subject not in handled], list(handled.values())


def link_causes(findings: Sequence[Finding], sources: Sources) -> list[Finding]:
    """``findings`` with ``caused_by`` set to the root of each symptom's cause, and each root at its worst."""
    category = {f"service:{s.name}": s.category for s in sources.services}
    subjects = [f.subject for f in findings]

    def first(test: Callable[[str], bool]) -> str | None:
        return next((s for s in subjects if test(s)), None)

    php_service = first(lambda s: category.get(s) == "php")
    pool = first(lambda s: s == "collector:php_fpm" or s.startswith("php_fpm:"))
    web = first(lambda s: category.get(s) == "web")
    database = first(lambda s: category.get(s) == "database" or s in ("collector:mysql", "mysql"))
    workers = first(lambda s: category.get(s) == "queue")
    problems = {f.subject: f.problem for f in findings}
    busy = first(lambda s: s.startswith("process:") and " cores" in problems[s])
    growing = first(lambda s: s.startswith("process:") and " grew from " in problems[s])

    def cause(subject: str) -> str | None:
        chain: tuple[str | None, ...]
        if subject.startswith(("check:", "vhost:")):
            chain = (php_service, pool, web, database)
        elif subject == "collector:php_fpm" or subject.startswith("php_fpm:"):
            chain = (php_service,)
        elif subject.startswith(("queue:", "app:")):
            chain = (workers, database)
        elif subject in ("cpu", "load") or subject.startswith("pressure:cpu"):
            chain = (busy,)
        elif subject in ("memory", "swap") or subject.startswith("pressure:memory"):
            chain = (growing,)
        elif subject.startswith("anomaly:"):  # what moved, by the series the problem names
            said = problems[subject]
            chain = (busy if "cpu" in said or "load" in said else None, growing if "memory" in said else None)
        else:
            chain = ()
        return next((c for c in chain if c is not None and c != subject), None)

    def root(subject: str) -> str | None:
        seen, lead = {subject}, cause(subject)
        while lead is not None and (above := cause(lead)) is not None and above not in seen:
            seen.add(lead)
            lead = above
        return lead

    linked = [f.model_copy(update={"caused_by": root(f.subject)}) for f in findings]
    worst: dict[str, str] = {}
    for f in linked:
        if f.caused_by is not None and _SEVERITY[f.severity] < _SEVERITY[worst.get(f.caused_by, "info")]:
            worst[f.caused_by] = f.severity
    return [
        f.model_copy(update={"severity": worst[f.subject]})
        if f.subject in worst and _SEVERITY[worst[f.subject]] < _SEVERITY[f.severity]
        else f
        for f in linked
    ]


def _ts(iso_time: str | None) -> float | None:
    return datetime.fromisoformat(iso_time).timestamp() if iso_time else None


def order(findings: Sequence[Finding], now: float | None) -> list[Finding]:
    """Incidents, each lead followed by its symptoms: what began in the last 15 minutes (or at an unknown time)
    first, then by severity, the most recent first (the unknown last); known conditions after them, by severity."""
    leads = [f for f in findings if f.caused_by is None]
    members = {lead.subject: [lead] for lead in leads}
    for f in findings:
        if f.caused_by is not None:
            members.setdefault(f.caused_by, []).append(f)

    def key(lead: Finding) -> tuple[int, int, float]:
        stamps = [t for t in (_ts(m.since) for m in members[lead.subject]) if t is not None]
        began = min(stamps) if stamps else None
        new = began is None or now is None or now - began <= RECENT_SECONDS
        return (0 if new else 1, _SEVERITY[lead.severity], -began if began is not None else 0.0)

    out: list[Finding] = []
    for lead in sorted(leads, key=key):
        out.append(lead)
        out.extend(sorted(members[lead.subject][1:], key=lambda f: _SEVERITY[f.severity]))
    return out
