"""The collector contract: one module per source, each declaring the metrics it emits; the scheduler's record of
how a collector does (:class:`CollectorHealth`); :class:`Problems`, what a collector could not read, and
:class:`BlindSpot`, a configured source it could not reach (the agent is blind there until it answers again)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from crucible_monitor.models import Event, EventKind, MetricSpec, Sample, Severity, iso
from crucible_monitor.schemas import BlindSpotView, CollectorStatus
from crucible_monitor.untrusted import mask_secrets

__all__ = ["BlindSpot", "Collection", "Collector", "CollectorHealth", "Problems"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BlindSpot:
    """A configured source that a collector could not read in its last run.

    ``target`` names it (``pool www``, a file path), ``key`` is the config key that configures it
    (``collectors.php_fpm.pools[0].status_url``) and ``error`` says what went wrong (naming the target, secrets
    masked).
    """

    target: str
    key: str
    error: str


@dataclass
class Collection:
    """What one collection cycle produced: samples for storage, events for ``state.db``, and the configured
    sources that could not be read (the complete list each cycle: one missing from the next cycle has recovered)."""

    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    blind: list[BlindSpot] = field(default_factory=list)


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
    """How a collector has been doing since the agent started (the scheduler keeps one per collector).

    A run can fail (``last_error``), or succeed without reading every configured source (``blind``): either way
    the collector is not ok, and the agent does not see what it should.
    """

    interval: float
    key: str = ""
    """The config key of the collector's settings (``collectors.mysql``)."""
    runs: int = 0
    errors_total: int = 0
    last_run: float | None = None
    last_success: float | None = None
    last_duration: float | None = None
    last_error: str | None = None
    failing_since: float | None = None
    samples_last_run: int = 0
    last_stamp: float | None = None
    blind: dict[tuple[str, str], tuple[BlindSpot, float]] = field(default_factory=dict)
    """The blind spots of the last successful run by (key, target), each with since when it has been blind."""

    @property
    def ok(self) -> bool:
        """True when the latest run succeeded and read every configured source."""
        return self.last_error is None and not self.blind

    def stamp(self, started: float) -> float:
        """The time every sample of a run that started at ``started`` carries: the grid time it belongs to, the
        latest multiple of the interval (on the wall clock) at or before its start, also when it runs late under
        load; an extra run between ticks keeps its own time.

        All samples of one collection share one timestamp on a regular grid: that costs nothing to store (delta
        encoding) where jittered times cost a third of the bytes, and it lines up series from different collectors.
        Never a time in the future: jobs fire just after their grid time.
        """
        tick = math.floor(started / self.interval) * self.interval
        if self.last_stamp is not None and tick <= self.last_stamp:
            tick = max(started, self.last_stamp + 0.001)
        self.last_stamp = tick
        return tick

    def failed(self, name: str, error: str, now: float) -> list[Event]:
        """Record a failed run of collector ``name``: the event when it starts failing."""
        self.errors_total += 1
        first = self.last_error is None
        self.last_error = mask_secrets(error)
        if not first:
            return []
        self.failing_since = now
        message = f"collector {name} failed: {self.last_error}"
        return [Event(EventKind.COLLECTOR_ERROR, name, message, Severity.WARNING, {"config_key": self.key}, now)]

    def succeeded(self, name: str, blind: Sequence[BlindSpot], now: float) -> list[Event]:
        """Record a successful run and the sources it could not read; a recovery event for a failure that ended
        and for each source that answers again."""
        events = []
        if self.last_error is not None:
            message = f"collector {name} runs again (it failed: {self.last_error})"
            logger.info("%s", message)
            events.append(self._recovered(name, message, {"config_key": self.key}, now))
        self.last_error = None
        self.failing_since = None
        self.last_success = now
        current = {(b.key, b.target): replace(b, error=mask_secrets(b.error)) for b in blind}
        for spot_key, (spot, _) in self.blind.items():
            if spot_key not in current:
                message = f"{name}: {spot.target} answers again ({spot.key})"
                events.append(self._recovered(name, message, {"config_key": spot.key, "target": spot.target}, now))
        self.blind = {k: (b, self.blind[k][1] if k in self.blind else now) for k, b in current.items()}
        return events

    @staticmethod
    def _recovered(name: str, message: str, data: dict[str, str], now: float) -> Event:
        return Event(EventKind.COLLECTOR_RECOVERED, name, message, Severity.INFO, dict(data), now)

    def view(self, name: str, *, detailed: bool) -> CollectorStatus:
        """How interfaces show it; ``detailed`` keeps error texts and targets (authenticated endpoints only)."""
        spots = [(spot, since) for spot, since in self.blind.values()]
        if self.last_error is not None:
            failure = BlindSpot("every source (the collector failed)", self.key, self.last_error)
            spots.insert(0, (failure, self.failing_since or 0.0))
        return CollectorStatus(
            name=name,
            ok=self.ok,
            interval_seconds=self.interval,
            runs=self.runs,
            errors_total=self.errors_total,
            last_run=iso(self.last_run) if self.last_run else None,
            last_success=iso(self.last_success) if self.last_success else None,
            last_duration_seconds=self.last_duration,
            samples_last_run=self.samples_last_run,
            last_error=self.last_error if detailed else None,
            blind=[
                BlindSpotView(
                    config_key=spot.key,
                    target=spot.target if detailed else None,
                    error=spot.error if detailed else None,
                    since=iso(since) if since else None,
                )
                for spot, since in spots
            ],
        )


class Problems:
    """What a collector could not read, cycle after cycle: an event when a problem appears, a log line when it ends.

    A problem is a text, or a :class:`BlindSpot` when a configured source could not be read at all; those of the
    last cycle are :attr:`blind`.
    """

    def __init__(self, subject: str, label: str) -> None:
        self.subject = subject
        self.label = label
        self.current: set[str] = set()
        self.blind: list[BlindSpot] = []

    def update(self, problems: Sequence[str | BlindSpot], now: float) -> list[Event]:
        """The events for the problems of this cycle that the last cycle did not have."""
        events = []
        texts = []
        for problem in problems:
            text = mask_secrets(problem.error if isinstance(problem, BlindSpot) else problem)
            texts.append(text)
            if text not in self.current:
                logger.warning("%s: %s", self.label, text)
                data = {"config_key": problem.key} if isinstance(problem, BlindSpot) else {}
                message = f"{self.label}: {text}"
                events.append(Event(EventKind.COLLECTOR_ERROR, self.subject, message, Severity.WARNING, data, now))
        for solved in self.current - set(texts):
            logger.info("%s: no longer: %s", self.label, solved)
        self.current = set(texts)
        self.blind = [p for p in problems if isinstance(p, BlindSpot)]
        return events

    def collection(self, samples: list[Sample], problems: Sequence[str | BlindSpot], now: float) -> Collection:
        """A cycle's samples with the events of its problems and its blind spots."""
        return Collection(samples=samples, events=self.update(problems, now), blind=self.blind)
