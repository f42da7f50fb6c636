"""Run the streaming detector over a NAB-style data directory.

    python benchmarks/nab/run.py --data ../shared/data/nab/data --out /tmp/nab-out

Every ``*.csv`` under ``--data`` (``timestamp,value``) gets a CSV at the same relative path under ``--out`` with
``timestamp,value,anomaly_score``. One set of parameters for every file (the detector's defaults); each point is
scored only from the points before it; alerts are de-duplicated (:func:`suppress_repeats`). ``--detector
windowed_gaussian`` runs NAB's published windowed Gaussian instead (to check the scorer against its published
score). Prints the rows scored and the time taken as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).parent))

from windowed_gaussian import windowed_gaussian  # noqa: E402  (a script beside this one)

from crucible_monitor.analysis.streaming import StreamingDetector, suppress_repeats  # noqa: E402

__all__ = ["DEDUP_ROWS", "DETECTORS", "detect", "read_series", "run_directory"]

DEDUP_ROWS = 50
"""Rows after a point within which a weaker score is a repeat of the same alert."""

Detector = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.float64]]


def detect(timestamps: npt.NDArray[np.float64], values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The streaming detector's de-duplicated scores for one series (timestamps in Unix seconds)."""
    return suppress_repeats(StreamingDetector().score_samples(timestamps, values), DEDUP_ROWS)


def _windowed_gaussian(timestamps: npt.NDArray[np.float64], values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    # NAB's published result files hold scores as Python 2 printed them (12 significant digits)
    return np.array([float(f"{s:.12g}") for s in windowed_gaussian(values)])


DETECTORS: dict[str, Detector] = {"streaming": detect, "windowed_gaussian": _windowed_gaussian}


def read_series(path: Path) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The timestamps (as written and as Unix seconds, read as UTC) and values of one data file."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(row["timestamp"], float(row["value"])) for row in csv.DictReader(handle)]
    stamps = [t for t, _ in rows]
    seconds = np.array([datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp() for t in stamps])
    return stamps, seconds, np.array([v for _, v in rows], dtype=np.float64)


def run_directory(data: Path, out: Path, detector: Detector = detect) -> dict[str, float]:
    """Score every CSV under ``data`` into ``out``; returns rows scored and seconds spent detecting."""
    rows = 0
    spent = 0.0
    for path in sorted(data.rglob("*.csv")):
        stamps, seconds, values = read_series(path)
        started = time.perf_counter()
        scores = detector(seconds, values)
        spent += time.perf_counter() - started
        rows += len(values)
        target = out / path.relative_to(data)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "value", "anomaly_score"])
            writer.writerows(zip(stamps, values.tolist(), scores.tolist(), strict=True))
    return {"rows": rows, "seconds": round(spent, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="directory of timestamp,value CSVs (any depth)")
    parser.add_argument("--out", type=Path, required=True, help="where the scored CSVs go")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="streaming")
    args = parser.parse_args()
    print(json.dumps(run_directory(args.data, args.out, DETECTORS[args.detector])))


if __name__ == "__main__":
    main()
