"""False positives against a static threshold on the raw value, at the same or better recall.

Both detectors get the same alert de-duplication (:func:`suppress_repeats` over the same rows), so a static rule is
not charged for every row of a long excursion. Counting, per file, after the probationary period:

- an **alert** is a row left non-zero by the de-duplication (and, for our detector, at or above its threshold);
- a **false positive** is an alert outside every labelled window;
- **recall** is the share of windows with at least one alert.

The static rule is two-sided: it alerts on values above ``high`` or below ``low``, fixed per file from the
probationary rows (what an operator sees before setting a threshold): ``high = max + m·range``, ``low = min -
m·range``. Its one knob ``m`` is swept; the static rule is credited with its fewest false positives among the
settings whose recall is at least ours.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from score import probation_length

from crucible_monitor.analysis.streaming import suppress_repeats

__all__ = ["MARGINS", "AlertCounts", "count_alerts", "static_alerts", "static_sweep"]

MARGINS: tuple[float, ...] = tuple(np.round(np.arange(-0.3, 2.01, 0.05), 2))
"""The static rule's margins tried, in ranges of the probationary values."""

Windows = Sequence[tuple[np.datetime64, np.datetime64]]


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """Alerts of a detector over a corpus."""

    alerts: int
    false_positives: int
    windows: int
    windows_detected: int

    @property
    def recall(self) -> float:
        """Share of windows with an alert."""
        return self.windows_detected / self.windows if self.windows else 0.0

    def __add__(self, other: AlertCounts) -> AlertCounts:
        return AlertCounts(
            self.alerts + other.alerts,
            self.false_positives + other.false_positives,
            self.windows + other.windows,
            self.windows_detected + other.windows_detected,
        )


def count_alerts(timestamps: npt.NDArray[np.datetime64], alert: npt.NDArray[np.bool_], windows: Windows) -> AlertCounts:
    """Alerts, false positives and windows found in one file (rows in the probationary period do not count)."""
    rows = np.flatnonzero(alert)
    rows = rows[rows >= probation_length(len(timestamps))]
    inside = np.zeros(len(timestamps), dtype=bool)
    found = 0
    for start, end in windows:
        left, right = int(np.searchsorted(timestamps, start)), int(np.searchsorted(timestamps, end, "right"))
        inside[left:right] = True
        found += bool(((rows >= left) & (rows < right)).any())
    return AlertCounts(len(rows), int((~inside[rows]).sum()), len(windows), found)


def static_alerts(values: npt.NDArray[np.float64], margin: float, dedup_rows: int) -> npt.NDArray[np.bool_]:
    """The static rule's de-duplicated alerts on one file."""
    probation = values[: max(1, probation_length(len(values)))]
    high, low = float(probation.max()), float(probation.min())
    spread = high - low
    beyond = np.maximum(np.maximum(values - (high + margin * spread), (low - margin * spread) - values), 0.0)
    alerts: npt.NDArray[np.bool_] = suppress_repeats(beyond, dedup_rows) > 0
    return alerts


def static_sweep(
    data: Mapping[str, tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]],
    windows: Mapping[str, Windows],
    dedup_rows: int,
) -> dict[float, AlertCounts]:
    """The static rule's counts over the corpus for every margin of :data:`MARGINS`."""
    out = {}
    for margin in MARGINS:
        total = AlertCounts(0, 0, 0, 0)
        for name, (stamps, values) in data.items():
            total += count_alerts(stamps, static_alerts(values, margin, dedup_rows), windows[name])
        out[margin] = total
    return out
