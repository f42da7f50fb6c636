"""Findings about what the host serves: services, HTTP checks, certificates, and what a collector cannot see."""

from __future__ import annotations

from crucible_monitor.findings.sources import RECENT_SECONDS, Sources, iso_or_none, quantity
from crucible_monitor.schemas import Finding
from crucible_monitor.units import human_duration

__all__ = ["check_findings", "collector_findings", "service_findings"]

VITAL_CATEGORIES = ("web", "database", "php")
"""A service of these categories down is critical: the site fails with it."""
_CERT_CRITICAL_DAYS = 7
_CERT_WARNING_DAYS = 21
_BLIND_SHOWN = 2
STABLE_SECONDS = 60.0
"""A restarting service that has stayed up this long is no longer called flapping (it shows as recovered)."""
_WINDOW = human_duration(RECENT_SECONDS)


def service_findings(sources: Sources) -> list[Finding]:
    """A settled service that is not running; one restarting in a loop (and not yet stable again)."""
    found = []
    now = sources.context.now
    for service in sources.services:
        restarts = sources.context.restarts_last_hour.get(service.name, 0)
        counted = f", {restarts} restarts in the last {_WINDOW}" if restarts else ""
        subject = f"service:{service.name}"
        if service.settled and not service.up:
            state = service.state + (f"/{service.sub_state}" if service.sub_state else "")
            exit_status = f", exit status {service.exit_status}" if service.exit_status not in (None, 0) else ""
            found.append(
                Finding(
                    severity="critical" if service.category in VITAL_CATEGORIES else "warning",
                    subject=subject,
                    problem=f"{service.category} service is {state}{exit_status}{counted}",
                    since=iso_or_none(service.since),
                    hint=f"get_service(name='{service.name}') for its log and restarts",
                )
            )
        elif restarts >= 2 and not (now and service.since and now - service.since >= STABLE_SECONDS):
            found.append(
                Finding(
                    severity="warning",
                    subject=subject,
                    problem=f"restarted {restarts} times in the last {_WINDOW} (crash loop)",
                    since=iso_or_none(service.since),
                    hint=f"get_service(name='{service.name}') for its log and restarts",
                )
            )
    return found


def check_findings(sources: Sources) -> list[Finding]:
    """A failing or slow HTTP check; a certificate that expires within three weeks."""
    found = []
    context = sources.context
    slow = context.levels.slow_check
    for check in sources.checks:
        subject = f"check:{check.name}"
        hint = f"get_metrics(metric='http_check', labels={{'check': '{check.name}'}}, since='1h')"
        if not check.ok:
            found.append(
                Finding(
                    severity="critical",
                    subject=subject,
                    problem=f"{check.url} failing ({check.failure})",
                    detail=check.error,
                    since=iso_or_none(context.check_failing_since.get(check.name)),
                    hint=hint,
                )
            )
        elif slow is not None and check.duration_seconds is not None and check.duration_seconds > slow.total_seconds():
            found.append(
                Finding(
                    severity="warning",
                    subject=subject,
                    problem=f"slow: {human_duration(check.duration_seconds)} "
                    f"(threshold {human_duration(slow.total_seconds())})",
                    value=quantity(check.duration_seconds, "seconds"),
                    hint=hint,
                )
            )
        if check.tls_days_left is not None and check.tls_days_left < _CERT_WARNING_DAYS:
            found.append(
                Finding(
                    severity="critical" if check.tls_days_left < _CERT_CRITICAL_DAYS else "warning",
                    subject=f"cert:{check.name}",
                    problem=f"certificate expires in {check.tls_days_left:.1f} days (threshold {_CERT_WARNING_DAYS} "
                    f"days; issuer {check.tls_issuer})",
                    value=quantity(check.tls_days_left * 86400, "seconds"),
                    hint="list_http_checks() shows each certificate's expiry and issuer",
                )
            )
    return found


def collector_findings(sources: Sources) -> list[Finding]:
    """A blind-spot finding per collector that failed or could not read a configured source: nothing is known
    there, so nothing there can be called clear."""
    found = []
    for collector in sources.collectors:
        if collector.ok:
            continue
        keys = [spot.config_key for spot in collector.blind]
        more = f" (+{len(keys) - _BLIND_SHOWN} more)" if len(keys) > _BLIND_SHOWN else ""
        shown = ", ".join(keys[:_BLIND_SHOWN]) + more
        errors = [spot.error for spot in collector.blind[:_BLIND_SHOWN] if spot.error]
        failing = f", {collector.errors_total} failed runs since start" if collector.last_error else ""
        since = min((spot.since for spot in collector.blind if spot.since), default=None)
        window = f", since='{since}'" if since else ""
        found.append(
            Finding(
                severity="warning",
                subject=f"collector:{collector.name}",
                problem=f"blind: cannot read {shown or 'its source'}{failing}",
                detail="; ".join(errors) or None,
                since=since,
                hint=f"get_events(kinds=['collector_error'], subject='{collector.name}'{window})",
            )
        )
    return found
