"""Core data types shared by collectors, storage and every interface.

A :class:`Sample` is one value of one series at one time. Metric names are snake_case in base units with
Prometheus-style suffixes (``_bytes``, ``_seconds``, ``_ratio``, ``_total``). Timestamps are Unix seconds (float,
UTC); interfaces turn them into ISO 8601 with a zone.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, get_args

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "Event",
    "EventKind",
    "MetricKind",
    "MetricSpec",
    "Sample",
    "Severity",
    "iso",
    "labels_key",
    "labels_match",
    "parse_labels_key",
]


class MetricKind(StrEnum):
    """How a series behaves: a gauge goes up and down, a counter only grows (until it resets)."""

    GAUGE = "gauge"
    COUNTER = "counter"


Aggregation = Literal["avg", "min", "max", "last", "p95", "count", "rate"]
"""How a query folds the points of a step bucket (``rate``: per second, counters only)."""
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One entry of a collector's metric catalogue."""

    name: str
    kind: MetricKind
    unit: str
    description: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series. ``ts`` is Unix seconds; 0 means "stamp with the collection time"."""

    metric: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    ts: float = 0.0


class Severity(StrEnum):
    """How much an event or alert matters."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class EventKind(StrEnum):
    """The discrete facts collectors and the agent record."""

    SERVICE_STATE = "service_state"
    SERVICE_RESTART = "service_restart"
    CHECK_FAILED = "check_failed"
    CHECK_RECOVERED = "check_recovered"
    COLLECTOR_ERROR = "collector_error"
    COLLECTOR_RECOVERED = "collector_recovered"
    ALERT = "alert"
    ANOMALY = "anomaly"
    AGENT = "agent"
    CONFIG = "config"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class Event:
    """A discrete fact with a timestamp: a state change, a restart, a failed check, an action taken."""

    kind: EventKind
    subject: str
    message: str
    severity: Severity = Severity.INFO
    data: Mapping[str, Any] = field(default_factory=dict)
    ts: float = 0.0


_KEYS: dict[tuple[tuple[str, str], ...], str] = {}
_MAX_KEYS = 200_000


def labels_key(labels: Mapping[str, str]) -> str:
    """The canonical text form of a label set (sorted compact JSON), used as a series key on disk.

    Memoised (a collector sends the same label sets every cycle: a tuple lookup instead of a JSON encoding); the
    memo is emptied when it holds :data:`_MAX_KEYS` label sets, so a churning label costs time, never memory.
    """
    if not labels:
        return "{}"
    items = tuple(labels.items())
    key = _KEYS.get(items)
    if key is None:
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        key = _KEYS[items] = json.dumps(dict(sorted(items)), separators=(",", ":"), ensure_ascii=False)
    return key


def labels_match(labels: Mapping[str, str], match: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` has every label of ``match`` with the same value (always, for an empty or no ``match``).

    A label absent from ``labels`` does not match, whatever the value asked for.
    """
    return not match or all(labels.get(name) == value for name, value in match.items())


def parse_labels_key(key: str) -> dict[str, str]:
    """Inverse of :func:`labels_key`; a fresh dict, parsed once per key (series keys repeat on every read)."""
    return dict(_parsed_labels(key))


@functools.lru_cache(maxsize=16384)
def _parsed_labels(key: str) -> tuple[tuple[str, str], ...]:
    return tuple(json.loads(key).items())


def iso(ts: float) -> str:
    """A Unix timestamp as ISO 8601 in UTC with the zone, to the second."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
