"""The anomaly engine: refits the host model and scores new buckets; the facade over the other analysis parts.

Data flow: the key series (:data:`~crucible_monitor.analysis.features.KEY_SERIES`) are read from the metric store
in buckets of ``step``; each gets a seasonal baseline, and each bucket becomes a vector of deviations from those
baselines (in MADs) that the host model (an IsolationForest) scores. :mod:`~crucible_monitor.analysis.anomalies`
turns the scores into anomalies, :mod:`~crucible_monitor.analysis.explain` explains them,
:mod:`~crucible_monitor.analysis.capacity` forecasts resources and :mod:`~crucible_monitor.analysis.registry` keeps
the models and process snapshots.

Memory: this package imports numpy and pydantic only; the fit runs scikit-learn in a child process
(:func:`~crucible_monitor.analysis.forest.fit_in_subprocess`) and the trees are scored with numpy.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from crucible_monitor.analysis.anomalies import AnomalyLog
from crucible_monitor.analysis.baseline import SeasonalBaseline
from crucible_monitor.analysis.capacity import Capacity
from crucible_monitor.analysis.explain import Explainer
from crucible_monitor.analysis.features import KEY_SERIES, KeySeries, read_columns
from crucible_monitor.analysis.forest import Fitter, HostModel
from crucible_monitor.analysis.live import LiveDetectors
from crucible_monitor.analysis.livekeys import KeyRegistry
from crucible_monitor.analysis.registry import (
    ANALYSIS_MIGRATIONS,
    FittedModel,
    ModelRegistry,
    ProcessSnapshots,
    Progress,
    TrainingWindow,
)
from crucible_monitor.config import AnalysisConfig
from crucible_monitor.models import MetricSpec, iso
from crucible_monitor.schemas import (
    AnomalyRate,
    AnomalyScore,
    AnomalyView,
    CapacityReport,
    Explanation,
    FillForecast,
    Forecast,
    ModelInfo,
    ProcessSnapshot,
    ScoreRun,
)
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import History

__all__ = ["ANALYSIS_MIGRATIONS", "AnalysisConfig", "AnomalyEngine"]

logger = logging.getLogger(__name__)

_SETTLE = 15.0  # seconds after a bucket ends before it is scored: the last collection of it is stored by then
_CATCH_UP = 86400.0  # the longest gap a scoring run fills (after downtime)
_RETRY_WITHOUT_MODEL = 600.0  # seconds between fit attempts while there is too little history for a first model


class AnomalyEngine:
    """Finds, stores and explains anomalies of one host; forecasts its capacity.

    The scheduler calls :meth:`score` every ``score_interval``, and :meth:`refit` when :meth:`refit_due` says so;
    both block (a refit waits for its fitting process), so run them in a worker thread. Everything else reads.

    Args:
        store: the metric store to read series from.
        state: ``state.db``; the engine migrates its ``analysis`` area.
        config: the ``analysis`` settings (assigning :attr:`config` later applies new ones).
        data_dir: models are kept in ``<data_dir>/models``.
        host: the host name stored with each anomaly.
        snapshots: returns the newest top-processes snapshot (stored at each scoring run for explanations).
        clock: Unix seconds now.
        fitter: fits the forest; defaults to a scikit-learn child process.
        keys: the series the host model watches.
    """

    def __init__(
        self,
        store: History,
        state: StateDB,
        config: AnalysisConfig,
        *,
        data_dir: Path,
        host: str,
        snapshots: Callable[[], ProcessSnapshot | None] | None = None,
        clock: Callable[[], float] = time.time,
        fitter: Fitter | None = None,
        keys: Sequence[KeySeries] = KEY_SERIES,
    ) -> None:
        self.store = store
        self.state = state
        self.host = host
        self.models_dir = data_dir / "models"
        self._snapshots = snapshots
        self._clock = clock
        self._fitter = fitter
        self._keys = tuple(keys)
        self._lock = threading.Lock()
        self._last_attempt: float | None = None
        state.migrate("analysis", ANALYSIS_MIGRATIONS)
        self.registry = ModelRegistry(state, self.models_dir, self._keys)
        self.process_snapshots = ProcessSnapshots(state)
        self._progress = Progress(state)
        self.keys = KeyRegistry(state, self._keys)
        self.anomalies = AnomalyLog(state, self.process_snapshots, config, host=host, keys=self.keys)
        self.explainer = Explainer(store, self.anomalies, self.process_snapshots)
        self.capacity = Capacity(store, config, clock)
        self.live = LiveDetectors(
            state, store, self.process_snapshots, config, host=host, keys=self._keys, registry=self.keys
        )
        self._config = config
        self._fitted = self.registry.load_latest()

    @property
    def config(self) -> AnalysisConfig:
        """The ``analysis`` settings."""
        return self._config

    @config.setter
    def config(self, config: AnalysisConfig) -> None:
        self._config = self.anomalies.config = self.capacity.config = self.live.config = config

    @property
    def step(self) -> float:
        """Bucket width in seconds."""
        return self.config.step.total_seconds()

    # -- models ---------------------------------------------------------------------------------------------

    def refit_due(self) -> bool:
        """Whether the scheduler should call :meth:`refit` now: the newest model is ``refit_interval`` old, or there
        is none yet and the last attempt (which lacked history) was ``_RETRY_WITHOUT_MODEL`` ago."""
        now = self._clock()
        last = self.registry.last_trained()
        if last is not None:
            return now - last >= self.config.refit_interval.total_seconds()
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
        draft = FittedModel(id=0, keys=keys, baselines=baselines, model=model)
        model.fit(draft.deviations(stamps[present], {k: c[present] for k, c in columns.items()}))
        fitted = self.registry.register(now, TrainingWindow(start, end, rows), draft)
        with self._lock:
            self._fitted = fitted
            if self._progress.scored_until() is None:
                self._progress.set_scored_until(end)
        self.registry.prune(self.config.models_kept)
        logger.info(
            "host model %d fitted on %d buckets, %d series, threshold %.3f",
            fitted.id,
            rows,
            len(keys),
            model.threshold_,
        )
        return self.models(limit=1)[0]

    def models(self, limit: int = 20) -> list[ModelInfo]:
        """Model registry rows, newest first."""
        return self.registry.models(limit)

    # -- scoring --------------------------------------------------------------------------------------------

    def score(self) -> ScoreRun:
        """Score the buckets completed since the last run; open, extend and close anomalies.

        Also stores the newest process snapshot (for explanations) and prunes old ones.
        """
        now = self._clock()
        snapshot = self._snapshots() if self._snapshots is not None else None
        self.process_snapshots.record(snapshot, keep_after=now - self.config.snapshot_retention.total_seconds())
        with self._lock:
            fitted = self._fitted
            end = math.floor((now - _SETTLE) / self.step) * self.step
            live_opened, live_closed = self.live.run(end) if self.config.streaming else ([], [])
            if fitted is None:
                return ScoreRun(
                    scored_until=None,
                    points=0,
                    opened=live_opened,
                    closed=live_closed,
                    skipped="no model fitted yet",
                )
            scored = self._progress.scored_until()
            since = max(scored if scored is not None else end, end - _CATCH_UP)
            if end <= since:
                return ScoreRun(scored_until=iso(since), points=0, opened=live_opened, closed=live_closed)
            stamps, columns = read_columns(self.store, fitted.keys, start=since, end=end, step=self.step)
            present = np.zeros(len(stamps), dtype=bool)
            for column in columns.values():
                present |= np.isfinite(column)
            deviations = fitted.deviations(stamps, columns)
            scores = fitted.model.score_samples(deviations) if len(stamps) else np.empty(0)
            opened, closed = self.anomalies.track(fitted, stamps, columns, deviations, scores, present)
            self._progress.set_scored_until(end)
        return ScoreRun(
            scored_until=iso(end),
            points=int(present.sum()),
            opened=live_opened + opened,
            closed=live_closed + closed,
        )

    # -- reading --------------------------------------------------------------------------------------------

    def list_anomalies(self, since: float | None = None, min_score: float = 0.0, limit: int = 100) -> list[AnomalyView]:
        """Anomalies that ended after ``since`` with a peak score of at least ``min_score``, newest first."""
        return self.anomalies.list_anomalies(since, min_score, limit)

    def anomaly_scores(self, start: float, end: float) -> list[AnomalyScore]:
        """Anomalies overlapping ``[start, end]`` as scored points (their peaks), for anomaly alert rules."""
        return self.anomalies.scores(start, end)

    def explain_anomaly(
        self,
        anomaly_id: int | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        catalogue: Mapping[str, MetricSpec] | None = None,
    ) -> Explanation:
        """Why an anomaly (by id), or a window of time, looks anomalous: the series, events, processes and history.

        The window is compared with the one before it (the key series and the ``catalogue``'s metrics, restarts,
        checks, exceptions, processes), which needs no model; a window overlapping a stored anomaly explains that
        anomaly, and a fitted model adds its attribution.

        Raises:
            NotFoundError: no anomaly with this id.
            QueryError: neither an id nor a window was given, or the window is empty.
        """
        live = self._snapshots() if self._snapshots is not None else None
        return self.explainer.explain(self._fitted, anomaly_id, start=start, end=end, catalogue=catalogue, live=live)

    def anomaly_rate(self, since: float, until: float | None = None, bucket: float = 3600.0) -> AnomalyRate:
        """Anomalies per bucket and the share of time inside one, for this host.

        Raises:
            QueryError: an empty range or a bucket that is not positive.
        """
        return self.anomalies.rate(since, self._clock() if until is None else until, bucket)

    # -- capacity -------------------------------------------------------------------------------------------

    def resources(self) -> dict[str, tuple[str, dict[str, str]]]:
        """Forecastable resources: name → (metric, labels)."""
        return self.capacity.resources()

    def forecast_capacity(self, resource: str, horizon: float | None = None) -> Forecast:
        """When ``resource`` (``memory``, ``filesystem:<mountpoint>``, ``inodes:<mountpoint>``) fills, with a
        robust trend, its interval, and how far to trust it.

        Raises:
            QueryError: an unknown resource (the message lists the valid ones) or a non-positive horizon.
        """
        return self.capacity.forecast(resource, horizon)

    def capacity_report(self, horizon: float | None = None) -> CapacityReport:
        """Forecasts for every resource, soonest to reach 90 % first."""
        return self.capacity.report(horizon)

    def fill_forecasts(self) -> list[FillForecast]:
        """When each resource is expected to be full (Unix seconds), for alerting's forecast rules."""
        return self.capacity.fill_forecasts()
