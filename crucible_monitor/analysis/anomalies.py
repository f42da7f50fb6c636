"""Anomaly tracking: scored buckets become stored anomalies (start, peak, end, attribution); listing and rates.

Buckets above the model's threshold form an anomaly once ``min_buckets`` of them come within ``anomaly_gap``; it
grows while buckets stay above and closes after ``anomaly_gap`` without one. The peak's attribution (how far the
score falls when each series is set back to its baseline), the process snapshot nearest the peak and the events
around it are stored with it. Stored anomalies are listed, scored for alerting and counted per time bucket.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.features import KeySeries
from crucible_monitor.analysis.registry import FittedModel, ProcessSnapshots
from crucible_monitor.config import AnalysisConfig
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.models import iso
from crucible_monitor.schemas import AnomalyRate, AnomalyScore, AnomalyView, RateBucket
from crucible_monitor.storage.state import StateDB
from crucible_monitor.units import human

__all__ = ["EVENTS_BEFORE", "AnomalyLog", "Attribution", "Details", "describe", "describe_streaming"]

Floats = npt.NDArray[np.float64]

EVENTS_BEFORE = 900.0
"""Seconds: events this long before an anomaly belong to its explanation."""
_JOINED = (
    "NOT (model_id = 0 AND EXISTS (SELECT 1 FROM anomalies AS h WHERE h.model_id > 0 AND h.host = anomalies.host "
    "AND h.start_ts < anomalies.end_ts AND h.end_ts > anomalies.start_ts))"
)
"""Rows shown: a streaming anomaly overlapping one of the host model's is joined into it (that one is shown)."""
_SCORES_LOOKBACK = 86400.0  # anomalies scored for alerting may have started this long before the window


class Attribution(TypedDict):
    """One key series at an anomaly's peak: its value, baseline, deviation and share of the score."""

    name: str
    value: float | None
    baseline: float
    mads: float
    contribution: float


@dataclass(frozen=True, slots=True)
class Details:
    """What is stored about an anomaly's peak: attribution (strongest first), signature, context."""

    attribution: list[Attribution]
    signature: str
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A bucket above the threshold that may start an anomaly."""

    ts: float
    score: float
    details: Details


@dataclass(slots=True)
class _Open:
    """An anomaly being extended; ``details`` are set when its peak moved and not yet stored."""

    id: int
    start: float
    peak: float
    end: float
    score: float
    details: Details | None = None


class AnomalyLog:
    """The anomalies of one host in ``state.db``: opened, extended and closed from scores, then read.

    Args:
        state: ``state.db`` (its ``analysis`` area migrated).
        snapshots: the stored process snapshots, for the context of a peak.
        config: the ``analysis`` settings (``step``, ``min_buckets``, ``anomaly_gap``); may be replaced on reload.
        host: the host name stored with each anomaly.
        keys: every key series by name (the host model's and the live detector's).
    """

    def __init__(
        self,
        state: StateDB,
        snapshots: ProcessSnapshots,
        config: AnalysisConfig,
        *,
        host: str,
        keys: Mapping[str, KeySeries],
    ) -> None:
        self.state = state
        self.snapshots = snapshots
        self.config = config
        self.host = host
        self.keys = keys
        self._pending: list[_Candidate] = []  # buckets above the threshold, not yet an anomaly

    @property
    def step(self) -> float:
        """Bucket width in seconds."""
        return self.config.step.total_seconds()

    # -- tracking -------------------------------------------------------------------------------------------

    def track(
        self,
        fitted: FittedModel,
        stamps: Floats,
        columns: Mapping[str, Floats],
        deviations: Floats,
        scores: Floats,
        present: npt.NDArray[np.bool_],
    ) -> tuple[list[int], list[int]]:
        """Turn bucket scores into anomalies; returns the ids opened and closed.

        ``min_buckets`` buckets above the threshold, none further apart than ``anomaly_gap``, open one (starting at
        the first); it grows while buckets stay above and closes after a gap. The peak is the highest bucket; its
        details are recomputed when a higher one comes.
        """
        threshold = fitted.model.threshold_
        gap = self.config.anomaly_gap.total_seconds()
        current = self._open_anomaly()
        opened: list[int] = []
        closed: list[int] = []
        for i in (int(i) for i in np.flatnonzero(present)):
            ts, score = float(stamps[i]), float(scores[i])
            above = score >= threshold
            if current is not None:
                if above:
                    current.end = ts + self.step
                    if score > current.score:
                        current.peak, current.score = ts, score
                        current.details = self.peak_details(fitted, ts, columns, deviations[i], i)
                    self._update(current)
                elif ts - current.end >= gap:
                    self._close(current.id)
                    closed.append(current.id)
                    current = None
                continue
            if self._pending and ts - (self._pending[-1].ts + self.step) >= gap:
                self._pending.clear()
            if not above:
                continue
            self._pending.append(_Candidate(ts, score, self.peak_details(fitted, ts, columns, deviations[i], i)))
            if len(self._pending) >= self.config.min_buckets:
                peak = max(self._pending, key=lambda c: c.score)
                current = _Open(0, self._pending[0].ts, peak.ts, ts + self.step, peak.score)
                current.id = self._insert(fitted, current, peak.details)
                opened.append(current.id)
                self._pending.clear()
        if current is not None and stamps.size and float(stamps[-1]) + self.step - current.end >= gap:
            self._close(current.id)
            closed.append(current.id)
        return opened, closed

    def peak_details(
        self, fitted: FittedModel, peak: float, columns: Mapping[str, Floats], deviations: Floats, row: int
    ) -> Details:
        """Attribution at the peak (strongest first), the signature, and the context (processes, events)."""
        contribution = fitted.model.attribution(deviations)
        medians: dict[str, float] = {}
        for key in fitted.keys:
            median, _, _ = fitted.baselines[key.name].expected([peak])
            medians[key.name] = float(median[0])
        attribution = sorted(
            (
                Attribution(
                    name=key.name,
                    value=_finite(columns[key.name][row]) if key.name in columns else None,
                    baseline=medians[key.name],
                    mads=float(deviations[j]),
                    contribution=float(contribution[j]),
                )
                for j, key in enumerate(fitted.keys)
            ),
            key=lambda a: -a["contribution"],
        )
        top = attribution[0]["contribution"] if attribution else 0.0
        signature = "+".join(sorted(a["name"] for a in attribution[:3] if top > 0 and a["contribution"] >= 0.25 * top))
        # the snapshot taken when the peak's bucket was scored: up to three buckets after it
        snapshot = self.snapshots.near(peak, after=3 * self.step)
        context = {
            "snapshot": snapshot,
            "events": [s.id for s in self.state.events(since=peak - EVENTS_BEFORE, until=peak + self.step, limit=20)],
        }
        return Details(attribution, signature, context)

    def _open_anomaly(self) -> _Open | None:
        rows = self.state.execute(
            "SELECT * FROM anomalies WHERE ongoing = 1 AND host = ? AND model_id > 0 ORDER BY id DESC LIMIT 1",
            (self.host,),
        )
        if not rows:
            return None
        r = rows[0]
        return _Open(id=r["id"], start=r["start_ts"], peak=r["peak_ts"], end=r["end_ts"], score=r["score"])

    def _close(self, anomaly_id: int) -> None:
        self.state.execute("UPDATE anomalies SET ongoing = 0 WHERE id = ?", (anomaly_id,))

    def _insert(self, fitted: FittedModel, anomaly: _Open, details: Details) -> int:
        with self.state.transaction() as db:
            cursor = db.execute(
                "INSERT INTO anomalies (host, start_ts, peak_ts, end_ts, ongoing, score, threshold, model_id, "
                "signature, attribution, context) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)",
                (
                    self.host,
                    anomaly.start,
                    anomaly.peak,
                    anomaly.end,
                    anomaly.score,
                    fitted.model.threshold_,
                    fitted.id,
                    details.signature,
                    json.dumps(details.attribution),
                    json.dumps(details.context),
                ),
            )
            return int(cursor.lastrowid or 0)

    def _update(self, anomaly: _Open) -> None:
        if anomaly.details is None:  # the peak is unchanged
            self.state.execute("UPDATE anomalies SET end_ts = ? WHERE id = ?", (anomaly.end, anomaly.id))
            return
        self.state.execute(
            "UPDATE anomalies SET peak_ts = ?, end_ts = ?, score = ?, signature = ?, attribution = ?, context = ? "
            "WHERE id = ?",
            (
                anomaly.peak,
                anomaly.end,
                anomaly.score,
                anomaly.details.signature,
                json.dumps(anomaly.details.attribution),
                json.dumps(anomaly.details.context),
                anomaly.id,
            ),
        )
        anomaly.details = None

    # -- reading --------------------------------------------------------------------------------------------

    def list_anomalies(self, since: float | None = None, min_score: float = 0.0, limit: int = 100) -> list[AnomalyView]:
        """Anomalies that ended after ``since`` with a peak score of at least ``min_score``, newest first."""
        return [self.view(r) for r in self._recent(since, min_score, limit)]

    def scores(self, start: float, end: float) -> list[AnomalyScore]:
        """Anomalies overlapping ``[start, end]`` as scored points (their peaks), for anomaly alert rules."""
        return [
            AnomalyScore(
                {"host": r["host"], "series": next(iter(self._series(r)), "")}, r["peak_ts"], round(r["score"], 4), True
            )
            for r in self._recent(start - _SCORES_LOOKBACK, 0.0, 200)
            if r["start_ts"] <= end and r["end_ts"] >= start
        ]

    def row(self, anomaly_id: int) -> sqlite3.Row:
        """The stored row of an anomaly.

        Raises:
            NotFoundError: no anomaly has this id.
        """
        rows = self.state.execute("SELECT * FROM anomalies WHERE id = ?", (anomaly_id,))
        if not rows:
            raise NotFoundError(f"no anomaly with id {anomaly_id}; list_anomalies shows the recorded ones")
        return rows[0]

    def strongest_overlapping(self, start: float, end: float) -> int | None:
        """The id of the highest-scoring anomaly overlapping ``(start, end)``, if any."""
        rows = self.state.execute(
            f"SELECT id FROM anomalies WHERE start_ts < ? AND end_ts > ? AND {_JOINED} ORDER BY score DESC LIMIT 1",
            (end, start),
        )
        return int(rows[0]["id"]) if rows else None

    def earlier(self, row: sqlite3.Row, limit: int = 500) -> list[sqlite3.Row]:
        """Anomalies of the same host that started before ``row``'s, newest first."""
        return self.state.execute(
            "SELECT * FROM anomalies WHERE id != ? AND host = ? AND start_ts < ? ORDER BY start_ts DESC LIMIT ?",
            (row["id"], row["host"], row["start_ts"], limit),
        )

    def view(self, row: sqlite3.Row) -> AnomalyView:
        """A stored anomaly as the API shows it."""
        attribution: list[Attribution] = json.loads(row["attribution"])
        ongoing = bool(row["ongoing"])
        if row["model_id"] == 0:  # the streaming detector's (analysis/live.py)
            low, high = json.loads(row["context"]).get("range", [None, None])
            summary = describe_streaming(self.keys, row["start_ts"], row["end_ts"], ongoing, attribution[0], low, high)
        else:
            summary = describe(self.keys, row["start_ts"], row["end_ts"], ongoing, attribution, None)
        return AnomalyView(
            id=row["id"],
            host=row["host"],
            start=iso(row["start_ts"]),
            peak=iso(row["peak_ts"]),
            end=iso(row["end_ts"]),
            ongoing=ongoing,
            score=round(row["score"], 4),
            threshold=round(row["threshold"], 4),
            series=self._series(row),
            summary=summary,
        )

    def rate(self, since: float, until: float, bucket: float = 3600.0) -> AnomalyRate:
        """Anomalies per bucket and the share of time inside one, for this host.

        Raises:
            QueryError: an empty range or a bucket that is not positive.
        """
        if until <= since or bucket <= 0:
            raise QueryError("need since < until and a positive bucket")
        if (until - since) / bucket > 10_000:
            raise QueryError(f"too many buckets: use a bucket of at least {math.ceil((until - since) / 10_000)} s")
        rows = self.state.execute(
            f"SELECT start_ts, end_ts FROM anomalies WHERE host = ? AND end_ts > ? AND start_ts < ? AND {_JOINED}",
            (self.host, since, until),
        )
        edges = np.arange(since, until, bucket)
        buckets = []
        inside_total = 0.0
        empty = 0
        for left in edges:
            right = min(left + bucket, until)
            started = sum(1 for r in rows if left <= r["start_ts"] < right)
            inside = sum(max(0.0, min(right, r["end_ts"]) - max(left, r["start_ts"])) for r in rows)
            inside_total += inside
            if not started and not inside:
                empty += 1
                continue
            buckets.append(
                RateBucket(
                    start=iso(left), anomalies=started, anomalous_ratio=round(min(1.0, inside / (right - left)), 4)
                )
            )
        return AnomalyRate(
            host=self.host,
            since=iso(since),
            until=iso(until),
            bucket_seconds=bucket,
            total=sum(b.anomalies for b in buckets),
            anomalous_ratio=round(min(1.0, inside_total / (until - since)), 4),
            buckets_total=len(edges),
            empty_buckets=empty,
            buckets=buckets,
        )

    def _recent(self, since: float | None, min_score: float, limit: int) -> list[sqlite3.Row]:
        return self.state.execute(
            f"SELECT * FROM anomalies WHERE end_ts >= ? AND score >= ? AND {_JOINED} ORDER BY start_ts DESC LIMIT ?",
            (since if since is not None else 0.0, min_score, limit),
        )

    def _series(self, row: sqlite3.Row) -> list[str]:
        """The contributing series of a stored anomaly, strongest first."""
        return [self.keys[a["name"]].display for a in json.loads(row["attribution"]) if a["contribution"] > 0]


def describe(
    keys: Mapping[str, KeySeries],
    start: float,
    end: float,
    ongoing: bool,
    attribution: Sequence[Attribution],
    snapshot: Mapping[str, Any] | None,
) -> str:
    """An anomaly in one sentence or two: its time, the series that moved most (values in their units, as the API
    writes them) and the top process by CPU when a snapshot is known."""
    when = f"from {iso(start)}" + (" (ongoing)" if ongoing else f" to {iso(end)}")
    parts = []
    for a in [a for a in attribution if a["contribution"] > 0][:3] or attribution[:1]:
        key = keys[a["name"]]
        direction = "above" if a["mads"] >= 0 else "below"
        parts.append(
            f"{key.what or key.display} was {_quantity(key, a['value'])}, {abs(a['mads']):.0f} MADs {direction} its "
            f"usual {_quantity(key, a['baseline'])} at that hour"
        )
    text = f"Anomaly {when}: " + "; ".join(parts) + "." if parts else f"Anomaly {when}."
    if snapshot and snapshot.get("by_cpu"):
        p = snapshot["by_cpu"][0]
        cores = f"{p['cpu_cores']:.2f} cores" if p.get("cpu_cores") is not None else "CPU"
        text += f" Top process by CPU: {p['name']} (pid {p['pid']}, {cores}: {p['cmdline'][:80]})."
    return text


def describe_streaming(
    keys: Mapping[str, KeySeries],
    start: float,
    end: float,
    ongoing: bool,
    peak: Attribution,
    low: float | None,
    high: float | None,
) -> str:
    """A streaming anomaly in one sentence: its time, and the series' peak value against its recent range."""
    when = f"from {iso(start)}" + (" (ongoing)" if ongoing else f" to {iso(end)}")
    key = keys[peak["name"]]
    usual = (
        f"its recent range of {_quantity(key, low)} to {_quantity(key, high)}"
        if low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
        else "its recent pattern"
    )
    return (
        f"Anomaly {when} (streaming detector): {key.what or key.display} was {_quantity(key, peak['value'])} at the "
        f"peak, against {usual}."
    )


def _quantity(key: KeySeries, value: float | None) -> str:
    return "missing" if value is None else human(value, key.value_unit)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
