"""The findings engine: every source's judgment of what is wrong, under one contract.

A contributor is a function ``(Sources) -> list[Finding]``. Each finding has a severity, a subject that tools take
as an argument (``kind:name``: ``service:php8.2-fpm``, ``check:homepage``, ``collector:mysql``, ``filesystem:/var``,
``process:stress``), the problem with its value and the threshold or baseline it crossed, since when, and a next
call whose arguments are valid. :func:`judge` runs every contributor, folds the alerts into the findings they repeat
and orders the rest into incidents, cause first (:mod:`.incidents`).

Contributors: :mod:`.system` (resources, processes, storage), :mod:`.services` (services, checks, certificates,
collectors' blind spots), :mod:`.applications` (access logs, php-fpm, MySQL, Laravel), :mod:`.gpu` (NVML readings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crucible_monitor.findings import applications, gpu, incidents, services, system
from crucible_monitor.findings.sources import RECENT_SECONDS, Context, Reading, Sources
from crucible_monitor.schemas import Finding, HandledView, RecoveredView

__all__ = ["RECENT_SECONDS", "RECOVERED_SHOWN", "Context", "Judgment", "Reading", "Sources", "judge"]

RECOVERED_SHOWN = 5
"""Entries of the "recently recovered" list."""


@dataclass(frozen=True)
class Judgment:
    """The findings in incident order, what someone is on, and what recovered lately."""

    findings: list[Finding]
    handled: list[HandledView] = field(default_factory=list)
    recovered: list[RecoveredView] = field(default_factory=list)

    @property
    def incidents(self) -> list[Finding]:
        """The findings that lead an incident."""
        return [f for f in self.findings if f.caused_by is None]


def judge(sources: Sources) -> Judgment:
    """Every contributor's findings, alerts folded in, ordered into incidents: the cause first, newest first."""
    raw = [
        *services.service_findings(sources),
        *services.check_findings(sources),
        *applications.application_findings(sources),
        *system.resource_findings(sources),
        *system.process_findings(sources),
        *system.anomaly_findings(sources),
        *gpu.gpu_findings(sources.gpus, since_above=sources.context.since_above),
        *services.collector_findings(sources),
        *system.storage_findings(sources),
    ]
    findings, handled = incidents.fold_alerts(incidents.merge_subjects(raw), sources.context.alerts)
    ordered = incidents.order(incidents.link_causes(findings, sources), sources.context.now)
    context = sources.context
    current = {f.subject for f in ordered} | {h.subject for h in handled}
    recovered = [r for r in context.recovered if r.subject not in current]
    if context.memory is not None and context.now is not None:
        present = {f.subject: f.problem for f in ordered}
        told = {r.subject for r in recovered}
        left = context.memory.update(present, {h.subject for h in handled}, context.now)
        recovered = sorted([*recovered, *(r for r in left if r.subject not in told)], key=lambda r: r.at, reverse=True)
    return Judgment(ordered, handled, recovered[:RECOVERED_SHOWN])
