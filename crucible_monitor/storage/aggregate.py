"""Downsampling of one series into step buckets, and counter rates (pure numpy).

Timestamps are int64 milliseconds, sorted ascending. Buckets are aligned to the Unix epoch and stamped with their
start. A counter's rate comes from consecutive pairs: the first point and a counter that went backwards (a reset or
wrap) give no rate, never a false 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crucible_monitor.models import AGGREGATIONS, Aggregation

__all__ = ["AGGREGATIONS", "ROLLUP_COLUMNS", "Aggregation", "bucket_raw", "bucket_rollup", "counter_rate", "rollup"]


ROLLUP_COLUMNS: dict[str, tuple[str, ...]] = {
    "avg": ("sum", "count"),
    "min": ("min",),
    "max": ("max",),
    "last": ("last",),
    "p95": ("sum", "count"),
    "count": ("count",),
    "rate": ("last",),
}
"""The rollup columns each aggregation reads."""

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def _groups(ts: Ints, step_ms: int) -> tuple[Ints, Ints, Ints]:
    """Bucket start of each group, and the start and end index of each group in ``ts``."""
    buckets = ts // step_ms * step_ms
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]]) if len(ts) else np.empty(0, np.int64)
    ends = np.r_[starts[1:], len(ts)].astype(np.int64)
    return buckets[starts], starts.astype(np.int64), ends


def _percentile(values: Floats, starts: Ints, ends: Ints, q: float) -> Floats:
    """Per-group percentile with linear interpolation, vectorised."""
    group = np.repeat(np.arange(len(starts)), ends - starts)
    ordered = values[np.lexsort((values, group))]
    position = starts + (ends - starts - 1) * q
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ends - 1)
    frac = position - low
    result: Floats = ordered[low] + frac * (ordered[high] - ordered[low])
    return result


def bucket_raw(ts: Ints, values: Floats, step_ms: int, agg: Aggregation) -> tuple[Ints, Floats]:
    """Aggregate raw points of one series into buckets of ``step_ms``."""
    if agg == "rate":
        return counter_rate(ts, values, step_ms)
    stamps, starts, ends = _groups(ts, step_ms)
    if not len(stamps):
        return stamps, np.empty(0)
    match agg:
        case "avg":
            out = np.add.reduceat(values, starts) / (ends - starts)
        case "min":
            out = np.minimum.reduceat(values, starts)
        case "max":
            out = np.maximum.reduceat(values, starts)
        case "last":
            out = values[ends - 1]
        case "count":
            out = (ends - starts).astype(np.float64)
        case "p95":
            out = _percentile(values, starts, ends, 0.95)
    return stamps, out


def bucket_rollup(
    ts: Ints, columns: dict[str, npt.NDArray[np.float64] | Ints], step_ms: int, agg: Aggregation
) -> tuple[Ints, Floats]:
    """Aggregate rollup rows (min, max, sum, count, last per bucket) of one series into coarser buckets.

    ``columns`` needs only what ``agg`` uses (:data:`ROLLUP_COLUMNS`). p95 over rollups is taken over the bucket
    averages: an approximation, exact only on the raw tier.
    """
    if agg == "rate":
        return counter_rate(ts, columns["last"].astype(np.float64), step_ms)
    stamps, starts, ends = _groups(ts, step_ms)
    if not len(stamps):
        return stamps, np.empty(0)
    counts = columns["count"].astype(np.float64) if "count" in columns else np.empty(0)
    match agg:
        case "avg":
            out = np.add.reduceat(columns["sum"], starts) / np.add.reduceat(counts, starts)
        case "min":
            out = np.minimum.reduceat(columns["min"], starts)
        case "max":
            out = np.maximum.reduceat(columns["max"], starts)
        case "last":
            out = columns["last"][ends - 1].astype(np.float64)
        case "count":
            out = np.add.reduceat(counts, starts)
        case "p95":
            out = _percentile(columns["sum"] / counts, starts, ends, 0.95)
    return stamps, out


def counter_rate(ts: Ints, values: Floats, step_ms: int) -> tuple[Ints, Floats]:
    """Per-second rate of a counter in each bucket: increase over valid consecutive pairs / their duration."""
    if len(ts) < 2:
        return np.empty(0, np.int64), np.empty(0)
    increase = np.diff(values)
    seconds = np.diff(ts) / 1000.0
    valid = (increase >= 0) & (seconds > 0)
    pair_ts = ts[1:][valid]
    if not len(pair_ts):
        return np.empty(0, np.int64), np.empty(0)
    stamps, starts, _ = _groups(pair_ts, step_ms)
    rate = np.add.reduceat(increase[valid], starts) / np.add.reduceat(seconds[valid], starts)
    return stamps, rate


def rollup(
    series: Ints, ts: Ints, values: Floats, step_ms: int
) -> tuple[Ints, Ints, dict[str, npt.NDArray[np.float64] | Ints]]:
    """Rollup rows (min, max, sum, count, last) of many series at once, sorted by series code then time.

    Returns the index of each rollup row's first raw row (to take its series), the bucket starts, and the columns.
    """
    buckets = ts // step_ms * step_ms
    change = np.r_[True, (series[1:] != series[:-1]) | (buckets[1:] != buckets[:-1])] if len(ts) else np.empty(0, bool)
    starts = np.flatnonzero(change).astype(np.int64)
    ends = np.r_[starts[1:], len(ts)].astype(np.int64)
    counts = ends - starts
    if not len(starts):
        empty = np.empty(0)
        return starts, starts, {"min": empty, "max": empty, "sum": empty, "count": starts, "last": empty}
    return (
        starts,
        buckets[starts],
        {
            "min": np.minimum.reduceat(values, starts),
            "max": np.maximum.reduceat(values, starts),
            "sum": np.add.reduceat(values, starts),
            "count": counts,
            "last": values[ends - 1],
        },
    )
