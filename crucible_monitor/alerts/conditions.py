"""Rule conditions over the engine's inputs: which instances of a rule hold right now.

The inputs are callables, so the engine runs over the agent's live state and tests over anything they build:
the metric store (``latest()`` for current values, ``query()`` for windows), service statuses, HTTP check results,
and the anomaly engine's scores and forecasts as it produces them (:class:`AnomalyScore`, :class:`FillForecast`).

Evaluating a rule gives an :class:`Outcome` (the instances that hold, each with its labels and value) or ``None``
when the rule cannot be told at all (no fresh data for its metric, no services known yet): the engine then leaves
the rule's alerts as they are, so an agent that restarts does not resolve and re-fire everything.
"""

from __future__ import annotations

import fnmatch
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

import numpy as np

from crucible_monitor.alerts.rules import (
    AnomalyRule,
    CertificateRule,
    CompositeRule,
    ForecastRule,
    HttpCheckRule,
    Rule,
    ServiceRule,
    ThresholdRule,
)
from crucible_monitor.models import Aggregation, labels_key, labels_match
from crucible_monitor.schemas import AnomalyScore, CheckResult, FillForecast, ServiceStatus
from crucible_monitor.storage.store import LatestPoint, SeriesData

__all__ = [
    "AlertInputs",
    "AnomalyScore",
    "AnomalyScores",
    "FillForecast",
    "Forecast",
    "Forecasts",
    "Hit",
    "Outcome",
    "SampleSource",
    "Snapshot",
    "combine",
    "evaluate",
]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_RAW_STEP = 0.001  # a query step finer than any sample interval returns the raw points


class SampleSource(Protocol):
    """What the engine reads samples from; :class:`~crucible_monitor.storage.store.MetricStore` is one."""

    def latest(self) -> list[LatestPoint]:
        """The newest point of every series."""
        ...

    def query(
        self, metric: str, *, start: float, end: float, step: float, agg: Aggregation, labels: Mapping[str, str]
    ) -> list[SeriesData]:
        """Points of the ``metric`` series matching ``labels`` between ``start`` and ``end``, by ``step`` seconds."""
        ...


Forecast = FillForecast
"""The name alerting has used for :class:`FillForecast` (one type: the anomaly engine's own)."""

AnomalyScores = Callable[[float, float], Sequence[AnomalyScore]]
"""``(start, end)`` → the scored points in that window, all series."""
Forecasts = Callable[[], Sequence[FillForecast]]
"""The current forecasts, all series."""


def _no_services() -> Sequence[ServiceStatus]:
    return ()


def _no_checks() -> Sequence[CheckResult]:
    return ()


@dataclass(frozen=True)
class AlertInputs:
    """Where the engine reads the state of the host from."""

    samples: SampleSource
    services: Callable[[], Sequence[ServiceStatus]] = _no_services
    http_checks: Callable[[], Sequence[CheckResult]] = _no_checks
    anomaly_scores: AnomalyScores | None = None
    forecasts: Forecasts | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """One instance of a rule whose condition holds: its own labels (series, service, check) and its value."""

    labels: Mapping[str, str]
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The instances of a rule that hold; ``unknown`` instances (by labels key) cannot be told now."""

    hits: list[Hit]
    unknown: frozenset[str] = field(default_factory=frozenset)


class Snapshot:
    """The inputs as read once for one evaluation cycle (each source read at most once)."""

    def __init__(self, inputs: AlertInputs, now: float, stale_after: float) -> None:
        self.inputs = inputs
        self.now = now
        self.oldest = now - stale_after
        self._index: dict[tuple[str, str], dict[str, list[LatestPoint]]] = {}

    @cached_property
    def latest(self) -> dict[str, list[LatestPoint]]:
        """Fresh points by metric."""
        index: dict[str, list[LatestPoint]] = defaultdict(list)
        for point in self.inputs.samples.latest():
            if point.ts >= self.oldest:
                index[point.metric].append(point)
        return index

    def select(self, metric: str, match: Mapping[str, str]) -> list[LatestPoint]:
        """Fresh points of ``metric`` whose labels include ``match``, through an index on the first match label."""
        points = self.latest.get(metric, [])
        if not match or not points:
            return points
        name, value = next(iter(match.items()))
        index = self._index.get((metric, name))
        if index is None:
            index = self._index[(metric, name)] = defaultdict(list)
            for point in points:
                if name in point.labels:
                    index[point.labels[name]].append(point)
        candidates = index.get(value, [])
        return candidates if len(match) == 1 else [p for p in candidates if labels_match(p.labels, match)]

    @cached_property
    def services(self) -> Sequence[ServiceStatus]:
        """Service statuses."""
        return self.inputs.services()

    @cached_property
    def http_checks(self) -> Sequence[CheckResult]:
        """HTTP check results that are not stale."""
        return [c for c in self.inputs.http_checks() if c.checked_at >= self.oldest]

    def window(self, metric: str, match: Mapping[str, str], seconds: float) -> list[SeriesData]:
        """Raw points of the matching series over the last ``seconds``."""
        return self.inputs.samples.query(
            metric, start=self.now - seconds, end=self.now + _RAW_STEP, step=_RAW_STEP, agg="last", labels=match
        )


def evaluate(rule: Rule, snapshot: Snapshot, firing: Collection[str] = ()) -> Outcome | None:
    """The instances of a non-composite rule that hold now; ``firing`` (labels keys) get the hysteresis."""
    if isinstance(rule, ThresholdRule):
        return _threshold(rule, snapshot, firing)
    if isinstance(rule, ServiceRule):
        return _service(rule, snapshot)
    if isinstance(rule, HttpCheckRule):
        return _http_check(rule, snapshot)
    if isinstance(rule, CertificateRule):
        return _certificate(rule, snapshot)
    if isinstance(rule, AnomalyRule):
        return _anomaly(rule, snapshot)
    if isinstance(rule, ForecastRule):
        return _forecast(rule, snapshot)
    raise TypeError(f"{rule.name} is a composite rule: use combine()")


def _globbed(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _threshold(rule: ThresholdRule, snapshot: Snapshot, firing: Collection[str]) -> Outcome | None:
    values: list[tuple[Mapping[str, str], float | None]]
    if rule.window is not None:
        series = snapshot.window(rule.metric, rule.match, rule.window.total_seconds())
        if not series:
            return None
        values = [(s.labels, _aggregate(s.values, rule.agg)) for s in series]
    else:
        if rule.metric not in snapshot.latest:
            return None
        rate = rule.function == "rate"
        values = [(p.labels, p.rate() if rate else p.value) for p in snapshot.select(rule.metric, rule.match)]
    compare = _OPS[rule.op]
    hits = []
    for labels, value in values:
        if value is None:
            continue
        limit = rule.value
        if rule.clear is not None and firing and labels_key(labels) in firing:
            limit = rule.clear
        if compare(value, limit):
            hits.append(Hit(labels, value, rule.value))
    return Outcome(hits)


def _aggregate(values: Sequence[float], agg: str) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    if agg == "min":
        return min(finite)
    if agg == "max":
        return max(finite)
    if agg == "p95":
        return float(np.percentile(finite, 95))
    return sum(finite) / len(finite)


def _service(rule: ServiceRule, snapshot: Snapshot) -> Outcome | None:
    if rule.condition == "restarts":
        return _restarts(rule, snapshot)
    statuses = [s for s in snapshot.services if _globbed(s.name, rule.services)]
    if not statuses:
        return None
    hits = []
    unknown = set()
    for status in statuses:
        labels = {"service": status.name, "manager": status.manager, "category": status.category}
        if not status.settled:  # its manager does not answer, or it is starting: neither up nor down yet
            unknown.add(labels_key(labels))
        elif not status.up:
            hits.append(Hit(labels, 0.0))
    return Outcome(hits, frozenset(unknown))


def _restarts(rule: ServiceRule, snapshot: Snapshot) -> Outcome | None:
    series = [
        s
        for s in snapshot.window("service_restarts_total", {}, rule.within.total_seconds())
        if _globbed(s.labels.get("service", ""), rule.services)
    ]
    if not series:
        return None
    hits = []
    for s in series:
        # increase as Prometheus counts it: a drop is a counter reset, after which the new value is all increase
        increase = sum(b - a if b >= a else b for a, b in zip(s.values, s.values[1:], strict=False))
        if increase >= rule.restarts:
            hits.append(Hit(s.labels, increase, rule.restarts))
    return Outcome(hits)


def _http_check(rule: HttpCheckRule, snapshot: Snapshot) -> Outcome | None:
    results = [c for c in snapshot.http_checks if _globbed(c.name, rule.checks)]
    if not results:
        return None
    hits = []
    for result in results:
        labels = {"check": result.name}
        if rule.condition == "failing":
            if result.consecutive_failures >= rule.failures:
                hits.append(Hit(labels, result.consecutive_failures, rule.failures))
        elif rule.slower_than is not None and result.duration_seconds is not None:
            limit = rule.slower_than.total_seconds()
            if result.duration_seconds > limit:
                hits.append(Hit(labels, result.duration_seconds, limit))
    return Outcome(hits)


def _certificate(rule: CertificateRule, snapshot: Snapshot) -> Outcome | None:
    results = [c for c in snapshot.http_checks if _globbed(c.name, rule.checks) and c.tls_days_left is not None]
    if not results:
        return None
    return Outcome(
        [
            Hit({"check": c.name}, c.tls_days_left, rule.days)
            for c in results
            if c.tls_days_left is not None and c.tls_days_left < rule.days
        ]
    )


def _anomaly(rule: AnomalyRule, snapshot: Snapshot) -> Outcome | None:
    if snapshot.inputs.anomaly_scores is None:
        return None
    by_series: dict[str, list[AnomalyScore]] = defaultdict(list)
    for score in snapshot.inputs.anomaly_scores(snapshot.now - rule.window.total_seconds(), snapshot.now):
        if labels_match(score.labels, rule.match):
            by_series[labels_key(score.labels)].append(score)
    if not by_series:
        return None
    hits = []
    for points in by_series.values():
        if rule.score is not None:
            newest = max(points, key=lambda p: p.ts)
            if newest.score >= rule.score:
                hits.append(Hit(newest.labels, newest.score, rule.score))
        elif rule.rate is not None:
            rate = sum(p.anomalous for p in points) / len(points)
            if rate >= rule.rate:
                hits.append(Hit(points[0].labels, rate, rule.rate))
    return Outcome(hits)


def _forecast(rule: ForecastRule, snapshot: Snapshot) -> Outcome | None:
    if snapshot.inputs.forecasts is None:
        return None
    forecasts = [
        f
        for f in snapshot.inputs.forecasts()
        if f.metric == rule.metric
        and labels_match(f.labels, rule.match)
        and (f.quality if f.quality is not None else 0.0) >= rule.min_quality
    ]
    if not forecasts:
        return None
    horizon = rule.within.total_seconds()
    return Outcome(
        [
            Hit(f.labels, (f.full_at - snapshot.now) / 3600, horizon / 3600)  # in hours, for people
            for f in forecasts
            if f.full_at is not None and f.full_at - snapshot.now <= horizon
        ]
    )


def combine(rule: CompositeRule, outcomes: Mapping[str, Outcome | None]) -> Outcome | None:
    """A composite rule from this cycle's outcomes of the rules it names."""
    known = [outcomes.get(name) for name in rule.of]
    if rule.mode == "all" and any(o is None for o in known):
        return None
    present = [o for o in known if o is not None]
    if not present:
        return None
    keys = [{tuple(h.labels.get(label, "") for label in rule.on) for h in o.hits} for o in present]
    chosen = set.intersection(*keys) if rule.mode == "all" else set.union(*keys)
    return Outcome([Hit(dict(zip(rule.on, key, strict=True))) for key in sorted(chosen)])
