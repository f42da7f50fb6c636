"""Metric history and reports: one metric (or a group of metrics) over a time range, from the store."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from typing import cast

import numpy as np

from crucible_monitor.errors import QueryError
from crucible_monitor.models import AGGREGATIONS, Aggregation, MetricKind, MetricSpec, iso
from crucible_monitor.schemas import HistorySeries, MetricHistory, MetricReport, MetricsReport, SeriesReport
from crucible_monitor.storage.store import MetricStore
from crucible_monitor.units import human

__all__ = ["MAX_POINTS", "baseline", "metric_group", "metrics_report", "query_history", "rise", "since_above"]

MAX_POINTS = 11_000
"""Most buckets one history query may ask for per series."""

_SINCE_LOOKBACK = 86400.0
_NICE_STEPS = (10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)


def query_history(
    store: MetricStore,
    catalogue: Mapping[str, MetricSpec],
    metric: str,
    *,
    start: float,
    end: float,
    step: float | None = None,
    agg: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> MetricHistory:
    """Points of one metric over a time range, downsampled to ``step`` seconds.

    ``agg`` defaults to ``rate`` for counters and ``avg`` for gauges; ``step`` defaults to about 300 buckets.

    Raises:
        QueryError: unknown metric or aggregation, an empty or reversed range, or too many points; the message
            lists the valid choices.
    """
    spec = catalogue.get(metric)
    if spec is None:
        names = sorted(catalogue)
        close = difflib.get_close_matches(metric, names, n=5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise QueryError(f"unknown metric {metric!r}; {hint}list_metrics shows all {len(names)} metrics")
    chosen = agg or ("rate" if spec.kind is MetricKind.COUNTER else "avg")
    valid = [a for a in AGGREGATIONS if a != "rate" or spec.kind is MetricKind.COUNTER]
    if chosen not in valid:
        raise QueryError(f"invalid aggregation {chosen!r} for {spec.kind.value} {metric}; valid: {', '.join(valid)}")
    if not end > start:
        raise QueryError(f"the range is empty: start ({iso(start)}) must be before end ({iso(end)})")
    step = step or _auto_step(end - start, 300)
    if step <= 0 or (end - start) / step > MAX_POINTS:
        raise QueryError(
            f"step {step:g}s gives {math.ceil((end - start) / step)} points over this range; "
            f"the most is {MAX_POINTS}: use a step of at least {math.ceil((end - start) / MAX_POINTS)}s"
        )
    series = store.query(metric, start=start, end=end, step=step, agg=cast(Aggregation, chosen), labels=labels)
    return MetricHistory(
        metric=metric,
        kind=spec.kind.value,
        unit=spec.unit + ("/s" if chosen == "rate" else ""),
        agg=chosen,
        start=iso(start),
        end=iso(end),
        step_seconds=step,
        tiers=sorted({t for s in series for t in s.tiers}),
        series=[HistorySeries(labels=s.labels, points=list(zip(s.timestamps, s.values, strict=True))) for s in series],
    )


def metrics_report(
    store: MetricStore,
    catalogue: Mapping[str, MetricSpec],
    metric: str,
    *,
    start: float,
    end: float,
    step: float | None = None,
    agg: str | None = None,
    labels: Mapping[str, str] | None = None,
    max_points: int = 60,
    max_series: int = 10,
) -> MetricsReport:
    """A metric, or a group of metrics by prefix (``memory``, ``disk``), summarised with bounded points.

    Raises:
        QueryError: neither a metric nor a group; the message lists the groups and close metric names.
    """
    names = metric_group(list(catalogue), metric)
    span = end - start
    reports = []
    for name in names:
        history = query_history(
            store,
            catalogue,
            name,
            start=start,
            end=end,
            step=step or _auto_step(span, max_points),
            agg=agg,
            labels=labels,
        )
        reports.append(_report(history, catalogue[name].description, max_points, max_series))
    return MetricsReport(
        reports=reports,
        hint="narrow with labels={...}; a longer since= with a coarser step shows trends; "
        "get_events(since=...) lines changes up with events",
    )


def since_above(
    store: MetricStore, metric: str, labels: Mapping[str, str], threshold: float, now: float
) -> float | None:
    """When ``metric`` last went above ``threshold`` within a day (1-minute maxima), or None."""
    series = store.query(metric, start=now - _SINCE_LOOKBACK, end=now + 1, step=60, agg="max", labels=labels)
    if not series:
        return None
    stamps, values = series[0].timestamps, series[0].values
    below = [i for i, v in enumerate(values) if v < threshold]
    if not below:
        return stamps[0] if stamps else None
    return stamps[below[-1] + 1] if below[-1] + 1 < len(stamps) else None


_BASELINE_SPAN = 3600.0
_BASELINE_GAP = 300.0
_BASELINE_MINUTES = 10


def baseline(store: MetricStore, metric: str, labels: Mapping[str, str], now: float) -> float | None:
    """The usual level of a series: the median of its 1-minute means over the hour before the last 5 minutes;
    None with fewer than 10 such minutes."""
    end = now - _BASELINE_GAP
    series = store.query(metric, start=end - _BASELINE_SPAN, end=end, step=60, agg="avg", labels=labels)
    values = [v for s in series[:1] for v in s.values if not math.isnan(v)]
    return float(np.median(values)) if len(values) >= _BASELINE_MINUTES else None


def rise(store: MetricStore, metric: str, labels: Mapping[str, str], seconds: float, now: float) -> float | None:
    """How much a series grew over the last ``seconds``: its newest value less its lowest (a counter reset
    counts from zero); None without points."""
    lasts = store.query(metric, start=now - seconds, end=now + 1, step=60, agg="last", labels=labels)
    lows = store.query(metric, start=now - seconds, end=now + 1, step=60, agg="min", labels=labels)
    last = [v for s in lasts[:1] for v in s.values if not math.isnan(v)]
    low = [v for s in lows[:1] for v in s.values if not math.isnan(v)]
    return max(0.0, last[-1] - min(low)) if last and low else None


def metric_group(names: list[str], metric: str) -> list[str]:
    """``metric`` itself if it is a metric name, else the metrics of the group it names (``memory`` → memory_*).

    Raises:
        QueryError: neither; the message lists the groups and close metric names.
    """
    if metric in names:
        return [metric]
    group = sorted(n for n in names if n.startswith(f"{metric}_"))
    if group:
        return group
    groups = sorted({n.split("_")[0] for n in names})
    close = difflib.get_close_matches(metric, sorted(names), n=5)
    raise QueryError(
        f"unknown metric or group {metric!r}; groups: {', '.join(groups)}"
        + (f"; close metric names: {', '.join(close)}" if close else "")
    )


def _auto_step(span: float, buckets: int) -> float:
    target = span / max(1, buckets)
    return float(next((s for s in _NICE_STEPS if s >= target), math.ceil(target / 86400) * 86400))


def _report(history: MetricHistory, description: str, max_points: int, max_series: int) -> MetricReport:
    """Summary statistics per series and at most ``max_points`` points, for the ``max_series`` largest series."""
    summaries = []
    for series in history.series:
        values = np.array([v for _, v in series.points], dtype=float)
        if not len(values):
            continue
        stats = {
            "min": float(values.min()),
            "max": float(values.max()),
            "avg": float(values.mean()),
            "p95": float(np.percentile(values, 95)),
            "last": float(values[-1]),
        }
        stride = max(1, math.ceil(len(series.points) / max_points))
        points = [(iso(ts), round(v, 6)) for ts, v in series.points[::stride]]
        summaries.append(
            SeriesReport(
                labels=series.labels,
                points=points,
                stats={k: round(v, 6) for k, v in stats.items()},
                human={k: human(v, history.unit) for k, v in stats.items()},
            )
        )
    summaries.sort(key=lambda s: s.stats["max"], reverse=True)
    return MetricReport(
        metric=history.metric,
        kind=history.kind,
        unit=history.unit,
        description=description,
        agg=history.agg,
        start=history.start,
        end=history.end,
        step_seconds=history.step_seconds,
        series=summaries[:max_series],
        series_total=len(summaries),
        series_limit=max_series,
        truncated=len(summaries) > max_series,
    )
