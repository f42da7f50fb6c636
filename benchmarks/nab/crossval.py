"""Leave-one-category-out cross-validation of the streaming detector on a NAB-style subset.

    python benchmarks/nab/crossval.py [--nab ../shared/data/nab]

A small grid of parameter sets (:data:`CANDIDATES`) is run once over every file (each point scored from the points
before it only, alerts de-duplicated as ``run.py`` does; scores cached by the detector's source and the parameters).
For each category of the subset (its top-level folder) the parameter set and the threshold are then chosen on the
other categories (best standard-profile total) and the held-out category is scored at them. Reported per fold: the
parameter set chosen, the threshold, the held-out raw and normalised score (a category without windows has no
normalised score: its raw score is its false-positive cost), windows found and false alerts. The cross-validated
score is the held-out raw totals of every fold, normalised together over all windows; the mean of the per-fold
normalised scores is given beside it. The in-sample score is the detector's default parameter set at the threshold
chosen on every file (parameters and threshold chosen on the data they are scored on).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).parent))

import run as nab_run  # noqa: E402  (scripts beside this one)
import score  # noqa: E402

from crucible_monitor.analysis import streaming  # noqa: E402

__all__ = ["CANDIDATES", "CACHE", "Fold", "candidate_results", "category", "cross_validate", "main"]

CANDIDATES: dict[str, dict[str, Any]] = {
    "default": {},
    "with the shape view": {"shape": True},
    "no daily-profile view": {"seasonal": False},
    "window 2000": {"window": 2000},
    "level of 5 points": {"level_points": 5},
    "no level floor": {"level_floor": 0.0},
}
"""The parameter sets tried; ``default`` is the detector's defaults (the in-sample set)."""

CACHE = Path(tempfile.gettempdir()) / "crucible-nab-cache"

Results = dict[str, tuple[npt.NDArray[np.datetime64], npt.NDArray[np.float64]]]
Windows = Mapping[str, Sequence[tuple[np.datetime64, np.datetime64]]]


@dataclass(frozen=True, slots=True)
class Fold:
    """One held-out category's result."""

    category: str
    candidate: str
    threshold: float
    raw: float
    normalised: float | None
    files: int
    windows: int
    windows_detected: int
    false_positive_rows: int


def category(name: str) -> str:
    """A data file's category: its top-level folder."""
    return name.split("/", 1)[0]


def _key(params: Mapping[str, Any]) -> str:
    source = inspect.getsource(streaming)
    return hashlib.sha256((source + json.dumps(params, sort_keys=True)).encode()).hexdigest()[:16]


def candidate_results(nab: Path, params: Mapping[str, Any], names: Sequence[str]) -> Results:
    """De-duplicated scores of every file for one parameter set (cached on disk by detector source and params)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{_key(params)}.npz"
    if path.exists():
        held = np.load(path)
        if all(n in held for n in names):
            return {n: (held[f"{n}@ts"], held[n]) for n in names}
    out: Results = {}
    for name in names:
        stamps, seconds, values = nab_run.read_series(nab / "data" / name)
        scores = streaming.StreamingDetector(**params).score_samples(seconds, values)
        out[name] = (
            np.array([np.datetime64(t) for t in stamps], dtype="datetime64[us]"),
            streaming.suppress_repeats(scores, nab_run.DEDUP_ROWS),
        )
    np.savez(path, **{n: s for n, (_, s) in out.items()}, **{f"{n}@ts": t for n, (t, _) in out.items()})
    return out


def _prepared(results: Results, windows: Windows, cost: score.Cost) -> dict[str, score.FileRows]:
    return {name: score.sweep(name, *results[name], limits, cost) for name, limits in windows.items()}


def cross_validate(
    by_candidate: Mapping[str, Results], windows: Windows, cost: score.Cost
) -> tuple[list[Fold], float, float | None]:
    """Every fold, the pooled cross-validated score and the mean of the per-fold normalised scores."""
    prepared = {c: _prepared(r, windows, cost) for c, r in by_candidate.items()}
    categories = sorted({category(n) for n in windows})
    folds = []
    for held in categories:
        train = [n for n in windows if category(n) != held]
        test = [n for n in windows if category(n) == held]
        choices = {c: score.best_threshold([rows[n] for n in train], cost) for c, rows in prepared.items()}
        chosen = max(choices, key=lambda c: choices[c][1])
        threshold = choices[chosen][0]
        files = [score.score_file(prepared[chosen][n], threshold, cost) for n in test]
        raw = sum(f.score for f in files)
        count = sum(len(windows[n]) for n in test)
        folds.append(
            Fold(
                category=held,
                candidate=chosen,
                threshold=threshold,
                raw=raw,
                normalised=score.normalise(raw, count, cost) if count else None,
                files=len(test),
                windows=count,
                windows_detected=sum(f.windows_detected for f in files),
                false_positive_rows=sum(f.fp for f in files),
            )
        )
    total = sum(len(w) for w in windows.values())
    pooled = score.normalise(sum(f.raw for f in folds), total, cost)
    scored = [f.normalised for f in folds if f.normalised is not None]
    return folds, pooled, (sum(scored) / len(scored) if scored else None)


def _fold_view(f: Fold) -> dict[str, Any]:
    return {**asdict(f), "raw": round(f.raw, 3), "normalised": None if f.normalised is None else round(f.normalised, 2)}


def run(nab: Path) -> dict[str, Any]:
    """Cross-validation (standard profile) over the grid and per parameter set, and the in-sample scores."""
    windows = score.load_windows(nab / "labels" / "combined_windows.json")
    profiles = score.load_profiles(nab / "config" / "profiles.json")
    standard = profiles["standard"]
    names = sorted(windows)
    by_candidate = {c: candidate_results(nab, p, names) for c, p in CANDIDATES.items()}
    folds, pooled, mean = cross_validate(by_candidate, windows, standard)
    in_sample = score.score_corpus(by_candidate["default"], windows, profiles)
    each: dict[str, Any] = {}
    for c, results in by_candidate.items():
        alone, alone_pooled, _ = cross_validate({c: results}, windows, standard)
        each[c] = {
            "params": CANDIDATES[c],
            "in_sample_standard": round(
                score.score_corpus(results, windows, {"standard": standard})["standard"].normalised, 2
            ),
            "cross_validated_standard": round(alone_pooled, 2),
            "folds": {f.category: f.raw if f.normalised is None else f.normalised for f in alone},
        }
        each[c]["folds"] = {k: round(v, 2) for k, v in each[c]["folds"].items()}
    return {
        "folds": [_fold_view(f) for f in folds],
        "cross_validated_standard": round(pooled, 2),
        "fold_mean_standard": None if mean is None else round(mean, 2),
        "in_sample": {p: round(s.normalised, 2) for p, s in in_sample.items()},
        "in_sample_threshold": in_sample["standard"].threshold,
        "candidates": each,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nab", type=Path, default=Path(__file__).parents[3] / "shared" / "data" / "nab")
    args = parser.parse_args()
    print(json.dumps(run(args.nab), indent=2))


if __name__ == "__main__":
    main()
