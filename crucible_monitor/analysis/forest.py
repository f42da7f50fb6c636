"""The host model: an IsolationForest over feature vectors, fitted in a child process and scored with numpy.

Fitting uses scikit-learn's IsolationForest in ``python -m crucible_monitor.analysis.fitting`` (see there), so the
agent's memory never holds scikit-learn; the fitted trees come back as flat arrays (:class:`CompactForest`) whose
scores equal scikit-learn's ``-score_samples``: ``2^(-E[h(x)] / c(max_samples))``, in (0, 1], higher is more
anomalous (about 0.5 is ordinary; isolated points approach 1).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.streaming import range_excess

_MIN_RANGE_MADS = 3.0
"""Features are deviations in MADs: a training range narrower than this would make a tiny move look extreme."""

__all__ = ["CompactForest", "Fitter", "HostModel", "average_path_length", "fit_in_subprocess"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
_EULER = 0.5772156649015329
_FIT_TIMEOUT = 600.0


def average_path_length(samples: npt.ArrayLike) -> Floats:
    """``c(n)``: the average path length of an unsuccessful search in a binary search tree of ``n`` points."""
    n = np.asarray(samples, dtype=np.float64)
    safe = np.maximum(n, 3.0)
    general = 2.0 * (np.log(safe - 1.0) + _EULER) - 2.0 * (safe - 1.0) / safe
    result: Floats = np.where(n <= 1, 0.0, np.where(n == 2, 1.0, general))
    return result


@dataclass(frozen=True, slots=True)
class CompactForest:
    """Isolation trees as flat arrays; ``left``/``right`` are -1 at leaves, ``leaf_value`` is the path length there."""

    feature: Ints
    threshold: Floats
    left: Ints
    right: Ints
    leaf_value: Floats
    roots: Ints
    max_samples: int

    def score_samples(self, x: npt.ArrayLike) -> Floats:
        """Anomaly scores of the rows of ``x``, as scikit-learn's ``-IsolationForest.score_samples``."""
        rows = np.asarray(x, dtype=np.float64).astype(np.float32)  # trees compare in float32, as scikit-learn
        index = np.arange(len(rows))
        total = np.zeros(len(rows))
        for root in self.roots:
            node = np.full(len(rows), root, dtype=np.int64)
            inner = self.left[node] >= 0
            while inner.any():
                at = node[inner]
                go_left = rows[index[inner], self.feature[at]] <= self.threshold[at]
                node[inner] = np.where(go_left, self.left[at], self.right[at])
                inner = self.left[node] >= 0
            total += self.leaf_value[node]
        depth = total / len(self.roots)
        result: Floats = 2.0 ** (-depth / float(average_path_length(self.max_samples)))
        return result

    def save(self, path: Path) -> None:
        """Write the arrays to an ``.npz`` file."""
        with path.open("wb") as handle:
            np.savez(
                handle,
                feature=self.feature,
                threshold=self.threshold,
                left=self.left,
                right=self.right,
                leaf_value=self.leaf_value,
                roots=self.roots,
                max_samples=np.int64(self.max_samples),
            )

    @classmethod
    def load(cls, path: Path) -> CompactForest:
        """Read a forest written by :meth:`save`."""
        with np.load(path) as data:
            return cls(
                feature=data["feature"],
                threshold=data["threshold"],
                left=data["left"],
                right=data["right"],
                leaf_value=data["leaf_value"],
                roots=data["roots"],
                max_samples=int(data["max_samples"]),
            )


Fitter = Callable[[Floats, dict[str, Any]], CompactForest]
"""Fits a forest on rows with parameters ``n_estimators``, ``max_samples``, ``random_state``."""


def fit_in_subprocess(x: Floats, params: dict[str, Any]) -> CompactForest:
    """Fit in ``python -m crucible_monitor.analysis.fitting``, so scikit-learn never enters this process.

    Raises:
        RuntimeError: the child failed or timed out (its stderr is in the message).
    """
    with tempfile.TemporaryDirectory(prefix="crucible-fit-") as tmp:
        source, target = Path(tmp) / "input.npz", Path(tmp) / "forest.npz"
        with source.open("wb") as handle:
            np.savez(handle, X=np.asarray(x, dtype=np.float64), params=np.array(json.dumps(params)))
        try:
            subprocess.run(
                [sys.executable, "-m", "crucible_monitor.analysis.fitting", str(source), str(target)],
                check=True,
                capture_output=True,
                timeout=_FIT_TIMEOUT,
            )
        except subprocess.CalledProcessError as exc:
            stderr = exc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise RuntimeError(f"fitting the host model failed: {stderr[-1] if stderr else exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"fitting the host model took more than {_FIT_TIMEOUT:g} s") from exc
        return CompactForest.load(target)


class HostModel:
    """IsolationForest over feature vectors of a host (one column per key series, typically deviations in MADs).

    An isolation tree only splits within the range of its training data, so a value far outside that range ends
    in the same leaf as the most extreme training values and scores no higher (measured: a CPU 137 MADs above its
    baseline scored 0.52, as one 5 MADs above). The score is therefore the larger of the forest's score and the
    *range excess* of the most extreme feature: ``e / (1 + e)``, ``e`` the distance beyond the feature's training
    range (its ``contamination / 2`` quantiles) in widths of that range. The forest judges combinations within the
    known ranges; the excess judges levels never seen.

    The scikit-learn contract: ``__init__`` stores parameters, :meth:`fit` learns and returns the model,
    :meth:`score_samples` scores (in (0, 1], higher is more anomalous: note scikit-learn's own ``score_samples`` is
    the negative of the forest's part). ``threshold_`` is the training scores' ``1 - contamination`` quantile,
    floored at ``min_threshold``.

    Args:
        n_estimators: trees.
        max_samples: rows drawn for each tree.
        contamination: expected share of anomalous training rows (sets the threshold).
        min_threshold: the lowest threshold allowed (about 0.5 is an ordinary row).
        random_state: seed of the tree construction.
        fitter: how trees are fitted; defaults to a child process running scikit-learn.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int = 256,
        contamination: float = 0.005,
        min_threshold: float = 0.6,
        random_state: int = 0,
        fitter: Fitter | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.min_threshold = min_threshold
        self.random_state = random_state
        self.fitter = fitter

    def get_params(self) -> dict[str, Any]:
        """The parameters that define the fit (for the model registry)."""
        return {
            "n_estimators": self.n_estimators,
            "max_samples": self.max_samples,
            "contamination": self.contamination,
            "min_threshold": self.min_threshold,
            "random_state": self.random_state,
        }

    def fit(self, x: npt.ArrayLike) -> Self:
        """Fit the forest and set the threshold.

        Raises:
            ValueError: fewer than 2 rows, or non-finite values.
            RuntimeError: the fitting process failed.
        """
        rows = np.asarray(x, dtype=np.float64)
        if rows.ndim != 2 or len(rows) < 2:
            raise ValueError("need a 2-D array of at least 2 rows to fit the host model")
        if not np.isfinite(rows).all():
            raise ValueError("the host model's features must be finite")
        fitter = self.fitter or fit_in_subprocess
        self.forest_ = fitter(rows, self.get_params())
        tail = self.contamination / 2
        self.low_, self.high_ = np.quantile(rows, [tail, 1.0 - tail], axis=0)
        training = self.score_samples(rows)
        self.threshold_ = max(self.min_threshold, float(np.quantile(training, 1.0 - self.contamination)))
        self.n_features_in_ = rows.shape[1]
        return self

    def score_samples(self, x: npt.ArrayLike) -> Floats:
        """Anomaly scores in (0, 1] of the rows of ``x``: the forest's, or the range excess where larger."""
        rows = np.atleast_2d(np.asarray(x, dtype=np.float64))
        beyond = range_excess(rows, self.low_, self.high_, min_width=_MIN_RANGE_MADS).max(axis=1)
        result: Floats = np.maximum(self.forest_.score_samples(rows), beyond)
        return result

    def attribution(self, row: npt.ArrayLike, reference: npt.ArrayLike | None = None) -> Floats:
        """How far the score of ``row`` falls when each feature alone is set back to ``reference`` (default 0).

        Positive: that feature makes the row look anomalous. All variants are scored in one batch.
        """
        point = np.asarray(row, dtype=np.float64)
        base = np.zeros_like(point) if reference is None else np.asarray(reference, dtype=np.float64)
        variants = np.repeat(point[None, :], len(point) + 1, axis=0)
        variants[np.arange(1, len(point) + 1), np.arange(len(point))] = base
        scores = self.score_samples(variants)
        result: Floats = scores[0] - scores[1:]
        return result

    def to_dict(self) -> dict[str, Any]:
        """Parameters, threshold and training ranges (the trees are saved with :meth:`CompactForest.save`)."""
        return {
            "params": self.get_params(),
            "threshold": self.threshold_,
            "n_features": self.n_features_in_,
            "low": self.low_.tolist(),
            "high": self.high_.tolist(),
        }

    @classmethod
    def from_parts(cls, data: dict[str, Any], forest: CompactForest) -> HostModel:
        """A fitted model from :meth:`to_dict` output and its saved trees."""
        model = cls(**data["params"])
        model.forest_ = forest
        model.threshold_ = float(data["threshold"])
        model.n_features_in_ = int(data["n_features"])
        model.low_ = np.array(data["low"], dtype=np.float64)
        model.high_ = np.array(data["high"], dtype=np.float64)
        return model
