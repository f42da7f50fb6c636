"""Leave-one-category-out cross-validation (benchmarks/nab/crossval.py), and that every score is causal."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks" / "nab"))

import crossval  # noqa: E402  (benchmark scripts, importable beside each other)
import run as nab_run  # noqa: E402
import score  # noqa: E402

from crucible_monitor.analysis.streaming import StreamingDetector, suppress_repeats  # noqa: E402

FIXTURE = Path(__file__).parents[2] / "tests" / "fixtures" / "analysis" / "nab"
COST = score.Cost(tp=1.0, fp=0.11, fn=1.0)


def _corpus() -> tuple[dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], dict[str, list]]:
    """Two categories of two files, one window each; ``sees_a`` finds category a's windows, ``sees_b`` b's."""
    stamps = (np.datetime64("2024-01-01T00:00") + np.arange(400) * np.timedelta64(5, "m")).astype("datetime64[us]")
    names = ["a/1.csv", "a/2.csv", "b/1.csv", "b/2.csv"]
    windows = {name: [(stamps[200 + 20 * k], stamps[240 + 20 * k])] for k, name in enumerate(names)}
    candidates: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"sees_a": {}, "sees_b": {}}
    for k, name in enumerate(names):
        for candidate, category in (("sees_a", "a"), ("sees_b", "b")):
            scores = np.zeros(400)
            scores[100] = 0.3  # a false alert both make
            if name.startswith(category):
                scores[200 + 20 * k] = 0.9
            candidates[candidate][name] = (stamps, scores)
    return candidates, windows


def test_each_fold_chooses_on_the_other_categories_and_scores_the_held_out_one() -> None:
    candidates, windows = _corpus()
    folds, pooled, mean = crossval.cross_validate(candidates, windows, COST)
    assert [(f.category, f.candidate) for f in folds] == [("a", "sees_b"), ("b", "sees_a")]
    assert all(f.windows_detected == 0 and f.windows == 2 for f in folds)  # the choice never saw the held-out one
    assert all(f.threshold == 0.9 for f in folds)  # not 0.3: that would add a false alert per file
    assert pooled == pytest.approx(score.normalise(sum(f.raw for f in folds), 4, COST))
    assert pooled == pytest.approx(0.0)  # every window missed, no false alert: the null detector's score
    in_sample = score.score_corpus(candidates["sees_a"], windows, {"standard": COST})["standard"]
    assert in_sample.normalised == pytest.approx(50.0)  # what choosing on the scored files claims


def test_scores_are_causal_a_files_prefix_scores_the_same_as_the_whole_file() -> None:
    path = next(FIXTURE.glob("data/*/*.csv"))
    _, seconds, values = nab_run.read_series(path)
    whole = suppress_repeats(StreamingDetector().score_samples(seconds, values), nab_run.DEDUP_ROWS)
    for cut in (len(values) // 3, len(values) // 2):
        prefix = suppress_repeats(StreamingDetector().score_samples(seconds[:cut], values[:cut]), nab_run.DEDUP_ROWS)
        np.testing.assert_array_equal(prefix, whole[:cut])


def test_candidate_results_are_the_detectors_scores_and_come_back_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crossval, "CACHE", tmp_path / "cache")
    names = sorted(str(p.relative_to(FIXTURE / "data")) for p in FIXTURE.glob("data/*/*.csv"))
    first = crossval.candidate_results(FIXTURE, {"window": 1000}, names)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    _, seconds, values = nab_run.read_series(FIXTURE / "data" / names[0])
    expected = suppress_repeats(StreamingDetector(window=1000).score_samples(seconds, values), nab_run.DEDUP_ROWS)
    np.testing.assert_array_equal(first[names[0]][1], expected)

    def not_again(**params: object) -> StreamingDetector:
        raise AssertionError("scored again instead of reading the cache")

    monkeypatch.setattr(crossval.streaming, "StreamingDetector", not_again)
    again = crossval.candidate_results(FIXTURE, {"window": 1000}, names)
    for name in names:
        np.testing.assert_array_equal(again[name][0], first[name][0])
        np.testing.assert_array_equal(again[name][1], first[name][1])
    assert crossval.category(names[0]) == names[0].split("/")[0]
