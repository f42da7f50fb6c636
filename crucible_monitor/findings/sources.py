"""What the findings engine reads: current readings (:class:`Sources`) and lookups into history (:class:`Context`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from crucible_monitor.alerts.shorthand import Levels, shorthand_levels
from crucible_monitor.config import AlertsConfig
from crucible_monitor.models import iso
from crucible_monitor.schemas import (
    AlertView,
    AnomalyView,
    CheckResult,
    CollectorStatus,
    GpuReading,
    Quantity,
    RecoveredView,
    ServiceStatus,
    SystemSnapshot,
)
from crucible_monitor.units import human

__all__ = ["RECENT_SECONDS", "Context", "Reading", "Recoveries", "Sources", "iso_or_none", "quantity"]

RECENT_SECONDS = 15 * 60
"""The one window of the summary's counts: restarts, recoveries, what is new."""


class Reading(Protocol):
    """The newest point of a series (``storage.store.LatestPoint`` satisfies it)."""

    @property
    def metric(self) -> str: ...
    @property
    def labels(self) -> dict[str, str]: ...
    @property
    def ts(self) -> float: ...
    @property
    def value(self) -> float: ...
    @property
    def previous_ts(self) -> float | None: ...

    def rate(self) -> float | None:
        """Per-second increase since the point before, or None."""


def _unknown(metric: str, labels: dict[str, str], *args: float) -> float | None:
    return None


@dataclass(frozen=True)
class Context:
    """What the findings need besides the current readings: thresholds, events and lookups into history.

    The thresholds are the ``alerts:`` shorthand's, read as its rules read them (:func:`shorthand_levels`).
    ``since_above(metric, labels, threshold)``: when the metric last crossed above ``threshold`` (Unix seconds).
    ``baseline(metric, labels)``: its usual level (the median of the hour before), None without history.
    ``rise(metric, labels, seconds)``: how much it grew over the last ``seconds``, None without history.
    """

    alerts: Sequence[AlertView]
    thresholds: AlertsConfig
    restarts_last_hour: Mapping[str, int]
    """Restarts per service in the last :data:`RECENT_SECONDS` (the name is kept for the callers)."""
    check_failing_since: Mapping[str, float]
    since_above: Callable[[str, dict[str, str], float], float | None]
    held_samples: int = 0
    """Samples held in memory because the disk is full (see ``MetricStore.append``)."""
    held_since: float | None = None
    dropped_samples: int = 0
    now: float | None = None
    latest: Sequence[Reading] = ()
    baseline: Callable[[str, dict[str, str]], float | None] = _unknown
    rise: Callable[[str, dict[str, str], float], float | None] = _unknown
    recovered: Sequence[RecoveredView] = ()
    """Recoveries of the last :data:`RECENT_SECONDS`, newest first (from events and resolved alerts)."""
    anomalies: Sequence[AnomalyView] = ()
    """Ongoing anomalies (the host model's and the streaming detector's)."""
    memory: Recoveries | None = None
    """What earlier summaries said (a finding that left them is recovered); None: only events tell."""
    fresh_seconds: float = 120.0
    """Readings older than this are not judged (a vhost without requests keeps its last ratio)."""

    @property
    def levels(self) -> Levels:
        """The warning and critical levels of the thresholds."""
        return shorthand_levels(self.thresholds)

    def fresh(self, metric: str) -> list[Reading]:
        """The current points of ``metric``."""
        oldest = (self.now or 0.0) - self.fresh_seconds
        return [r for r in self.latest if r.metric == metric and (self.now is None or r.ts >= oldest)]


@dataclass(frozen=True)
class Sources:
    """Everything a contributor reads."""

    system: SystemSnapshot
    services: Sequence[ServiceStatus]
    checks: Sequence[CheckResult]
    collectors: Sequence[CollectorStatus]
    context: Context
    gpus: Sequence[GpuReading] = ()


def quantity(value: float, unit: str) -> Quantity:
    """``value`` with its unit and human form."""
    return Quantity(value=value, unit=unit, human=human(value, unit))


def iso_or_none(ts: float | None) -> str | None:
    """``ts`` as ISO 8601, None when unknown (or 0)."""
    return iso(ts) if ts else None


class Recoveries:
    """What the summary said lately, so that a finding that leaves shows as recovered for :data:`RECENT_SECONDS`.

    The agent keeps one (``Agent.recoveries``); each summary updates it.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, float | None]] = {}
        """subject → (its last problem, when it left the findings: None while it is there)."""

    def update(self, present: Mapping[str, str], handled: set[str], now: float) -> list[RecoveredView]:
        """Note the findings ``present`` now (subject → problem); what left them lately, newest first."""
        for subject, (problem, left) in list(self._seen.items()):
            if subject in present or subject in handled:
                continue
            if left is None:
                self._seen[subject] = (problem, now)
            elif now - left > RECENT_SECONDS:
                del self._seen[subject]
        self._seen.update((subject, (problem, None)) for subject, problem in present.items())
        gone = [(left, subject, problem) for subject, (problem, left) in self._seen.items() if left is not None]
        return [
            RecoveredView(subject=subject, what=f"no longer: {problem}", at=iso(left))
            for left, subject, problem in sorted(gone, reverse=True)
        ]
