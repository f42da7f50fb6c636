"""The anomaly engine: refits the host model from recent history, scores new buckets, keeps anomalies and explains them.

Data flow: the key series (:data:`~crucible_monitor.analysis.features.KEY_SERIES`) are read from the metric store
in buckets of ``step``; each gets a seasonal baseline, and each bucket becomes a vector of deviations from those
baselines (in MADs) that the host model (an IsolationForest) scores. Buckets above the model's threshold form an
anomaly with a start, a peak and an end (it closes after ``anomaly_gap`` without an anomalous bucket); the peak's
attribution (how far the score falls when each series is set back to its baseline), the process snapshot nearest
the peak and the events around it are stored with it in ``state.db``. Models go to ``<data_dir>/models/`` with a
row in the model registry.

Memory: this module imports numpy and pydantic only; the fit runs scikit-learn in a child process
(:func:`~crucible_monitor.analysis.forest.fit_in_subprocess`) and the trees are scored with numpy.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.baseline import SeasonalBaseline
from crucible_monitor.analysis.features import KEY_SERIES, KeySeries, read_columns
from crucible_monitor.analysis.forecast import fit_trend
from crucible_monitor.analysis.forest import CompactForest, Fitter, HostModel
from crucible_monitor.analysis.results import (
    AnomalyRate,
    AnomalyView,
    CapacityReport,
    ContributingSeries,
    Explanation,
    Forecast,
    ModelInfo,
    NextTool,
    ProcessRef,
    RateBucket,
    Recommendation,
    ScoreRun,
    SimilarAnomaly,
    ThresholdEta,
)
from crucible_monitor.config import AnalysisConfig
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.models import iso
from crucible_monitor.schemas import EventRef, ProcessInfo, ProcessSnapshot
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

__all__ = ["ANALYSIS_MIGRATIONS", "AnalysisConfig", "AnomalyEngine"]

logger = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]

ANALYSIS_MIGRATIONS: list[str] = [
    """
    CREATE TABLE model_registry (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        trained_at REAL NOT NULL,
        window_start REAL NOT NULL,
        window_end REAL NOT NULL,
        samples INTEGER NOT NULL,
        features TEXT NOT NULL,
        parameters TEXT NOT NULL,
        threshold REAL NOT NULL,
        path TEXT NOT NULL
    );
    CREATE TABLE anomalies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        start_ts REAL NOT NULL,
        peak_ts REAL NOT NULL,
        end_ts REAL NOT NULL,
        ongoing INTEGER NOT NULL,
        score REAL NOT NULL,
        threshold REAL NOT NULL,
        model_id INTEGER NOT NULL,
        signature TEXT NOT NULL,
        attribution TEXT NOT NULL,
        context TEXT NOT NULL
    );
    CREATE INDEX anomalies_start ON anomalies (start_ts);
    CREATE TABLE process_snapshots (ts REAL PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE analysis_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)
    """,
]
"""The ``analysis`` area of ``state.db``."""

_SETTLE = 15.0  # seconds after a bucket ends before it is scored: the last collection of it is stored by then
_CATCH_UP = 86400.0  # the longest gap a scoring run fills (after downtime)
_EVENTS_BEFORE = 900.0  # events this long before an anomaly belong to its explanation
_LOOKBACK = 6 * 3600.0  # how far back "since when" looks
_SNAPSHOT_TOP = 5  # processes kept per list in stored snapshots
_DEVIATION_CAP = 1000.0  # MADs: keeps never-moving series finite
_SINCE_MADS = 5.0
_RETRY_WITHOUT_MODEL = 600.0  # seconds between fit attempts while there is too little history for a first model
_SEVERITIES: dict[str, Literal["info", "warning", "critical"]] = {s: s for s in ("info", "warning", "critical")}


class _Attribution(TypedDict):
    """One key series at an anomaly's peak: its value, baseline, deviation and share of the score."""

    name: str
    value: float | None
    baseline: float
    mads: float
    contribution: float


@dataclass(frozen=True, slots=True)
class _Details:
    """What is stored about an anomaly's peak: attribution (strongest first), signature, context."""

    attribution: list[_Attribution]
    signature: str
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Fitted:
    id: int
    keys: tuple[KeySeries, ...]
    baselines: dict[str, SeasonalBaseline]
    model: HostModel

    def deviations(self, stamps: Floats, columns: Mapping[str, Floats]) -> Floats:
        """Rows × keys of deviations in MADs; a missing value counts as its baseline (0)."""
        out = np.zeros((len(stamps), len(self.keys)))
        for j, key in enumerate(self.keys):
            column = columns.get(key.name)
            if column is not None:
                d = self.baselines[key.name].deviation(stamps, column)
                out[:, j] = np.clip(np.nan_to_num(d, nan=0.0), -_DEVIATION_CAP, _DEVIATION_CAP)
        return out


@dataclass(slots=True)
class _Open:
    """An anomaly being extended (or a bucket that may start one), with its peak's details."""

    id: int
    start: float
    peak: float
    end: float
    score: float
    details: _Details | None = None


class AnomalyEngine:
    """Finds, stores and explains anomalies of one host; forecasts its capacity.

    The scheduler calls :meth:`score` every ``score_interval``, and :meth:`refit` when :meth:`refit_due` says so;
    both block (a refit waits for its fitting process), so run them in a worker thread. Everything else reads.

    Args:
        store: the metric store to read series from.
        state: ``state.db``; the engine migrates its ``analysis`` area.
        config: the ``analysis`` settings.
        data_dir: models are kept in ``<data_dir>/models``.
        host: the host name stored with each anomaly.
        snapshots: returns the newest top-processes snapshot (stored at each scoring run for explanations).
        alerts: returns the active alerts for :meth:`get_recommendations`, as mappings with ``name``, ``severity``
            and optionally ``id``, ``state``, ``value`` and ``summary`` (or ``annotations.summary``): an alert
            view's ``model_dump(mode="json")`` fits.
        clock: Unix seconds now.
        fitter: fits the forest; defaults to a scikit-learn child process.
        keys: the series the host model watches.
    """

    def __init__(
        self,
        store: MetricStore,
        state: StateDB,
        config: AnalysisConfig,
        *,
        data_dir: Path,
        host: str,
        snapshots: Callable[[], ProcessSnapshot | None] | None = None,
        alerts: Callable[[], Sequence[Mapping[str, Any]]] | None = None,
        clock: Callable[[], float] = time.time,
        fitter: Fitter | None = None,
        keys: Sequence[KeySeries] = KEY_SERIES,
    ) -> None:
        self.store = store
        self.state = state
        self.config = config
        self.host = host
        self.models_dir = data_dir / "models"
        self._snapshots = snapshots
        self._alerts = alerts
        self._clock = clock
        self._fitter = fitter
        self._keys = tuple(keys)
        self._lock = threading.Lock()
        self._pending: list[_Open] = []  # buckets above the threshold, not yet an anomaly
        self._last_attempt: float | None = None
        state.migrate("analysis", ANALYSIS_MIGRATIONS)
        self._fitted = self._load_latest()

    @property
    def step(self) -> float:
        """Bucket width in seconds."""
        return self.config.step.total_seconds()

    # -- models ---------------------------------------------------------------------------------------------

    def refit_due(self) -> bool:
        """Whether the scheduler should call :meth:`refit` now: the newest model is ``refit_interval`` old, or there
        is none yet and the last attempt (which lacked history) was ``_RETRY_WITHOUT_MODEL`` ago."""
        now = self._clock()
        rows = self.state.execute("SELECT max(trained_at) AS last FROM model_registry WHERE kind = 'host'")
        last = rows[0]["last"] if rows else None
        if last is not None:
            return now - float(last) >= self.config.refit_interval.total_seconds()
        return self._last_attempt is None or now - self._last_attempt >= _RETRY_WITHOUT_MODEL

    def refit(self) -> ModelInfo | None:
        """Fit baselines and the host model on the last ``training_window``, save them and register them.

        Returns None (and keeps the current model) when there is not yet ``min_training_buckets`` of history.

        Raises:
            RuntimeError: the fitting process failed.
            OSError: the model files could not be written.
        """
        now = self._clock()
        self._last_attempt = now
        end = math.floor(now / self.step) * self.step
        start = end - self.config.training_window.total_seconds()
        stamps, columns = read_columns(self.store, self._keys, start=start, end=end, step=self.step)
        present = np.zeros(len(stamps), dtype=bool)
        for column in columns.values():
            present |= np.isfinite(column)
        rows = int(present.sum())
        if rows < self.config.min_training_buckets:
            logger.info("not refitting: %d buckets of history, %d needed", rows, self.config.min_training_buckets)
            return None
        # a series seen in fewer than half the buckets (e.g. swap, added late) is left out of this model
        keys = tuple(k for k in self._keys if k.name in columns and np.isfinite(columns[k.name][present]).mean() >= 0.5)
        baselines = {}
        for key in keys:
            seen = np.isfinite(columns[key.name])
            baselines[key.name] = SeasonalBaseline(min_mad=key.min_mad).fit(stamps[seen], columns[key.name][seen])
        model = HostModel(
            n_estimators=self.config.n_estimators,
            contamination=self.config.contamination,
            min_threshold=self.config.min_threshold,
            fitter=self._fitter,
        )
        draft = _Fitted(id=0, keys=keys, baselines=baselines, model=model)
        model.fit(draft.deviations(stamps[present], {k: c[present] for k, c in columns.items()}))
        path = self._save(now, draft)
        with self.state.transaction() as db:
            cursor = db.execute(
                "INSERT INTO model_registry (kind, trained_at, window_start, window_end, samples, features, "
                "parameters, threshold, path) VALUES ('host', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    start,
                    end,
                    rows,
                    json.dumps([k.name for k in keys]),
                    json.dumps(model.get_params()),
                    model.threshold_,
                    str(path),
                ),
            )
            model_id = int(cursor.lastrowid or 0)
        with self._lock:
            self._fitted = _Fitted(id=model_id, keys=keys, baselines=baselines, model=model)
            if self._get_state("scored_until") is None:
                self._set_state("scored_until", end)
        self._prune_model_files()
        logger.info(
            "host model %d fitted on %d buckets, %d series, threshold %.3f", model_id, rows, len(keys), model.threshold_
        )
        return self.models(limit=1)[0]

    def models(self, limit: int = 20) -> list[ModelInfo]:
        """Model registry rows, newest first."""
        rows = self.state.execute("SELECT * FROM model_registry ORDER BY id DESC LIMIT ?", (limit,))
        return [
            ModelInfo(
                id=r["id"],
                kind=r["kind"],
                trained_at=iso(r["trained_at"]),
                window_start=iso(r["window_start"]),
                window_end=iso(r["window_end"]),
                samples=r["samples"],
                features=json.loads(r["features"]),
                parameters=json.loads(r["parameters"]),
                threshold=r["threshold"],
                path=r["path"],
            )
            for r in rows
        ]

    def _save(self, now: float, fitted: _Fitted) -> Path:
        """Write the trees (``.npz``) and the rest (``.json``) atomically; returns the ``.npz`` path."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        stem = self.models_dir / f"host-{int(now)}"
        meta = {
            "keys": [k.name for k in fitted.keys],
            "baselines": {name: b.to_dict() for name, b in fitted.baselines.items()},
            "model": fitted.model.to_dict(),
        }
        for suffix, write in (
            (".npz", lambda p: fitted.model.forest_.save(p)),
            (".json", lambda p: p.write_text(json.dumps(meta), encoding="utf-8")),
        ):
            target = stem.with_suffix(suffix)
            tmp = target.with_name(f".{target.name}.tmp")
            write(tmp)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        return stem.with_suffix(".npz")

    def _load_latest(self) -> _Fitted | None:
        rows = self.state.execute("SELECT id, path FROM model_registry WHERE kind = 'host' ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        path = Path(rows[0]["path"])
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            forest = CompactForest.load(path)
        except (OSError, ValueError, KeyError):
            logger.exception("cannot load the host model from %s; it will be refitted", path)
            return None
        by_name = {k.name: k for k in self._keys}
        names = [n for n in meta["keys"] if n in by_name]
        return _Fitted(
            id=int(rows[0]["id"]),
            keys=tuple(by_name[n] for n in names),
            baselines={n: SeasonalBaseline.from_dict(meta["baselines"][n]) for n in names},
            model=HostModel.from_parts(meta["model"], forest),
        )

    def _prune_model_files(self) -> None:
        rows = self.state.execute(
            "SELECT path FROM model_registry ORDER BY id DESC LIMIT -1 OFFSET ?", (self.config.models_kept,)
        )
        for row in rows:
            for suffix in (".npz", ".json"):
                Path(row["path"]).with_suffix(suffix).unlink(missing_ok=True)

    # -- scoring --------------------------------------------------------------------------------------------

    def score(self) -> ScoreRun:
        """Score the buckets completed since the last run; open, extend and close anomalies.

        Also stores the newest process snapshot (for explanations) and prunes old ones.
        """
        now = self._clock()
        self._record_snapshot(now)
        with self._lock:
            fitted = self._fitted
            if fitted is None:
                return ScoreRun(scored_until=None, points=0, opened=[], closed=[], skipped="no model fitted yet")
            end = math.floor((now - _SETTLE) / self.step) * self.step
            since = max(float(self._get_state("scored_until") or end), end - _CATCH_UP)
            if end <= since:
                return ScoreRun(scored_until=iso(since), points=0, opened=[], closed=[])
            stamps, columns = read_columns(self.store, fitted.keys, start=since, end=end, step=self.step)
            present = np.zeros(len(stamps), dtype=bool)
            for column in columns.values():
                present |= np.isfinite(column)
            deviations = fitted.deviations(stamps, columns)
            scores = fitted.model.score_samples(deviations) if len(stamps) else np.empty(0)
            opened, closed = self._track(fitted, stamps, columns, deviations, scores, present)
            self._set_state("scored_until", end)
        return ScoreRun(scored_until=iso(end), points=int(present.sum()), opened=opened, closed=closed)

    def _track(
        self,
        fitted: _Fitted,
        stamps: Floats,
        columns: Mapping[str, Floats],
        deviations: Floats,
        scores: Floats,
        present: npt.NDArray[np.bool_],
    ) -> tuple[list[int], list[int]]:
        """Turn bucket scores into anomalies: ``min_buckets`` buckets above the threshold, none further apart than
        ``anomaly_gap``, open one (starting at the first); it grows while buckets stay above and closes after a
        gap. The peak is the highest bucket; its details are recomputed when a higher one comes."""
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
                        current.details = self._peak_details(fitted, ts, columns, deviations[i], i)
                    self._update(current)
                elif ts - current.end >= gap:
                    self._close(current.id)
                    closed.append(current.id)
                    current = None
                continue
            if self._pending and ts - (self._pending[-1].peak + self.step) >= gap:
                self._pending.clear()
            if not above:
                continue
            details = self._peak_details(fitted, ts, columns, deviations[i], i)
            self._pending.append(_Open(0, start=ts, peak=ts, end=ts + self.step, score=score, details=details))
            if len(self._pending) >= self.config.min_buckets:
                peak = max(self._pending, key=lambda c: c.score)
                current = _Open(0, self._pending[0].start, peak.peak, ts + self.step, peak.score, peak.details)
                current.id = self._insert(fitted, current)
                opened.append(current.id)
                self._pending.clear()
        if current is not None and stamps.size and float(stamps[-1]) + self.step - current.end >= gap:
            self._close(current.id)
            closed.append(current.id)
        return opened, closed

    def _open_anomaly(self) -> _Open | None:
        rows = self.state.execute(
            "SELECT * FROM anomalies WHERE ongoing = 1 AND host = ? ORDER BY id DESC LIMIT 1", (self.host,)
        )
        if not rows:
            return None
        r = rows[0]
        return _Open(id=r["id"], start=r["start_ts"], peak=r["peak_ts"], end=r["end_ts"], score=r["score"])

    def _close(self, anomaly_id: int) -> None:
        self.state.execute("UPDATE anomalies SET ongoing = 0 WHERE id = ?", (anomaly_id,))

    def _peak_details(
        self, fitted: _Fitted, peak: float, columns: Mapping[str, Floats], deviations: Floats, row: int
    ) -> _Details:
        """Attribution at the peak (strongest first), the signature, and the context (processes, events)."""
        contribution = fitted.model.attribution(deviations)
        medians: dict[str, float] = {}
        for key in fitted.keys:
            median, _, _ = fitted.baselines[key.name].expected([peak])
            medians[key.name] = float(median[0])
        attribution = sorted(
            (
                _Attribution(
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
        snapshot = self._snapshot_near(peak)
        context = {
            "snapshot": snapshot,
            "events": [s.id for s in self.state.events(since=peak - _EVENTS_BEFORE, until=peak + self.step, limit=20)],
        }
        return _Details(attribution, signature, context)

    def _insert(self, fitted: _Fitted, anomaly: _Open) -> int:
        assert anomaly.details is not None
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
                    anomaly.details.signature,
                    json.dumps(anomaly.details.attribution),
                    json.dumps(anomaly.details.context),
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

    # -- process snapshots ----------------------------------------------------------------------------------

    def _record_snapshot(self, now: float) -> None:
        snapshot = self._snapshots() if self._snapshots is not None else None
        if snapshot is not None:
            data = {
                "by_cpu": [_process(p) for p in snapshot.by_cpu[:_SNAPSHOT_TOP]],
                "by_memory": [_process(p) for p in snapshot.by_memory[:_SNAPSHOT_TOP]],
            }
            self.state.execute(
                "INSERT OR IGNORE INTO process_snapshots (ts, data) VALUES (?, ?)", (snapshot.ts, json.dumps(data))
            )
        self.state.execute(
            "DELETE FROM process_snapshots WHERE ts < ?", (now - self.config.snapshot_retention.total_seconds(),)
        )

    def _snapshot_near(self, ts: float) -> dict[str, Any] | None:
        """The stored snapshot nearest ``ts`` (up to three buckets after it, when its scoring ran, or ten minutes
        before)."""
        rows = self.state.execute(
            "SELECT ts, data FROM process_snapshots WHERE ts BETWEEN ? AND ? ORDER BY abs(ts - ?) LIMIT 1",
            (ts - 600.0, ts + 3 * self.step, ts),
        )
        if not rows:
            return None
        data: dict[str, Any] = json.loads(rows[0]["data"])
        data["ts"] = rows[0]["ts"]
        return data

    # -- reading anomalies ----------------------------------------------------------------------------------

    def list_anomalies(self, since: float | None = None, min_score: float = 0.0, limit: int = 100) -> list[AnomalyView]:
        """Anomalies that ended after ``since`` with a peak score of at least ``min_score``, newest first."""
        rows = self.state.execute(
            "SELECT * FROM anomalies WHERE end_ts >= ? AND score >= ? ORDER BY start_ts DESC LIMIT ?",
            (since if since is not None else 0.0, min_score, limit),
        )
        return [self._view(r) for r in rows]

    def _row(self, anomaly_id: int) -> Any:
        rows = self.state.execute("SELECT * FROM anomalies WHERE id = ?", (anomaly_id,))
        if not rows:
            raise NotFoundError(f"no anomaly with id {anomaly_id}; list_anomalies shows the recorded ones")
        return rows[0]

    def _view(self, row: Any) -> AnomalyView:
        attribution = json.loads(row["attribution"])
        return AnomalyView(
            id=row["id"],
            host=row["host"],
            start=iso(row["start_ts"]),
            peak=iso(row["peak_ts"]),
            end=iso(row["end_ts"]),
            ongoing=bool(row["ongoing"]),
            score=round(row["score"], 4),
            threshold=round(row["threshold"], 4),
            series=[self._key(a["name"]).display for a in attribution if a["contribution"] > 0],
            summary=self._summary(row["start_ts"], row["end_ts"], bool(row["ongoing"]), attribution, None),
        )

    def _key(self, name: str) -> KeySeries:
        return next(k for k in self._keys if k.name == name)

    def explain_anomaly(
        self, anomaly_id: int | None = None, *, start: float | None = None, end: float | None = None
    ) -> Explanation:
        """Why an anomaly (by id), or a window of time, looks anomalous: the series, events, processes and history.

        A window overlapping a stored anomaly explains that anomaly; otherwise the window's buckets are compared
        with the baselines directly.

        Raises:
            NotFoundError: no anomaly with this id.
            QueryError: neither an id nor a window was given, or the window is empty; or no model is fitted yet.
        """
        if anomaly_id is None:
            if start is None or end is None:
                raise QueryError("give an anomaly id, or a window with both start and end")
            if end <= start:
                raise QueryError(f"the window is empty: start ({iso(start)}) must be before end ({iso(end)})")
            overlapping = self.state.execute(
                "SELECT id FROM anomalies WHERE start_ts < ? AND end_ts > ? ORDER BY score DESC LIMIT 1", (end, start)
            )
            if overlapping:
                anomaly_id = int(overlapping[0]["id"])
        if anomaly_id is not None:
            row = self._row(anomaly_id)
            return self._explain(
                row["start_ts"],
                row["end_ts"],
                row["peak_ts"],
                json.loads(row["attribution"]),
                json.loads(row["context"]).get("snapshot"),
                row,
            )
        assert start is not None and end is not None
        return self._explain_window(start, end)

    def _explain_window(self, start: float, end: float) -> Explanation:
        fitted = self._fitted
        if fitted is None:
            raise QueryError("no model fitted yet: explanations need baselines (refit after a few hours of data)")
        stamps, columns = read_columns(self.store, fitted.keys, start=start, end=end, step=self.step)
        deviations = fitted.deviations(stamps, columns)
        if not len(stamps):
            raise QueryError(f"the window {iso(start)} – {iso(end)} holds no complete bucket of {self.step:g} s")
        row = int(np.argmax(fitted.model.score_samples(deviations)))
        details = self._peak_details(fitted, float(stamps[row]), columns, deviations[row], row)
        return self._explain(start, end, float(stamps[row]), details.attribution, details.context["snapshot"], None)

    def _explain(
        self,
        start: float,
        end: float,
        peak: float,
        attribution: list[_Attribution],
        snapshot: dict[str, Any] | None,
        row: Any,
    ) -> Explanation:
        contributing = [a for a in attribution if a["contribution"] > 0] or attribution[:1]
        since = self._since(peak, start, [self._key(a["name"]) for a in contributing])
        series = [
            ContributingSeries(
                series=self._key(a["name"]).display,
                metric=self._key(a["name"]).metric,
                labels=dict(self._key(a["name"]).labels),
                value=a["value"],
                baseline=a["baseline"],
                mads=round(a["mads"], 2),
                since=iso(since[a["name"]]) if a["name"] in since else None,
                contribution=round(a["contribution"], 4),
            )
            for a in contributing
        ]
        events = [EventRef.of(s) for s in self.state.events(since=start - _EVENTS_BEFORE, until=end, limit=50)]
        similar = self._similar(row) if row is not None else []
        recurring = sum(1 for s in similar if s.same_time_of_day or s.same_time_of_week) >= 2
        by_cpu = [ProcessRef(**p) for p in (snapshot or {}).get("by_cpu", [])]
        by_memory = [ProcessRef(**p) for p in (snapshot or {}).get("by_memory", [])]
        summary = self._summary(start, end, bool(row["ongoing"]) if row is not None else False, contributing, snapshot)
        if events:
            summary += f" {len(events)} event(s) in or just before the window, the latest: {events[0].message}."
        if recurring:
            summary += f" It recurs: {len(similar)} earlier anomalies of the same series, some at this time of day."
        return Explanation(
            anomaly=self._view(row) if row is not None else None,
            window_start=iso(start),
            window_end=iso(end),
            series=series,
            events=events,
            snapshot_ts=iso(snapshot["ts"]) if snapshot else None,
            top_processes_by_cpu=by_cpu,
            top_processes_by_memory=by_memory,
            similar=similar,
            recurring=recurring,
            summary=summary,
            next_tools=self._next_tools(start, end, contributing, events),
        )

    def _since(self, peak: float, start: float, keys: Sequence[KeySeries]) -> dict[str, float]:
        """For each key, when its current run of |deviation| ≥ 5 MADs (same side as at the peak) began."""
        fitted = self._fitted
        if fitted is None:
            return {}
        first = min(start, peak) - _LOOKBACK
        stamps, columns = read_columns(self.store, keys, start=first, end=peak + self.step, step=self.step)
        out: dict[str, float] = {}
        for key in keys:
            column = columns.get(key.name)
            if column is None or key.name not in fitted.baselines or not len(stamps):
                continue
            d = np.nan_to_num(fitted.baselines[key.name].deviation(stamps, column), nan=0.0)
            sign = np.sign(d[-1])
            if abs(d[-1]) < _SINCE_MADS:
                continue
            outside = np.flatnonzero(~(np.sign(d) == sign) | (np.abs(d) < _SINCE_MADS))
            first_in_run = int(outside[-1]) + 1 if len(outside) else 0
            out[key.name] = float(stamps[first_in_run])
        return out

    def _similar(self, row: Any) -> list[SimilarAnomaly]:
        signature = set(str(row["signature"]).split("+")) - {""}
        if not signature:
            return []
        rows = self.state.execute(
            "SELECT * FROM anomalies WHERE id != ? AND host = ? AND start_ts < ? ORDER BY start_ts DESC LIMIT 500",
            (row["id"], row["host"], row["start_ts"]),
        )
        out = []
        for other in rows:
            shared = signature & set(str(other["signature"]).split("+"))
            if not shared:
                continue
            out.append(
                SimilarAnomaly(
                    id=other["id"],
                    start=iso(other["start_ts"]),
                    score=round(other["score"], 4),
                    series=sorted(self._key(n).display for n in shared if any(k.name == n for k in self._keys)),
                    same_time_of_day=_hours_apart(row["peak_ts"], other["peak_ts"], 24) <= 1,
                    same_time_of_week=_hours_apart(row["peak_ts"], other["peak_ts"], 168) <= 1,
                )
            )
        return out[:10]

    def _summary(
        self,
        start: float,
        end: float,
        ongoing: bool,
        attribution: Sequence[_Attribution],
        snapshot: Mapping[str, Any] | None,
    ) -> str:
        when = f"from {iso(start)}" + (" (ongoing)" if ongoing else f" to {iso(end)}")
        parts = []
        for a in [a for a in attribution if a["contribution"] > 0][:3] or attribution[:1]:
            key = self._key(a["name"])
            direction = "above" if a["mads"] >= 0 else "below"
            parts.append(
                f"{key.what or key.display} was {_fmt(key, a['value'])}, {abs(a['mads']):.0f} MADs {direction} its "
                f"usual {_fmt(key, a['baseline'])} at that hour"
            )
        text = f"Anomaly {when}: " + "; ".join(parts) + "." if parts else f"Anomaly {when}."
        if snapshot and snapshot.get("by_cpu"):
            p = snapshot["by_cpu"][0]
            cores = f"{p['cpu_cores']:.2f} cores" if p.get("cpu_cores") is not None else "CPU"
            text += f" Top process by CPU: {p['name']} (pid {p['pid']}, {cores}: {p['cmdline'][:80]})."
        return text

    def _next_tools(
        self, start: float, end: float, contributing: Sequence[_Attribution], events: Sequence[EventRef]
    ) -> list[NextTool]:
        tools = []
        for a in contributing[:2]:
            key = self._key(a["name"])
            tools.append(
                NextTool(
                    tool="get_metrics",
                    arguments={
                        "metric": key.metric,
                        "labels": dict(key.labels),
                        "start": iso(start - 3600),
                        "end": iso(end + 600),
                    },
                    why=f"see {key.what or key.metric} around the anomaly",
                )
            )
        names = {a["name"] for a in contributing}
        if names & {"cpu", "load", "memory", "swap"}:
            tools.append(
                NextTool(tool="get_system_status", arguments={}, why="the top processes now, by CPU and memory")
            )
        if any(e.kind in ("service_state", "service_restart") for e in events):
            tools.append(NextTool(tool="list_services", arguments={}, why="services changed state around the anomaly"))
        if any(e.kind in ("check_failed", "check_recovered") for e in events):
            tools.append(NextTool(tool="list_http_checks", arguments={}, why="HTTP checks failed around the anomaly"))
        return tools

    # -- rates ----------------------------------------------------------------------------------------------

    def anomaly_rate(self, since: float, until: float | None = None, bucket: float = 3600.0) -> AnomalyRate:
        """Anomalies per bucket and the share of time inside one, for this host.

        Raises:
            QueryError: an empty range or a bucket that is not positive.
        """
        until = self._clock() if until is None else until
        if until <= since or bucket <= 0:
            raise QueryError("need since < until and a positive bucket")
        if (until - since) / bucket > 10_000:
            raise QueryError(f"too many buckets: use a bucket of at least {math.ceil((until - since) / 10_000)} s")
        rows = self.state.execute(
            "SELECT start_ts, end_ts FROM anomalies WHERE host = ? AND end_ts > ? AND start_ts < ?",
            (self.host, since, until),
        )
        edges = np.arange(since, until, bucket)
        buckets = []
        inside_total = 0.0
        for left in edges:
            right = min(left + bucket, until)
            started = sum(1 for r in rows if left <= r["start_ts"] < right)
            inside = sum(max(0.0, min(right, r["end_ts"]) - max(left, r["start_ts"])) for r in rows)
            inside_total += inside
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
            buckets=buckets,
        )

    # -- capacity -------------------------------------------------------------------------------------------

    def resources(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Forecastable resources: name → (metric, labels)."""
        out: dict[str, tuple[str, dict[str, str]]] = {}
        if self.store.latest("memory_used_ratio"):
            out["memory"] = ("memory_used_ratio", {})
        for prefix, metric in (("filesystem", "filesystem_used_ratio"), ("inodes", "filesystem_inodes_used_ratio")):
            for point in self.store.latest(metric):
                mount = point.labels.get("mountpoint")
                if mount:
                    out[f"{prefix}:{mount}"] = (metric, {"mountpoint": mount})
        return dict(sorted(out.items()))

    def forecast_capacity(self, resource: str, horizon: float | None = None) -> Forecast:
        """When ``resource`` (``memory``, ``filesystem:<mountpoint>``, ``inodes:<mountpoint>``) fills, with a
        robust trend, its interval, and how far to trust it.

        Raises:
            QueryError: an unknown resource (the message lists the valid ones) or a non-positive horizon.
        """
        resources = self.resources()
        if resource not in resources:
            raise QueryError(f"unknown resource {resource!r}; valid: {', '.join(resources) or 'none seen yet'}")
        horizon = self.config.forecast_horizon.total_seconds() if horizon is None else horizon
        if horizon <= 0:
            raise QueryError("the horizon must be positive, e.g. 30d")
        metric, labels = resources[resource]
        now = self._clock()
        history = self.config.forecast_history.total_seconds()
        step = max(self.step, history / 400)
        series = self.store.query(metric, start=now - history, end=now + self.step, step=step, agg="avg", labels=labels)
        stamps = np.array(series[0].timestamps if series else [], dtype=np.float64)
        values = np.array(series[0].values if series else [], dtype=np.float64)
        latest = self.store.latest(metric, labels)
        current = latest[0].value if latest else (float(values[-1]) if len(values) else None)
        trend = fit_trend(stamps + step / 2, values)
        horizon_end = now + horizon
        predicted: tuple[float | None, float | None, float | None] = (None, None, None)
        if trend.quality not in ("insufficient",):
            value, low, high = (min(1.0, max(0.0, v)) for v in trend.at(horizon_end))
            predicted = (value, low, high)
        etas = []
        for threshold in (0.9, 1.0):
            expected, earliest, latest_eta = trend.time_to(threshold)
            etas.append(
                ThresholdEta(
                    threshold=threshold,
                    eta=iso(expected) if expected is not None else None,
                    earliest=iso(earliest) if earliest is not None else None,
                    latest=iso(latest_eta) if latest_eta is not None else None,
                    days=round((expected - now) / 86400, 2) if expected is not None else None,
                )
            )
        day = 86400.0
        return Forecast(
            resource=resource,
            metric=metric,
            labels=labels,
            current=current,
            slope_per_day=trend.slope * day,
            slope_per_day_low=trend.slope_low * day,
            slope_per_day_high=trend.slope_high * day,
            horizon_end=iso(horizon_end),
            predicted=predicted[0],
            predicted_low=predicted[1],
            predicted_high=predicted[2],
            thresholds=etas,
            fit_quality=trend.quality,
            r_squared=round(trend.r_squared, 4),
            points=trend.points,
            history_hours=round(trend.span_seconds / 3600, 2),
            note=_forecast_note(resource, current, trend.quality, trend.slope * day, etas),
        )

    def capacity_report(self, horizon: float | None = None) -> CapacityReport:
        """Forecasts for every resource, soonest to reach 90 % first."""
        forecasts = [self.forecast_capacity(name, horizon) for name in self.resources()]
        forecasts.sort(key=lambda f: (f.thresholds[0].days is None, f.thresholds[0].days or 0.0, -(f.current or 0.0)))
        return CapacityReport(
            generated_at=iso(self._clock()),
            horizon_days=round((horizon or self.config.forecast_horizon.total_seconds()) / 86400, 2),
            forecasts=forecasts,
        )

    # -- recommendations ------------------------------------------------------------------------------------

    def get_recommendations(self) -> list[Recommendation]:
        """Actionable items from recent anomalies, capacity forecasts and active alerts, most severe first."""
        now = self._clock()
        items: list[Recommendation] = []
        for anomaly in self.list_anomalies(since=now - 86400, limit=10):
            severity = (
                "critical" if anomaly.ongoing and anomaly.score >= 0.75 else "warning" if anomaly.ongoing else "info"
            )
            items.append(
                Recommendation(
                    severity=severity,
                    source="anomaly",
                    title=f"Anomaly {'ongoing since' if anomaly.ongoing else 'at'} {anomaly.start} in "
                    f"{', '.join(anomaly.series[:2]) or 'the host'}",
                    action="Read the explanation: which series moved, the top processes and the events around it.",
                    evidence=[anomaly.summary, f"score {anomaly.score} (threshold {anomaly.threshold})"],
                    next_tools=[
                        NextTool(tool="explain_anomaly", arguments={"anomaly_id": anomaly.id}, why="the evidence")
                    ],
                )
            )
        for forecast in self.capacity_report().forecasts:
            days_full = forecast.thresholds[1].days
            days_90 = forecast.thresholds[0].days
            if days_90 is None or days_90 > 30:
                continue
            severity = "critical" if days_full is not None and days_full <= 3 else "warning" if days_90 <= 7 else "info"
            items.append(
                Recommendation(
                    severity=severity,
                    source="forecast",
                    title=f"{forecast.resource} reaches 90 % in about {days_90:g} days",
                    action=_capacity_action(forecast.resource),
                    evidence=[forecast.note],
                    next_tools=[
                        NextTool(
                            tool="forecast_capacity",
                            arguments={"resource": forecast.resource},
                            why="the trend, its interval and fit quality",
                        )
                    ],
                )
            )
        for alert in self._alerts() if self._alerts is not None else []:
            name = str(alert.get("name") or alert.get("id") or "alert")
            annotations = alert.get("annotations") or {}
            summary = alert.get("summary") or annotations.get("summary") or annotations.get("description") or name
            tools = [NextTool(tool="list_alerts", arguments={}, why="the active alerts")]
            if alert.get("id") is not None:
                tools = [NextTool(tool="get_alert", arguments={"alert_id": alert["id"]}, why="its history")]
            items.append(
                Recommendation(
                    severity=_SEVERITIES.get(str(alert.get("severity", "warning")), "warning"),
                    source="alert",
                    title=f"Alert {name} is {alert.get('state') or 'active'}",
                    action="Find the cause and fix it; acknowledge the alert while you work on it.",
                    evidence=[str(summary)] + ([f"value {alert['value']}"] if alert.get("value") is not None else []),
                    next_tools=tools,
                )
            )
        order = {"critical": 0, "warning": 1, "info": 2}
        return sorted(items, key=lambda r: order[r.severity])

    # -- state ----------------------------------------------------------------------------------------------

    def _get_state(self, key: str) -> str | None:
        rows = self.state.execute("SELECT value FROM analysis_state WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def _set_state(self, key: str, value: float) -> None:
        self.state.execute(
            "INSERT INTO analysis_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, repr(value)),
        )


def _process(p: ProcessInfo) -> dict[str, Any]:
    return {
        "pid": p.pid,
        "name": p.name,
        "cmdline": p.cmdline[:120],
        "user": p.user,
        "cpu_cores": p.cpu_cores,
        "memory_bytes": p.memory_bytes,
    }


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _hours_apart(a: float, b: float, period_hours: int) -> float:
    diff = abs(a - b) / 3600 % period_hours
    return min(diff, period_hours - diff)


def _fmt(key: KeySeries, value: float | None) -> str:
    if value is None:
        return "missing"
    if key.metric.endswith("_ratio"):
        return f"{value * 100:.1f} %"
    if key.metric.endswith("_bytes_total"):
        for unit in ("B/s", "KB/s", "MB/s", "GB/s"):
            if abs(value) < 1000 or unit == "GB/s":
                return f"{value:.1f} {unit}"
            value /= 1000
    return f"{value:.3g}"


def _forecast_note(resource: str, current: float | None, quality: str, per_day: float, etas: list[ThresholdEta]) -> str:
    now_text = f"{current * 100:.1f} % used" if current is not None else "no current value"
    if quality == "insufficient":
        return f"{resource}: {now_text}; not enough history for a trend yet."
    if quality == "no_trend":
        return f"{resource}: {now_text}; no significant trend (the slope's interval includes 0)."
    trend = f"changing {per_day * 100:+.2f} points/day"
    if quality == "poor":
        return f"{resource}: {now_text}, {trend}, but the line fits poorly, so no date is given."
    reach = [
        f"{e.threshold:.0%} around {e.eta} (between {e.earliest} and {e.latest or 'never'})" for e in etas if e.eta
    ]
    return f"{resource}: {now_text}, {trend} ({quality} fit)" + (f"; reaches {'; '.join(reach)}." if reach else ".")


def _capacity_action(resource: str) -> str:
    kind, _, mount = resource.partition(":")
    if kind == "filesystem":
        return f"Free space on {mount} (old logs, caches, backups) or grow the volume before it fills."
    if kind == "inodes":
        return f"Remove many small files on {mount} (sessions, caches, mail queues) before inodes run out."
    return "Find what grows (top processes by memory), fix leaks or add memory before it runs out."
