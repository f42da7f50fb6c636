"""The collector contract: one module per source, each declaring the metrics it emits; the scheduler's record of
how a collector does (:class:`CollectorHealth`); :class:`Problems`, what a collector could not read."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from crucible_monitor.models import Event, EventKind, MetricSpec, Sample, Severity, iso
from crucible_monitor.schemas import CollectorStatus

__all__ = ["Collection", "Collector", "CollectorHealth", "Problems"]

logger = logging.getLogger(__name__)


@dataclass
class Collection:
    """What one collection cycle produced: samples for storage and events for ``state.db``."""

    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class Collector(Protocol):
    """A source of samples. ``collect`` must not raise for one bad item: skip it, log it, go on.

    Raising from ``collect`` is reserved for the whole source being unreadable; the scheduler logs it, counts it
    in ``collector_errors_total`` and records an event, and the other collectors carry on.
    """

    @property
    def name(self) -> str:
        """Unique among the running collectors; the scheduler's job id."""
        ...

    @property
    def catalogue(self) -> Sequence[MetricSpec]:
        """Every metric this collector can emit."""
        ...

    async def collect(self) -> Collection:
        """Read the source once."""
        ...


@dataclass
class CollectorHealth:
    """How a collector has been doing since the agent started (the scheduler keeps one per collector)."""

    interval: float
    runs: int = 0
    errors_total: int = 0
    last_run: float | None = None
    last_success: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    samples_last_run: int = 0
    last_stamp: float | None = None

    @property
    def ok(self) -> bool:
        """True unless the latest run failed."""
        return self.last_error is None

    def view(self, name: str, *, detailed: bool) -> CollectorStatus:
        """How interfaces show it; ``detailed`` keeps the last error's text (authenticated endpoints only)."""
        return CollectorStatus(
            name=name,
            ok=self.ok,
            interval_seconds=self.interval,
            runs=self.runs,
            errors_total=self.errors_total,
            last_run=iso(self.last_run) if self.last_run else None,
            last_duration_seconds=self.last_duration,
            samples_last_run=self.samples_last_run,
            last_error=self.last_error if detailed else None,
        )


class Problems:
    """What a collector could not read, cycle after cycle: an event when a problem appears, a log line when it ends."""

    def __init__(self, subject: str, label: str) -> None:
        self.subject = subject
        self.label = label
        self.current: set[str] = set()

    def update(self, problems: Sequence[str], now: float) -> list[Event]:
        """The events for the problems of this cycle that the last cycle did not have."""
        events = []
        for problem in problems:
            if problem not in self.current:
                logger.warning("%s: %s", self.label, problem)
                message = f"{self.label}: {problem}"
                events.append(Event(EventKind.COLLECTOR_ERROR, self.subject, message, Severity.WARNING, {}, now))
        for solved in self.current - set(problems):
            logger.info("%s: no longer: %s", self.label, solved)
        self.current = set(problems)
        return events
