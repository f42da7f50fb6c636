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

:func:`tradeoff` draws the whole curve for either detector: over every threshold (ours) or margin (the static
rule: :func:`static_scores` gives, per row, the largest margin at which it alerts), the fewest false positives at
which each number of windows is found.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from score import probation_length

from crucible_monitor.analysis.streaming import suppress_repeats

__all__ = ["MARGINS", "AlertCounts", "count_alerts", "static_alerts", "static_scores", "static_sweep", "tradeoff"]

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


def static_scores(values: npt.NDArray[np.float64], dedup_rows: int) -> npt.NDArray[np.float64]:
    """Per row, the margin below which the static rule alerts there (``-inf`` where it never does).

    ``static_scores(values, rows) > m`` are the alerts of ``static_alerts(values, m, rows)`` (up to rounding where two
    excesses tie): a row alerts when its excess beyond the probationary range passes ``m`` ranges and beats every
    excess of the ``rows`` rows before it.
    """
    probation = values[: max(1, probation_length(len(values)))]
    high, low = float(probation.max()), float(probation.min())
    spread = high - low
    excess = np.maximum(values - high, low - values)
    out = np.full(len(values), -np.inf)
    window: deque[tuple[int, float]] = deque()  # sliding max of the previous `dedup_rows` excesses
    for i, e in enumerate(excess.tolist()):
        while window and window[0][0] < i - dedup_rows:
            window.popleft()
        if (not window or e > window[0][1]) and (spread > 0 or e > 0):
            out[i] = e / spread if spread > 0 else np.inf
        while window and window[-1][1] <= e:
            window.pop()
        window.append((i, e))
    return out


def tradeoff(
    files: Sequence[tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64], Windows]],
) -> dict[int, tuple[int, float]]:
    """For each number of windows found, the fewest false positives and the threshold that finds them.

    ``files`` holds each file's timestamps, alert scores (a row alerts at a threshold when its score is at least
    it; ``-inf`` where it never alerts) and windows. Rows in the probationary period do not count. A number of
    windows passed over in one step costs what the next number found costs (finding more is never cheaper).
    """
    scores, keys = [], []
    offset = 0
    for stamps, values, windows in files:
        key = np.full(len(stamps), -1, dtype=np.int64)
        for w, (start, end) in enumerate(windows):
            key[int(np.searchsorted(stamps, start)) : int(np.searchsorted(stamps, end, "right"))] = offset + w
        offset += len(windows)
        live = np.arange(len(stamps)) >= probation_length(len(stamps))
        alerting = live & (values > -np.inf)
        scores.append(values[alerting])
        keys.append(key[alerting])
    score, key = np.concatenate(scores), np.concatenate(keys)
    order = np.argsort(-score, kind="stable")
    score, key = score[order], key[order]
    found: set[int] = set()
    false_positives = 0
    best: dict[int, tuple[int, float]] = {}
    for i in range(len(score)):
        if key[i] < 0:
            false_positives += 1
        else:
            found.add(int(key[i]))
        if (i + 1 == len(score) or score[i + 1] != score[i]) and len(found) not in best:
            best[len(found)] = (false_positives, float(score[i]))
    for count in range(max(best, default=0) - 1, 0, -1):
        best.setdefault(count, best[count + 1])
    return dict(sorted(best.items()))
