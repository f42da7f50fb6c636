"""The one-call health summary: what is wrong, since when, how bad, most urgent first."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from crucible_monitor.alerts.shorthand import Levels, ResourceLevel, shorthand_levels
from crucible_monitor.config import AlertsConfig
from crucible_monitor.models import iso
from crucible_monitor.schemas import (
    AlertView,
    CheckResult,
    CollectorStatus,
    Finding,
    ProcessInfo,
    ProcessView,
    Quantity,
    ServiceStatus,
    StatusSummary,
    SystemSnapshot,
)
from crucible_monitor.units import human, human_duration, human_ratio
from crucible_monitor.untrusted import trim

__all__ = ["Context", "summarize"]

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_VITAL_CATEGORIES = ("web", "database", "php")
_CERT_CRITICAL_DAYS = 7
_CERT_WARNING_DAYS = 21
_PRESSURE_WARNING = 0.2
_BLIND_SHOWN = 2


@dataclass(frozen=True)
class Context:
    """What the summary needs besides the snapshot: thresholds, recent events, and a "since when" lookup.

    The thresholds are the ``alerts:`` shorthand's, read as its rules read them (:func:`shorthand_levels`).

    ``since_above(metric, labels, threshold)`` returns when the metric last crossed above ``threshold`` (Unix
    seconds), or None when unknown.
    """

    alerts: Sequence[AlertView]
    thresholds: AlertsConfig
    restarts_last_hour: Mapping[str, int]
    check_failing_since: Mapping[str, float]
    since_above: Callable[[str, dict[str, str], float], float | None]
    held_samples: int = 0
    """Samples held in memory because the disk is full (see ``MetricStore.append``)."""
    held_since: float | None = None
    dropped_samples: int = 0

    @property
    def levels(self) -> Levels:
        """The warning and critical levels of the thresholds."""
        return shorthand_levels(self.thresholds)


def _q(value: float, unit: str) -> Quantity:
    return Quantity(value=value, unit=unit, human=human(value, unit))


def _since(ts: float | None) -> str | None:
    return iso(ts) if ts else None


def summarize(
    system: SystemSnapshot,
    services: Sequence[ServiceStatus],
    checks: Sequence[CheckResult],
    collectors: Sequence[CollectorStatus],
    context: Context,
) -> StatusSummary:
    """Findings sorted by severity, vital signs with human forms, counts and next steps."""
    findings = [
        *_alert_findings(context.alerts),
        *_service_findings(services, context),
        *_check_findings(checks, context),
        *_resource_findings(system, context),
        *_collector_findings(collectors),
        *_storage_findings(context),
    ]
    findings.sort(key=lambda f: _SEVERITY_ORDER[f.severity])
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
        headline=_headline(findings, system, [c.name for c in collectors if c.ok and c.last_success is None]),
        findings=findings,
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
        hints=_hints(findings),
    )


def _alert_findings(alerts: Sequence[AlertView]) -> list[Finding]:
    found = []
    for alert in alerts:
        if alert.state != "firing" or alert.silenced_by or alert.inhibited:
            continue
        acked = f" (acknowledged by {alert.acknowledgement.by})" if alert.acknowledgement else ""
        found.append(
            Finding(
                severity="critical" if alert.severity == "critical" else "warning",
                subject=f"alert {alert.name}",
                problem=(alert.annotations.get("summary") or alert.name) + acked,
                since=alert.fired_at or alert.active_since,
                hint=f"get_alert(alert_id={alert.id}) for its history; acknowledge_alert when someone is on it",
            )
        )
    return found


def _storage_findings(context: Context) -> list[Finding]:
    """Critical while the disk is full: collection goes on into memory, nothing of it is durable yet."""
    if not context.held_samples:
        return []
    given_up = f", {context.dropped_samples} given up" if context.dropped_samples else ""
    return [
        Finding(
            severity="critical",
            subject="storage",
            problem=f"disk full: collecting to memory, {context.held_samples} samples pending{given_up}",
            since=iso(context.held_since) if context.held_since else None,
            hint="get_system_status after freeing space on the data directory's filesystem; get_metrics(metric="
            "'filesystem_used_ratio')",
        )
    ]


def _collector_findings(collectors: Sequence[CollectorStatus]) -> list[Finding]:
    """A blind-spot finding per collector that failed or could not read a configured source: nothing is known
    there, so nothing there can be called clear."""
    found = []
    for collector in collectors:
        if collector.ok:
            continue
        spots = [f"{spot.error or 'cannot be read'} ({spot.config_key})" for spot in collector.blind]
        shown = "; ".join(spots[:_BLIND_SHOWN]) + (
            f" (+{len(spots) - _BLIND_SHOWN} more)" if len(spots) > _BLIND_SHOWN else ""
        )
        failing = f", {collector.errors_total} failed runs since start" if collector.last_error else ""
        since = min((spot.since for spot in collector.blind if spot.since), default=None)
        window = f", since='{since}'" if since else ""
        found.append(
            Finding(
                severity="warning",
                subject=f"collector:{collector.name}",
                problem=f"blind: {shown or 'cannot read its source'}{failing}",
                since=since,
                hint=f"get_events(kinds=['collector_error'], subject='{collector.name}'{window})",
            )
        )
    return found


def _service_findings(services: Sequence[ServiceStatus], context: Context) -> list[Finding]:
    found = []
    for service in services:
        restarts = context.restarts_last_hour.get(service.name, 0)
        if service.settled and not service.up:
            state = service.state + (f"/{service.sub_state}" if service.sub_state else "")
            found.append(
                Finding(
                    severity="critical" if service.category in _VITAL_CATEGORIES else "warning",
                    subject=f"service {service.name}",
                    problem=f"{service.category} service is {state}"
                    + (f", exit status {service.exit_status}" if service.exit_status not in (None, 0) else "")
                    + (f", {restarts} restarts in the last hour" if restarts else ""),
                    since=_since(service.since),
                    hint=f"get_service(name='{service.name}') for its log and restarts",
                )
            )
        elif restarts >= 2:
            found.append(
                Finding(
                    severity="warning",
                    subject=f"service {service.name}",
                    problem=f"restarted {restarts} times in the last hour (flapping)",
                    since=_since(service.since),
                    hint=f"get_service(name='{service.name}') for its log; tail_logs(source='{service.name}')",
                )
            )
    return found


def _check_findings(checks: Sequence[CheckResult], context: Context) -> list[Finding]:
    found = []
    slow = context.levels.slow_check
    for check in checks:
        if not check.ok:
            found.append(
                Finding(
                    severity="critical",
                    subject=f"check {check.name}",
                    problem=f"{check.url} failing ({check.failure}): {check.error or ''}".rstrip(": "),
                    since=_since(context.check_failing_since.get(check.name)),
                    hint="list_http_checks() for every check; get_service() for the web and php services",
                )
            )
        elif slow is not None and check.duration_seconds is not None and check.duration_seconds > slow.total_seconds():
            found.append(
                Finding(
                    severity="warning",
                    subject=f"check {check.name}",
                    problem=f"slow: {human_duration(check.duration_seconds)} "
                    f"(threshold {human_duration(slow.total_seconds())})",
                    value=_q(check.duration_seconds, "seconds"),
                    hint=f"get_metrics(metric='http_check_duration_seconds', labels={{'check': '{check.name}'}})",
                )
            )
        if check.tls_days_left is not None and check.tls_days_left < _CERT_WARNING_DAYS:
            found.append(
                Finding(
                    severity="critical" if check.tls_days_left < _CERT_CRITICAL_DAYS else "warning",
                    subject=f"certificate of {check.name}",
                    problem=f"expires in {check.tls_days_left:.1f} days (issuer {check.tls_issuer})",
                    since=None,
                    value=_q(check.tls_days_left * 86400, "seconds"),
                    hint="renew the certificate (Caddy renews automatically: check its log with tail_logs)",
                )
            )
    return found


def _ratio_finding(
    subject: str,
    labels: dict[str, str],
    value: float | None,
    level: ResourceLevel | None,
    context: Context,
    hint: str,
    metric: str | None = None,
) -> Finding | None:
    """A finding when ``value`` reaches the level's warning (``metric``: another series held to the same level)."""
    if value is None or level is None or value < level.warning:
        return None
    return Finding(
        severity="critical" if value >= level.critical else "warning",
        subject=subject,
        problem=f"{human_ratio(value)} (threshold {level.percent:g} %)",
        since=_since(context.since_above(metric or level.metric, labels, level.warning)),
        value=_q(value, "ratio"),
        hint=hint,
    )


def _resource_findings(system: SystemSnapshot, context: Context) -> list[Finding]:
    levels = context.levels
    candidates = [
        _ratio_finding(
            "CPU",
            {"cpu": "total"},
            system.cpu.usage_ratio,
            levels.cpu,
            context,
            "get_system_status() lists top processes; get_metrics(metric='cpu') for the trend",
        ),
        _ratio_finding(
            "memory",
            {},
            system.memory.used_ratio,
            levels.memory,
            context,
            "get_metrics(metric='memory'); the top processes by memory are in get_system_status",
        ),
    ]
    for fs in system.filesystems:
        labels = {"mountpoint": fs.mountpoint, "device": fs.device or "", "fstype": fs.fstype or ""}
        candidates.append(
            _ratio_finding(
                f"disk {fs.mountpoint}",
                labels,
                fs.used_ratio,
                levels.disk,
                context,
                f"get_metrics(metric='filesystem_used_bytes', labels={{'mountpoint': '{fs.mountpoint}'}}, since='7d')",
            )
        )
        candidates.append(
            _ratio_finding(
                f"inodes {fs.mountpoint}",
                labels,
                fs.inodes_used_ratio,
                levels.disk,
                context,
                "many small files (sessions, cache): find the directory that grows",
                metric="filesystem_inodes_used_ratio",
            )
        )
    found = [c for c in candidates if c is not None]
    cores = system.cpu.count or 1
    load5 = system.load.get("5m")
    if load5 is not None and load5 > 2 * cores:
        found.append(
            Finding(
                severity="warning",
                subject="load",
                problem=f"5-minute load {load5:.2f} on {cores} cores",
                value=_q(load5, ""),
                hint="get_metrics(metric='pressure_stall_ratio') tells CPU from I/O waiting",
            )
        )
    for key, ratio in sorted(system.pressure.items()):
        if ratio >= _PRESSURE_WARNING and not key.startswith("cpu_full"):
            found.append(
                Finding(
                    severity="warning",
                    subject=f"pressure {key.replace('_', ' ')}",
                    problem=f"tasks stalled {human_ratio(ratio)} of the last 10 s",
                    value=_q(ratio, "ratio"),
                    hint="get_metrics(metric='pressure_stall_ratio', since='1h')",
                )
            )
    if system.memory.swap_used_ratio is not None and system.memory.swap_used_ratio >= 0.5:
        found.append(
            Finding(
                severity="warning",
                subject="swap",
                problem=f"{human_ratio(system.memory.swap_used_ratio)} of swap used",
                value=_q(system.memory.swap_used_ratio, "ratio"),
                hint="get_metrics(metric='swap_in_bytes_total', since='1h'): sustained swap-in means memory is short",
            )
        )
    return found


_CMDLINE_CHARS = 58  # the summary names a process (60 characters fenced); explain_anomaly says more


def _processes(processes: Sequence[ProcessInfo], count: int = 3) -> list[ProcessView]:
    """The first ``count`` processes, each command line cut to ``_CMDLINE_CHARS`` (ending in "…" where cut)."""
    return [
        ProcessView(
            pid=p.pid,
            name=p.name,
            user=p.user,
            cmdline=trim(p.cmdline, _CMDLINE_CHARS),
            cpu=_q(p.cpu_cores, "cores") if p.cpu_cores is not None else None,
            memory=_q(p.memory_bytes, "bytes"),
            started_at=_since(p.started_at),
        )
        for p in processes[:count]
    ]


def _vitals(system: SystemSnapshot) -> dict[str, Quantity]:
    vitals: dict[str, Quantity] = {}
    if system.cpu.usage_ratio is not None:
        vitals["cpu"] = _q(system.cpu.usage_ratio, "ratio")
    if system.memory.used_ratio is not None:
        vitals["memory"] = _q(system.memory.used_ratio, "ratio")
    if system.memory.used_bytes is not None:
        vitals["memory_used"] = _q(system.memory.used_bytes, "bytes")
    if system.memory.swap_used_ratio is not None:
        vitals["swap"] = _q(system.memory.swap_used_ratio, "ratio")
    for window, value in system.load.items():
        vitals[f"load_{window}"] = _q(value, "")
    for fs in system.filesystems:
        if fs.used_ratio is not None:
            vitals[f"disk {fs.mountpoint}"] = _q(fs.used_ratio, "ratio")
    if system.uptime_seconds is not None:
        vitals["uptime"] = _q(system.uptime_seconds, "seconds")
    return vitals


def _headline(findings: Sequence[Finding], system: SystemSnapshot, unread: Sequence[str]) -> str:
    """The worst three problems; "All clear" only when none exists and every collector has read its sources."""
    serious = [f for f in findings if f.severity != "info"]
    if not serious and unread:
        return f"Nothing wrong seen yet, but not read yet: {', '.join(unread)} (their first collection is pending)."
    if not serious:
        cpu = human_ratio(system.cpu.usage_ratio) if system.cpu.usage_ratio is not None else "unknown"
        memory = human_ratio(system.memory.used_ratio) if system.memory.used_ratio is not None else "unknown"
        return f"All clear: CPU {cpu}, memory {memory}, no service down, no check failing."
    parts = [f"{f.subject}: {f.problem}" for f in serious[:3]]
    more = f" (+{len(serious) - 3} more)" if len(serious) > 3 else ""
    unseen = [f.subject.removeprefix("collector:") for f in serious[3:] if f.subject.startswith("collector:")]
    blind = f"; blind: {', '.join(unseen)}" if unseen else ""
    return f"{len(serious)} problem{'s' if len(serious) > 1 else ''}: " + "; ".join(parts) + more + blind


def _hints(findings: Sequence[Finding]) -> list[str]:
    hints = list(dict.fromkeys(f.hint for f in findings[:5]))
    hints.append("get_events(since='1h') shows state changes, restarts and check failures in order")
    return hints
