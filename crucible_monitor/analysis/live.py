"""The streaming detector live: every key series scored bucket by bucket from the first collection.

Each scoring run reads the buckets completed since the last (:func:`~.features.read_columns`) and scores each key
series' points with its own :class:`~.streaming.StreamingDetector`; no host model is needed. Per series,
``min_buckets`` buckets at or above its threshold, none further apart than ``anomaly_gap``, open an anomaly; it grows
while buckets stay above and closes after a gap. Anomalies are stored beside the host model's (``model_id`` 0,
signature ``streaming:<series>``), so listing, explanations and anomaly alert rules see both.

The threshold is ``analysis.streaming_threshold`` (chosen on NAB, ``docs/benchmarks.md``), scaled per series by
``analysis.sensitivity``; a range narrower than six of a series' ``min_mad`` counts as that wide (a move the host
model's baselines would not notice is not an anomaly here either). Once the host model is fitted, a streaming
anomaly overlapping one of its anomalies is joined into it (:mod:`~.anomalies` lists that one). The detectors live
in memory: after a restart they re-learn up to a detector window of history (scores discarded) and score on from
where scoring had stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.anomalies import EVENTS_BEFORE
from crucible_monitor.analysis.features import KeySeries, read_columns
from crucible_monitor.analysis.livekeys import FAMILIES, Family, KeyRegistry, custom_families, read_family_columns
from crucible_monitor.analysis.registry import ProcessSnapshots
from crucible_monitor.analysis.streaming import StreamingDetector
from crucible_monitor.config import AnalysisConfig
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import History

__all__ = ["SIGNATURE", "LiveDetectors", "series_threshold"]

SIGNATURE = "streaming:"
"""The signature prefix of a streaming anomaly; the series name follows."""
_PROGRESS = "streaming_until"
_HISTORY_BUCKETS = 4000  # buckets re-learned after a restart: the detector's window
_WIDTH_MADS = 6.0  # a key series' narrowest range that counts, in its min_mad (about the width of quiet data)


def series_threshold(threshold: float, sensitivity: float) -> float:
    """The score at which a series counts: ``threshold``'s excess beyond the range divided by ``sensitivity``."""
    excess = threshold / (1.0 - threshold) / sensitivity
    return excess / (1.0 + excess)


@dataclass(slots=True)
class _Point:
    ts: float
    score: float
    value: float
    low: float
    high: float


@dataclass(slots=True)
class _Open:
    id: int
    start: float
    end: float
    peak: _Point


@dataclass(slots=True)
class _Track:
    pending: list[_Point] = field(default_factory=list)
    current: _Open | None = None


class LiveDetectors:
    """The key series' streaming detectors and their anomalies: the host's ``keys``, and each series of the
    ``families`` (:mod:`~.livekeys`: per service, check, vhost, pool, queue...), remembered in ``registry``."""

    def __init__(
        self,
        state: StateDB,
        store: History,
        snapshots: ProcessSnapshots,
        config: AnalysisConfig,
        *,
        host: str,
        keys: Sequence[KeySeries],
        registry: KeyRegistry,
        families: Sequence[Family] = FAMILIES,
    ) -> None:
        self.state, self.store, self.snapshots = state, store, snapshots
        self.keys = tuple(keys)
        self.builtin_families = tuple(families)
        self.registry = registry
        self.config = config
        self.host = host
        self._detectors: dict[str, StreamingDetector] = {}
        self._tracks: dict[str, _Track] = {}
        self._until: float | None = None  # buckets before this are learned (in this process)

    @property
    def watched(self) -> int:
        """Series with a detector in this process."""
        return len(self._detectors)

    @property
    def families(self) -> tuple[Family, ...]:
        """The families watched: the built-in ones and ``analysis.live_series``."""
        return self.builtin_families + tuple(custom_families(self.config.live_series))

    @property
    def step(self) -> float:
        """Bucket width in seconds."""
        return self.config.step.total_seconds()

    def threshold(self, name: str) -> float:
        """The score at which series ``name`` counts: its own sensitivity, else its family's, else 1."""
        chosen = self.config.sensitivity
        sensitivity = chosen.get(name, chosen.get(name.split(":", 1)[0], 1.0))
        return series_threshold(self.config.streaming_threshold, sensitivity)

    def run(self, end: float) -> tuple[list[int], list[int]]:
        """Score the buckets before ``end`` not scored yet; returns the anomaly ids opened and closed."""
        if self._until is None:  # the first run of this process: learn the recent past, score what is new
            rows = self.state.execute("SELECT value FROM analysis_state WHERE key = ?", (_PROGRESS,))
            learn_from = end - _HISTORY_BUCKETS * self.step
            score_from = float(rows[0]["value"]) if rows else learn_from
            self._load_open()
        else:
            learn_from = score_from = self._until
        opened: list[int] = []
        closed: list[int] = []
        if end > learn_from:
            stamps, columns = read_columns(self.store, self.keys, start=learn_from, end=end, step=self.step)
            for key in self.keys:
                if key.name in columns:
                    self._series(key, stamps, columns[key.name], score_from, opened, closed)
            stamps, series = read_family_columns(
                self.store, self.families, self.registry, start=learn_from, end=end, step=self.step
            )
            for key, column in series:
                self._series(key, stamps, column, score_from, opened, closed)
            self._until = end
            self.state.execute(
                "INSERT INTO analysis_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_PROGRESS, repr(end)),
            )
        for track in self._tracks.values():  # quiet for anomaly_gap, or no data since: closed
            if track.current is not None and end - track.current.end >= self.config.anomaly_gap.total_seconds():
                self.state.execute("UPDATE anomalies SET ongoing = 0 WHERE id = ?", (track.current.id,))
                closed.append(track.current.id)
                track.current = None
        return opened, closed

    def _series(
        self,
        key: KeySeries,
        stamps: npt.NDArray[np.float64],
        column: npt.NDArray[np.float64],
        score_from: float,
        opened: list[int],
        closed: list[int],
    ) -> None:
        name = key.name
        detector = self._detectors.get(name)
        if detector is None:
            detector = StreamingDetector(warmup=self.config.streaming_warmup, min_width=_WIDTH_MADS * key.min_mad)
            self._detectors[name] = detector.fit([], [])
        seen = np.isfinite(column)
        learn = seen & (stamps < score_from)
        detector.score_samples(stamps[learn], column[learn])
        value_view = detector.views_["value"]
        threshold = self.threshold(name)
        for i in np.flatnonzero(seen & (stamps >= score_from)):
            low, high = value_view.bounds
            ts, value = float(stamps[i]), float(column[i])
            score = float(detector.score_samples([ts], [value])[0])
            self._track(name, _Point(ts, score, value, low, high), threshold, opened, closed)

    def _track(self, name: str, point: _Point, threshold: float, opened: list[int], closed: list[int]) -> None:
        track = self._tracks.setdefault(name, _Track())
        gap = self.config.anomaly_gap.total_seconds()
        above = point.score >= threshold
        current = track.current
        if current is not None:
            if above:
                current.end = point.ts + self.step
                if point.score > current.peak.score:
                    current.peak = point
                self._store(name, current, threshold)
            elif point.ts - current.end >= gap:
                self.state.execute("UPDATE anomalies SET ongoing = 0 WHERE id = ?", (current.id,))
                closed.append(current.id)
                track.current = None
            return
        if track.pending and point.ts - (track.pending[-1].ts + self.step) >= gap:
            track.pending.clear()
        if not above:
            return
        track.pending.append(point)
        if len(track.pending) >= self.config.min_buckets:
            peak = max(track.pending, key=lambda p: p.score)
            track.current = _Open(0, track.pending[0].ts, point.ts + self.step, peak)
            self._store(name, track.current, threshold)
            opened.append(track.current.id)
            track.pending.clear()

    def _store(self, name: str, anomaly: _Open, threshold: float) -> None:
        peak = anomaly.peak
        attribution = [
            {
                "name": name,
                "value": peak.value,
                "baseline": (peak.low + peak.high) / 2 if math.isfinite(peak.low) else peak.value,
                "mads": 0.0,
                "contribution": peak.score,
            }
        ]
        context: dict[str, Any] = {
            "snapshot": self.snapshots.near(peak.ts, after=3 * self.step),
            "events": [
                s.id for s in self.state.events(since=peak.ts - EVENTS_BEFORE, until=peak.ts + self.step, limit=20)
            ],
            "range": [peak.low, peak.high],
        }
        values = (anomaly.start, peak.ts, anomaly.end, peak.score, json.dumps(attribution), json.dumps(context))
        if anomaly.id:
            self.state.execute(
                "UPDATE anomalies SET start_ts = ?, peak_ts = ?, end_ts = ?, score = ?, attribution = ?, context = ? "
                "WHERE id = ?",
                (*values, anomaly.id),
            )
            return
        with self.state.transaction() as db:
            cursor = db.execute(
                "INSERT INTO anomalies (host, start_ts, peak_ts, end_ts, score, attribution, context, ongoing, "
                "threshold, model_id, signature) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, 0, ?)",
                (self.host, *values, threshold, SIGNATURE + name),
            )
            anomaly.id = int(cursor.lastrowid or 0)

    def _load_open(self) -> None:
        """The streaming anomalies still open when the agent stopped: they go on or close."""
        rows = self.state.execute(
            "SELECT * FROM anomalies WHERE ongoing = 1 AND host = ? AND model_id = 0", (self.host,)
        )
        for row in rows:
            name = str(row["signature"]).removeprefix(SIGNATURE)
            if name not in self.registry:
                continue
            context = json.loads(row["context"])
            low, high = context.get("range", [math.nan, math.nan])
            [attribution] = json.loads(row["attribution"])
            peak = _Point(row["peak_ts"], row["score"], attribution["value"], low, high)
            self._tracks.setdefault(name, _Track()).current = _Open(row["id"], row["start_ts"], row["end_ts"], peak)
