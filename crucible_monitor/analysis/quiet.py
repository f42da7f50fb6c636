"""A weekly maintenance window: the quietest contiguous 2-hour slot of the week, from the load baselines.

The typical value per hour of the week is the :class:`SeasonalBaseline` hour-of-week median over hourly buckets
(one per week and hour, so a median over the weeks in history) of CPU usage (the 1-minute load when CPU is not
stored) and, when the access logs are collected, the request rate. Each profile is scaled to [0, 1] over the week
(a flat one scores 0 everywhere, so it decides nothing) and the two are added; the slot with the lowest sum over
its two hours wins, wrapping from Sunday night into Monday. Too little history gives a recommendation that says
how much more is needed, never a slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.baseline import SeasonalBaseline
from crucible_monitor.analysis.features import KeySeries, read_columns
from crucible_monitor.schemas import NextTool, Recommendation
from crucible_monitor.storage.store import History
from crucible_monitor.units import human

__all__ = ["HISTORY_SECONDS", "MIN_HISTORY_SECONDS", "QUIET_KEYS", "SLOT_HOURS", "maintenance_window", "read_load"]

Floats = npt.NDArray[np.float64]
HOUR = 3600.0
DAY = 86400.0
WEEK_HOURS = 168
SLOT_HOURS = 2
HISTORY_SECONDS = 28 * DAY
"""How far back the profile reads (four weeks of hourly buckets)."""
MIN_HISTORY_SECONDS = 7 * DAY
"""Less history than this, and no slot is proposed."""
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

QUIET_KEYS: tuple[KeySeries, ...] = (
    KeySeries("cpu", "cpu_usage_ratio", {"cpu": "total"}, what="CPU usage", unit="ratio"),
    KeySeries("load", "load1", what="1-minute load", unit="threads"),
    KeySeries("requests", "http_requests_total", agg="rate", what="requests (all virtual hosts)", unit="requests"),
)
"""What the window is chosen from: CPU (else load) and, where collected, the request rate."""


def read_load(store: History, now: float) -> tuple[Floats, dict[str, Floats]]:
    """Hourly buckets of :data:`QUIET_KEYS` over the last :data:`HISTORY_SECONDS` (NaN where missing)."""
    return read_columns(store, QUIET_KEYS, start=now - HISTORY_SECONDS, end=now, step=HOUR)


@dataclass(frozen=True, slots=True)
class _Profile:
    key: KeySeries
    medians: Floats  # per hour of the week, NaN where no bucket
    weeks: Floats  # distinct weeks per hour of the week


def _profile(key: KeySeries, stamps: Floats, values: Floats) -> _Profile | None:
    finite = np.isfinite(values)
    if not finite.any():
        return None
    baseline = SeasonalBaseline(min_samples=1, min_periods=1).fit(stamps[finite], values[finite])
    table = baseline.hour_of_week_
    return _Profile(key, table[:, 0], table[:, 3])


def _scaled(medians: Floats) -> Floats:
    low, high = float(np.min(medians)), float(np.max(medians))
    if high - low <= 1e-12 * max(abs(high), 1.0):
        return np.zeros_like(medians)
    result: Floats = (medians - low) / (high - low)
    return result


def _hour_name(hour: int) -> str:
    return f"{_DAYS[hour // 24]} {hour % 24:02d}:00"


def _slot_name(hour: int) -> str:
    end = (hour + SLOT_HOURS) % WEEK_HOURS
    end_text = f"{end % 24:02d}:00" if end // 24 == hour // 24 else _hour_name(end)
    return f"{_hour_name(hour)}–{end_text} UTC"


def _too_little(title: str, evidence: list[str]) -> Recommendation:
    return Recommendation(
        severity="info",
        source="maintenance_window",
        title=f"No maintenance window yet: {title}",
        action="Keep the agent collecting; a window is proposed once every hour of the week has been seen.",
        evidence=evidence,
        next_tools=[],
    )


def maintenance_window(stamps: Floats, columns: dict[str, Floats], now: float) -> Recommendation:
    """The quietest 2-hour slot of the week with its typical CPU and request rate, or why there is none yet."""
    load_name = "cpu" if "cpu" in columns else "load"
    load_key = next(k for k in QUIET_KEYS if k.name == load_name)
    values = columns.get(load_name)
    seen = stamps[np.isfinite(values)] if values is not None else stamps[:0]
    span = now - float(seen.min()) if len(seen) else 0.0
    if span < MIN_HISTORY_SECONDS:
        days, missing = span / DAY, (MIN_HISTORY_SECONDS - span) / DAY
        return _too_little(
            f"{days:.1f} days of history, {missing:.1f} more needed",
            [f"the quietest slot of the week needs at least 7 days of hourly {load_key.what} (has {days:.1f})"],
        )
    load = _profile(load_key, stamps, values) if values is not None else None
    if load is None:  # unreachable once the span is known; keeps the types honest
        return _too_little("no load history", [])
    gaps = np.flatnonzero(~np.isfinite(load.medians))
    if len(gaps):
        first = int(gaps[0])
        return _too_little(
            f"{len(gaps)} hours of the week have no data",
            [
                f"{len(gaps)} of 168 hours of the week have no {load_key.what} yet, the first {_hour_name(first)}"
                " UTC; up to one more week of history fills them"
            ],
        )
    requests_values = columns.get("requests")
    requests = _profile(QUIET_KEYS[2], stamps, requests_values) if requests_values is not None else None
    score = _scaled(load.medians)
    if requests is not None:
        # hours without a request rate yet count as the busiest: no slot is chosen on what was never seen
        score = score + _scaled(np.nan_to_num(requests.medians, nan=float(np.nanmax(requests.medians))))
    slots = score + np.roll(score, -1)
    hour = int(np.argmin(slots))
    hours = [hour, (hour + 1) % WEEK_HOURS]
    weeks = int(np.min(load.weeks[hours]))
    evidence = [
        f"typical {load_key.what} {human(float(np.mean(load.medians[hours])), load_key.value_unit)}"
        f" (week median {human(float(np.median(load.medians)), load_key.value_unit)})",
    ]
    if requests is not None:
        unit = requests.key.value_unit
        week_rate = human(float(np.nanmedian(requests.medians)), unit)
        if np.isfinite(requests.medians[hours]).any():
            rate = human(float(np.nanmean(requests.medians[hours])), unit)
            evidence.append(f"typical request rate {rate} (week median {week_rate})")
        else:
            evidence.append(f"no request rate seen in this slot yet (week median {week_rate})")
    evidence.append(f"medians over {weeks} weeks of hourly history")
    return Recommendation(
        severity="info",
        source="maintenance_window",
        title=f"Quietest 2-hour slot of the week: {_slot_name(hour)}",
        action="Schedule weekly maintenance (upgrades, restarts, heavy backups) in this slot.",
        evidence=evidence,
        next_tools=[
            NextTool(
                tool="get_metrics",
                arguments={"metric": load_key.metric, "labels": dict(load_key.labels), "since": "28d", "step": "1h"},
                why="the hourly history the slot comes from",
            )
        ],
    )
