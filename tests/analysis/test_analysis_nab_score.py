"""Our NAB scorer (benchmarks/nab/score.py) against NAB's published windowed Gaussian results, and its invariants.

The published per-file results are a recorded fixture (tests/fixtures/analysis/nab/README.md): NAB's own scorer
cannot run here. The data files are three files of NAB's development subset.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "analysis" / "nab"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"nab_{name}", ROOT / "benchmarks" / "nab" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


score = _load("score")
windowed = _load("windowed_gaussian")
WINDOWS_OF_FIXTURE = json.loads((FIXTURE / "labels" / "combined_windows.json").read_text(encoding="utf-8"))


def _series(name: str) -> tuple[np.ndarray, np.ndarray]:
    with (FIXTURE / "data" / name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    stamps = np.array([np.datetime64(r["timestamp"]) for r in rows], dtype="datetime64[us]")
    return stamps, np.array([float(r["value"]) for r in rows])


def test_the_scorer_reproduces_nabs_published_windowed_gaussian_results_file_by_file() -> None:
    windows = score.load_windows(FIXTURE / "labels" / "combined_windows.json")
    profiles = score.load_profiles(FIXTURE / "config" / "profiles.json")
    results = {}
    for name in windows:
        stamps, values = _series(name)
        # NAB's result files hold scores as Python 2 printed them: 12 significant digits
        results[name] = (stamps, np.array([float(f"{s:.12g}") for s in windowed.windowed_gaussian(values)]))
    with (FIXTURE / "windowed_gaussian_published.csv").open(encoding="utf-8", newline="") as handle:
        published = list(csv.DictReader(handle))
    assert len(published) == 6
    for row in published:
        profile = row["Profile"]
        ours = score.score_corpus(results, windows, {profile: profiles[profile]}, threshold=float(row["Threshold"]))
        (file,) = [f for f in ours[profile].files if f.name == row["File"]]
        assert file.score == pytest.approx(float(row["Score"]), abs=1e-9), row
        assert (file.tp, file.tn, file.fp, file.fn) == (int(row["TP"]), int(row["TN"]), int(row["FP"]), int(row["FN"]))


def _random_corpus(
    seed: int,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, list[tuple[np.datetime64, np.datetime64]]]]:
    rng = np.random.default_rng(seed)
    results, windows = {}, {}
    for k in range(3):
        n = 400 + 100 * k
        stamps = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
        results[f"f{k}.csv"] = (stamps.astype("datetime64[us]"), rng.choice(np.linspace(0, 1, 25), n))
        starts = sorted(rng.choice(np.arange(100, n - 60), size=k, replace=False))
        windows[f"f{k}.csv"] = [(stamps[s], stamps[s + 30]) for s in starts if s + 30 < n]
    return results, windows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_threshold_sweep_finds_the_best_of_every_threshold_tried_one_by_one(seed: int) -> None:
    results, windows = _random_corpus(seed)
    cost = score.Cost(tp=1.0, fp=0.11, fn=1.0)
    files = [score.sweep(name, *results[name], limits, cost) for name, limits in windows.items()]
    threshold, best = score.best_threshold(files, cost)
    brute = {
        t: sum(score.score_file(f, t, cost).score for f in files)
        for t in sorted({1.1, *np.concatenate([r[1] for r in results.values()])})
    }
    assert best == pytest.approx(max(brute.values()))
    assert brute[threshold] == pytest.approx(best)


def test_normalisation_puts_the_null_detector_at_0_and_a_perfect_one_at_100() -> None:
    windows = score.load_windows(FIXTURE / "labels" / "combined_windows.json")
    profiles = score.load_profiles(FIXTURE / "config" / "profiles.json")
    null, perfect = {}, {}
    for name, limits in windows.items():
        stamps, _ = _series(name)
        null[name] = (stamps, np.zeros(len(stamps)))
        first_rows = np.zeros(len(stamps))
        first_rows[[int(np.searchsorted(stamps, start)) for start, _ in limits]] = 1.0
        perfect[name] = (stamps, first_rows)
    for profile, result in score.score_corpus(null, windows, profiles).items():
        assert result.normalised == pytest.approx(0.0), profile
    for profile, result in score.score_corpus(perfect, windows, profiles).items():
        assert result.normalised == pytest.approx(100.0), profile


def test_the_scaled_sigmoid_and_probation_follow_nab() -> None:
    assert score.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert score.scaled_sigmoid(0.0) == 0.0
    assert score.scaled_sigmoid(3.0) == -1.0
    assert score.probation_length(4032) == 604
    assert score.probation_length(15_902) == 750  # NAB caps the probationary period at 15 % of 5,000 rows


def test_run_and_score_work_on_any_directory_in_the_nab_layout(tmp_path: Path) -> None:
    bench = ROOT / "benchmarks" / "nab"
    out = tmp_path / "out"
    ran = subprocess.run(
        [sys.executable, str(bench / "run.py"), "--data", str(FIXTURE / "data"), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(ran.stdout)["rows"] == sum(len(_series(n)[0]) for n in WINDOWS_OF_FIXTURE)
    for name in WINDOWS_OF_FIXTURE:
        with (out / name).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["timestamp", "value", "anomaly_score"]
        assert all(0.0 <= float(r["anomaly_score"]) <= 1.0 for r in rows)
    scored = subprocess.run(
        [sys.executable, str(bench / "score.py"), "--nab", str(FIXTURE), "--results", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads(scored.stdout)
    assert set(report) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert all(0 < p["score"] <= 100 and p["windows"] == 9 for p in report.values())
