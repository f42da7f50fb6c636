"""NAB scoring, written from the Numenta Anomaly Benchmark's published method (numenta/NAB, ``nab/sweeper.py``,
``nab/runner.py``), so that scores here are comparable with the NAB scoreboard.

For each data file, every row after the probationary period (``min(floor(0.15 n), 0.15 × 5000)`` rows) gets a
weight. Inside a labelled window the weight of a detection falls along the scaled sigmoid
``2 / (1 + e^(5x)) - 1`` from 1 at the window's first row towards 0 at its last (``x = -(right - i + 1) / width``,
divided by the sigmoid's value at -1 so the earliest detection is worth exactly ``tpWeight``); a window counts only
its earliest detection, and a window with none costs ``fnWeight``. Outside windows each detected row costs
``fpWeight`` times the sigmoid of its distance past the preceding window's end (in window widths, with the full
cost from 3 widths on, and before the first window). One threshold per profile is swept over all files together
(a row counts as detected when its score is at least the threshold) and the best total is kept. The total is then
normalised so that the null detector (never detects) scores 0 and a perfect one (detects every window on its first
row and nothing else) scores 100: ``100 (raw - null) / (perfect - null)``, with ``null = -fnWeight × windows`` and
``perfect = tpWeight × windows``.

    python benchmarks/nab/score.py --nab ../shared/data/nab --results /tmp/nab-out

``--results`` holds one CSV per data file at the same relative path (``timestamp,value,anomaly_score``), as
``run.py`` writes them. Prints one JSON object: per profile the threshold, raw and normalised score, and counts.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "PROBATION_FRACTION",
    "CorpusScore",
    "Cost",
    "FileRows",
    "FileScore",
    "best_threshold",
    "load_profiles",
    "load_windows",
    "normalise",
    "probation_length",
    "read_results",
    "scaled_sigmoid",
    "score_corpus",
    "score_file",
    "sweep",
]

PROBATION_FRACTION = 0.15
_MAX_TP = 2 / (1 + math.exp(-5.0)) - 1  # the sigmoid at the window's left edge
_OUTSIDE = -1  # window index of a row outside every window
_PROBATION = -2  # window index of a row in the probationary period

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Cost:
    """One application profile's weights."""

    tp: float
    fp: float
    fn: float


@dataclass(frozen=True, slots=True)
class FileRows:
    """One file prepared for scoring: each row's anomaly score, its weight if detected, and its window.

    ``window`` is the index of the row's window within the file, -1 outside every window, -2 in probation.
    ``missable`` tells, per window, whether it has a row after probation (only those can be missed).
    """

    name: str
    scores: Floats
    weights: Floats
    window: Ints
    missable: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class FileScore:
    """One file's result at a threshold: the raw score, rows by outcome, and windows found."""

    name: str
    score: float
    tp: int
    fp: int
    fn: int
    tn: int
    windows: int
    windows_detected: int


@dataclass(frozen=True, slots=True)
class CorpusScore:
    """One profile's result over a corpus."""

    profile: str
    threshold: float
    raw: float
    normalised: float
    windows: int
    files: list[FileScore]


def probation_length(rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows at the start of a file that are not scored (NAB caps the period at 15 % of 5,000 rows)."""
    return int(min(math.floor(fraction * rows), fraction * 5000))


def scaled_sigmoid(position: float) -> float:
    """NAB's weight at a relative position: about 1 at -1 (a window's left edge), 0 at its right edge, -1 from 3."""
    if position >= 3.0:
        return -1.0
    return 2 / (1 + math.exp(5 * position)) - 1


def load_profiles(path: Path) -> dict[str, Cost]:
    """The cost matrices of ``config/profiles.json``."""
    profiles = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: Cost(tp=p["CostMatrix"]["tpWeight"], fp=p["CostMatrix"]["fpWeight"], fn=p["CostMatrix"]["fnWeight"])
        for name, p in profiles.items()
    }


def load_windows(path: Path) -> dict[str, list[tuple[np.datetime64, np.datetime64]]]:
    """The anomaly windows of ``labels/combined_windows.json`` by relative data path."""
    raw: dict[str, list[list[str]]] = json.loads(path.read_text(encoding="utf-8"))
    return {name: [(np.datetime64(a), np.datetime64(b)) for a, b in limits] for name, limits in raw.items()}


def read_results(path: Path) -> tuple[npt.NDArray[np.datetime64], Floats]:
    """Timestamps and anomaly scores of one results CSV.

    Raises:
        ValueError: the file has no ``timestamp`` or ``anomaly_score`` column.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"timestamp", "anomaly_score"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        rows = [(row["timestamp"], float(row["anomaly_score"])) for row in reader]
    stamps = np.array([np.datetime64(t) for t, _ in rows], dtype="datetime64[us]")
    return stamps, np.array([s for _, s in rows], dtype=np.float64)


def sweep(
    name: str,
    timestamps: npt.NDArray[np.datetime64],
    scores: Floats,
    windows: Sequence[tuple[np.datetime64, np.datetime64]],
    cost: Cost,
    fraction: float = PROBATION_FRACTION,
) -> FileRows:
    """Weight every row of one file as NAB's sweeper does (the weight a detection on that row would earn)."""
    n = len(timestamps)
    weights = np.empty(n, dtype=np.float64)
    window = np.full(n, _OUTSIDE, dtype=np.int64)
    bounds = [
        (int(np.searchsorted(timestamps, start, "left")), int(np.searchsorted(timestamps, end, "right")) - 1)
        for start, end in windows
    ]
    previous: tuple[int, int] | None = None  # (right index, width) of the last window passed
    next_window = 0
    i = 0
    while i < n:
        if next_window < len(bounds) and i == bounds[next_window][0]:
            left, right = bounds[next_window]
            width = right - left + 1
            positions = np.arange(left, right + 1)
            relative = -(right - positions + 1) / width
            weights[left : right + 1] = (2 / (1 + np.exp(5 * relative)) - 1) * cost.tp / _MAX_TP
            window[left : right + 1] = next_window
            previous = (right, width)
            next_window += 1
            i = right + 1
            continue
        end = bounds[next_window][0] if next_window < len(bounds) else n
        positions = np.arange(i, end)
        if previous is None:
            weights[i:end] = -cost.fp
        else:
            right, width = previous
            past = np.abs(right - positions) / (width - 1) if width > 1 else np.full(len(positions), 3.0)
            weights[i:end] = np.where(past >= 3.0, -1.0, 2 / (1 + np.exp(5 * past)) - 1) * cost.fp
        i = end
    probation = probation_length(n, fraction)
    window[:probation] = _PROBATION
    live = {int(w) for w in window[probation:] if w >= 0}
    missable = tuple(w in live for w in range(len(bounds)))
    return FileRows(name=name, scores=scores.astype(np.float64), weights=weights, window=window, missable=missable)


def best_threshold(files: Sequence[FileRows], cost: Cost) -> tuple[float, float]:
    """The threshold with the best total over all files, and that total (the highest threshold among ties).

    Starts from 1.1 (nothing detected: every window missed) and lowers the threshold through every distinct score.
    """
    scored = [(f, f.window != _PROBATION) for f in files]
    scores = np.concatenate([f.scores[m] for f, m in scored])
    weights = np.concatenate([f.weights[m] for f, m in scored])
    offsets = np.cumsum([0] + [len(f.missable) for f in files])
    keys = np.concatenate([np.where(f.window[m] >= 0, f.window[m] + offsets[k], -1) for k, (f, m) in enumerate(scored)])
    order = np.argsort(-scores, kind="stable")
    scores, weights, keys = scores[order], weights[order], keys[order]
    best_in_window = np.concatenate([np.where(f.missable, -cost.fn, 0.0) for f in files] + [np.empty(0)])
    total = float(best_in_window.sum())
    best = (1.1, total)
    for i in range(len(scores)):
        key = keys[i]
        if key < 0:
            total += weights[i]
        elif weights[i] > best_in_window[key]:
            total += weights[i] - best_in_window[key]
            best_in_window[key] = weights[i]
        if (i + 1 == len(scores) or scores[i + 1] != scores[i]) and total > best[1]:
            best = (float(scores[i]), total)
    return best


def score_file(rows: FileRows, threshold: float, cost: Cost) -> FileScore:
    """One file's score and counts with detections at ``scores >= threshold``."""
    live = rows.window != _PROBATION
    detected = (rows.scores >= threshold) & live
    inside = rows.window >= 0
    found = {int(w) for w in rows.window[detected & inside]}
    total = float(rows.weights[detected & ~inside].sum())
    for w in {int(w) for w in rows.window[inside]}:
        hits = detected & (rows.window == w)
        total += float(rows.weights[hits].max()) if hits.any() else -cost.fn
    return FileScore(
        name=rows.name,
        score=total,
        tp=int((detected & inside).sum()),
        fp=int((detected & ~inside).sum()),
        fn=int((~detected & inside).sum()),
        tn=int((~detected & live & ~inside).sum()),
        windows=sum(rows.missable),
        windows_detected=len(found),
    )


def normalise(raw: float, windows: int, cost: Cost) -> float:
    """NAB's normalised score: 0 for the null detector, 100 for the perfect one."""
    null = -cost.fn * windows
    perfect = cost.tp * windows
    return 100 * (raw - null) / (perfect - null)


def score_corpus(
    results: Mapping[str, tuple[npt.NDArray[np.datetime64], Floats]],
    windows: Mapping[str, Sequence[tuple[np.datetime64, np.datetime64]]],
    profiles: Mapping[str, Cost],
    *,
    threshold: float | None = None,
) -> dict[str, CorpusScore]:
    """Score every file of ``windows`` under each profile, at the best threshold (or at ``threshold``).

    Raises:
        KeyError: a labelled file has no results.
    """
    total_windows = sum(len(w) for w in windows.values())
    out: dict[str, CorpusScore] = {}
    for profile, cost in profiles.items():
        files = [sweep(name, *results[name], limits, cost) for name, limits in sorted(windows.items())]
        chosen = threshold if threshold is not None else best_threshold(files, cost)[0]
        per_file = [score_file(f, chosen, cost) for f in files]
        raw = sum(f.score for f in per_file)
        out[profile] = CorpusScore(
            profile=profile,
            threshold=chosen,
            raw=raw,
            normalised=normalise(raw, total_windows, cost),
            windows=total_windows,
            files=per_file,
        )
    return out


def _summary(score: CorpusScore) -> dict[str, object]:
    return {
        "threshold": score.threshold,
        "raw": round(score.raw, 4),
        "score": round(score.normalised, 2),
        "windows": score.windows,
        "windows_detected": sum(f.windows_detected for f in score.files),
        "tp_rows": sum(f.tp for f in score.files),
        "fp_rows": sum(f.fp for f in score.files),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nab", type=Path, required=True, help="NAB root: labels/combined_windows.json, config/")
    parser.add_argument("--results", type=Path, required=True, help="one CSV per data file, same relative paths")
    parser.add_argument("--per-file", action="store_true", help="add each file's score and counts")
    args = parser.parse_args()
    windows = load_windows(args.nab / "labels" / "combined_windows.json")
    profiles = load_profiles(args.nab / "config" / "profiles.json")
    results = {name: read_results(args.results / name) for name in windows}
    report: dict[str, object] = {}
    for profile, score in score_corpus(results, windows, profiles).items():
        summary = _summary(score)
        if args.per_file:
            summary["files"] = [asdict(f) for f in score.files]
        report[profile] = summary
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
