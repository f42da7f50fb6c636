"""The collector contract: one module per source, each declaring the metrics it emits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from crucible_monitor.models import Event, MetricSpec, Sample

__all__ = ["Collection", "Collector"]


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
