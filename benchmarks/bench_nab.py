"""The anomaly detectors on the NAB development subset, scored with our NAB scorer; and the engine's cost.

    python benchmarks/bench_nab.py [--nab ../shared/data/nab]

- **Streaming detector** (``crucible_monitor.analysis.streaming``, run by ``benchmarks/nab/run.py``): NAB scores of
  the three profiles, windows found and false-positive rows, and its run time per 1,000 points.
- **Scorer check**: NAB's windowed Gaussian reproduced (``benchmarks/nab/windowed_gaussian.py``) and scored at its
  published threshold; each file's score and counts are compared with NAB's published per-file results
  (``benchmarks/nab/windowed_gaussian_published.csv``), and its dev-set scores are reported.
- **IsolationForest over lags** (``benchmarks/nab/isolation_lags.py``), plain and with our de-duplication.
- **Cross-validation** (``benchmarks/nab/crossval.py``): leave one category out, parameters and threshold chosen on
  the others; each parameter set of the small grid alone too, which is what justifies each view of the detector.
- **False positives against a static threshold** (``benchmarks/nab/compare.py``) at the same or better recall, and
  the whole curve of false alerts against windows found for both (a PNG beside the page if matplotlib is there).
- **Engine cost** (``benchmarks/nab/engine_memory.py``): agent RSS with the engine, the fitting child's peak, timings.

Prints one JSON object; :func:`render` turns it into Markdown for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "nab"))

import compare  # noqa: E402  (the NAB scripts are modules beside each other)
import crossval  # noqa: E402
import engine_memory  # noqa: E402
import isolation_lags  # noqa: E402
import run as nab_run  # noqa: E402
import score  # noqa: E402

from crucible_monitor.analysis.streaming import StreamingDetector, suppress_repeats  # noqa: E402

__all__ = ["DEFAULT_NAB", "PUBLISHED", "PUBLISHED_WG_TOTALS", "PUBLISHED_WG_WINDOWS", "render", "run"]

DEFAULT_NAB = HERE.parent.parent / "shared" / "data" / "nab"
PLOT = HERE.parent / "docs" / "nab_fp_recall.png"
LIVE_FALSE_ALERTS_PER_FILE = 0.3
"""The false-alert budget of the live threshold (``analysis.streaming_threshold``): at most this many per file."""
PUBLISHED = {  # NAB scoreboard, full corpus, standard profile
    "Numenta HTM": 70.5,
    "CAD OSE": 69.9,
    "KNN CAD": 58.0,
    "Relative Entropy": 54.6,
    "Random Cut Forest": 51.7,
    "Twitter ADVec": 47.1,
    "Windowed Gaussian": 39.6,
    "Etsy Skyline": 35.7,
    "Random": 11.0,
    "Null": 0.0,
}
PUBLISHED_WG_TOTALS = {"standard": -24.0131054891, "reward_low_FP_rate": -67.5862728866}
"""NAB's published raw totals of the windowed Gaussian over the full corpus (results/windowedGaussian, de8e91a)."""
PUBLISHED_WG_WINDOWS = 116
"""Anomaly windows in the full NAB corpus."""


def _scores(
    results: dict[str, tuple[np.ndarray, np.ndarray]],
    windows: dict[str, list[tuple[np.datetime64, np.datetime64]]],
    profiles: dict[str, score.Cost],
    threshold: float | None = None,
) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "score": round(s.normalised, 2),
            "threshold": s.threshold,
            "windows_detected": sum(f.windows_detected for f in s.files),
            "windows": s.windows,
            "fp_rows": sum(f.fp for f in s.files),
        }
        for name, s in score.score_corpus(results, windows, profiles, threshold=threshold).items()
    }


def _published_check(
    results: dict[str, tuple[np.ndarray, np.ndarray]],
    windows: dict[str, list[tuple[np.datetime64, np.datetime64]]],
    profiles: dict[str, score.Cost],
) -> dict[str, Any]:
    with (HERE / "nab" / "windowed_gaussian_published.csv").open(encoding="utf-8", newline="") as handle:
        published = list(csv.DictReader(handle))
    matched = 0
    checked = 0
    for profile in sorted({r["Profile"] for r in published}):
        ours = {
            f.name: f
            for f in score.score_corpus(results, windows, {profile: profiles[profile]}, threshold=1.0)[profile].files
        }
        for row in (r for r in published if r["Profile"] == profile and r["File"] in ours):
            f = ours[row["File"]]
            checked += 1
            matched += abs(f.score - float(row["Score"])) < 1e-9 and (f.tp, f.tn, f.fp, f.fn) == (
                int(row["TP"]),
                int(row["TN"]),
                int(row["FP"]),
                int(row["FN"]),
            )
    return {"files_checked": checked, "files_matching": matched}


def _counts(counts: compare.AlertCounts) -> dict[str, object]:
    return {
        "alerts": counts.alerts,
        "false_positives": counts.false_positives,
        "windows_detected": counts.windows_detected,
        "windows": counts.windows,
    }


def _cost(series: dict[str, tuple[list[str], np.ndarray, np.ndarray]], **params: Any) -> float:
    """The streaming detector's µs per point over every file, with ``params``."""
    began = time.perf_counter()
    for _, seconds, values in series.values():
        StreamingDetector(**params).score_samples(seconds, values)
    return round((time.perf_counter() - began) / sum(len(v) for _, _, v in series.values()) * 1e6, 2)


def _live_cost(series: dict[str, tuple[list[str], np.ndarray, np.ndarray]]) -> float:
    """µs per point as the live agent scores: one point per call, with the value range read before it."""
    points = 0
    began = time.perf_counter()
    for _, seconds, values in series.values():
        detector = StreamingDetector().fit([], [])
        view = detector.views_["value"]
        for ts, value in zip(seconds.tolist(), values.tolist(), strict=True):
            view.bounds  # noqa: B018  (what analysis/live.py reads for each point)
            detector.score_samples([ts], [value])
        points += len(values)
    return round((time.perf_counter() - began) / points * 1e6, 2)


def _curve(
    data: dict[str, tuple[np.ndarray, np.ndarray]],
    ours: dict[str, tuple[np.ndarray, np.ndarray]],
    windows: dict[str, list[tuple[np.datetime64, np.datetime64]]],
) -> dict[str, Any]:
    """False alerts against windows found, ours and the static rule, and where ours has half or fewer."""
    names = sorted(windows)
    mine = compare.tradeoff([(ours[n][0], np.where(ours[n][1] > 0, ours[n][1], -np.inf), windows[n]) for n in names])
    static = compare.tradeoff(
        [(data[n][0], compare.static_scores(data[n][1], nab_run.DEDUP_ROWS), windows[n]) for n in names]
    )
    levels = [
        {
            "windows": k,
            "ours_fp": mine[k][0] if k in mine else None,
            "ours_threshold": round(mine[k][1], 4) if k in mine else None,
            "static_fp": static[k][0] if k in static else None,
            "static_margin": round(static[k][1], 4) if k in static else None,
        }
        for k in sorted(set(mine) | set(static))
    ]
    budget = LIVE_FALSE_ALERTS_PER_FILE * len(names)
    live = max(
        (row for row in levels if row["ours_fp"] is not None and row["ours_fp"] <= budget), key=lambda r: r["windows"]
    )
    both = [row for row in levels if row["ours_fp"] is not None and row["static_fp"] is not None]
    failing = [row["windows"] for row in both if row["ours_fp"] > 0.5 * row["static_fp"]]
    return {
        "levels": levels,
        "both_reach": [both[0]["windows"], both[-1]["windows"]] if both else None,
        "half_or_fewer_everywhere": not failing,
        "levels_failing": failing,
        "live": {
            "false_alerts_per_file": LIVE_FALSE_ALERTS_PER_FILE,
            "threshold": live["ours_threshold"],
            "windows": live["windows"],
            "false_alerts": live["ours_fp"],
        },
        "plot": _plot(levels),
    }


def _plot(levels: list[dict[str, Any]]) -> str | None:
    """The curve as a PNG beside docs/benchmarks.md, if matplotlib is installed (the ``bench`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for key, label in (("ours_fp", "streaming detector (ours)"), ("static_fp", "static two-sided threshold")):
        points = [(row["windows"], row[key]) for row in levels if row[key] is not None]
        ax.step([p[0] for p in points], [p[1] for p in points], where="post", label=label)
    ax.set_xlabel("windows found (of the labelled windows)")
    ax.set_ylabel("false alerts (de-duplicated)")
    ax.set_yscale("symlog", linthresh=10)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("NAB development subset: false alerts against windows found")
    fig.tight_layout()
    PLOT.parent.mkdir(exist_ok=True)
    fig.savefig(PLOT, dpi=90)
    plt.close(fig)
    return PLOT.name


def run(nab: Path = DEFAULT_NAB) -> dict[str, object]:
    """Run every measurement on the NAB subset at ``nab`` (``data/``, ``labels/``, ``config/``)."""
    windows = score.load_windows(nab / "labels" / "combined_windows.json")
    profiles = score.load_profiles(nab / "config" / "profiles.json")
    with tempfile.TemporaryDirectory() as tmp:
        timing = nab_run.run_directory(nab / "data", Path(tmp))
        ours = {name: score.read_results(Path(tmp) / name) for name in windows}
    series = {name: nab_run.read_series(nab / "data" / name) for name in windows}
    stamps = {name: ours[name][0] for name in windows}
    data = {name: (stamps[name], series[name][2]) for name in windows}
    streaming = _scores(ours, windows, profiles)

    wg = {
        name: (stamps[name], nab_run.DETECTORS["windowed_gaussian"](series[name][1], series[name][2]))
        for name in windows
    }
    iforest = {name: (stamps[name], isolation_lags.isolation_lags(series[name][2])) for name in windows}
    iforest_dedup = {name: (s, suppress_repeats(v, nab_run.DEDUP_ROWS)) for name, (s, v) in iforest.items()}

    threshold = float(streaming["standard"]["threshold"])
    ours_counts = compare.AlertCounts(0, 0, 0, 0)
    for name in windows:
        ours_counts += compare.count_alerts(stamps[name], ours[name][1] >= threshold, windows[name])
    sweep = compare.static_sweep(data, windows, nab_run.DEDUP_ROWS)
    eligible = {m: c for m, c in sweep.items() if c.windows_detected >= ours_counts.windows_detected}
    static_margin = min(eligible, key=lambda m: eligible[m].false_positives) if eligible else None
    best_recall = max(sweep, key=lambda m: (sweep[m].windows_detected, -sweep[m].false_positives))
    static = sweep[static_margin if static_margin is not None else best_recall]
    return {
        "files": len(windows),
        "dedup_rows": nab_run.DEDUP_ROWS,
        "rows": timing["rows"],
        "windows": sum(len(w) for w in windows.values()),
        "streaming": streaming,
        "streaming_ms_per_1000_points": round(timing["seconds"] / timing["rows"] * 1e6, 2),
        "windowed_gaussian": _scores(wg, windows, profiles),
        "windowed_gaussian_at_published_threshold": _scores(wg, windows, profiles, threshold=1.0),
        "windowed_gaussian_published_check": _published_check(wg, windows, profiles),
        "published_totals_normalised": {
            profile: round(score.normalise(total, PUBLISHED_WG_WINDOWS, profiles[profile]), 2)
            for profile, total in PUBLISHED_WG_TOTALS.items()
        },
        "isolation_forest_lags": _scores(iforest, windows, profiles),
        "isolation_forest_lags_dedup": _scores(iforest_dedup, windows, profiles),
        "false_positives": {
            "ours": {**_counts(ours_counts), "threshold": threshold},
            "static": {
                **_counts(static),
                "margin": (static_margin if static_margin is not None else best_recall) + 0.0,
            },
            "static_reaches_our_recall": static_margin is not None,
            "reduction_percent": round(100 * (1 - ours_counts.false_positives / static.false_positives), 1)
            if static.false_positives
            else None,
        },
        "shape_view_us_per_point": _cost(series, shape=True),
        "live_us_per_point": _live_cost(series),
        "cross_validation": crossval.run(nab),
        "fp_recall_curve": _curve(data, ours, windows),
        "engine": engine_memory.run(),
    }


def _cross_validation(cv: dict[str, Any]) -> list[str]:
    folds = "\n".join(
        f"| {f['category']} | {f['windows']} | {f['candidate']} | {f['threshold']:.4f} "
        f"| {'–' if f['normalised'] is None else f['normalised']} | {f['raw']} "
        f"| {f['windows_detected']}/{f['windows']} | {f['false_positive_rows']} "
        f"({f['false_positive_rows'] / f['files']:.2f} a file) |"
        for f in cv["folds"]
    )
    categories = [f["category"] for f in cv["folds"]]
    components = "\n".join(
        f"| {name} | {c['in_sample_standard']} | {c['cross_validated_standard']} | "
        + " | ".join(str(c["folds"][k]) for k in categories)
        + " |"
        for name, c in cv["candidates"].items()
    )
    return [
        "### Cross-validated, next to in-sample",
        "",
        "Leave one category out (`benchmarks/nab/crossval.py`): the parameter set (from the small grid below) and",
        "the threshold are chosen on the other categories by their standard-profile total, and the held-out",
        "category is scored at them. A category without windows has no normalised score (–); its raw score is the",
        "cost of its false positives. The cross-validated score is the held-out raw totals of all folds normalised",
        "together over all windows.",
        "",
        "| Held-out category | windows | parameter set chosen | threshold | standard | raw | windows found "
        "| false-positive rows |",
        "|---|---|---|---|---|---|---|---|",
        folds,
        "",
        f"**Cross-validated standard score: {cv['cross_validated_standard']}** (mean of the per-fold normalised",
        f"scores: {cv['fold_mean_standard']}). **In-sample** (the default parameters, which were chosen on this same",
        f"subset, at the threshold chosen on all of it): {cv['in_sample']['standard']} standard,",
        f"{cv['in_sample']['reward_low_FP_rate']} reward_low_FP, {cv['in_sample']['reward_low_FN_rate']}",
        "reward_low_FN. The published board beside them (full corpus, standard, in-sample: each detector's",
        "threshold was chosen on the corpus it is scored on, and most scale by a file's min and max, known only at",
        "its end): " + " · ".join(f"{k} {v}" for k, v in PUBLISHED.items()) + ".",
        "",
        "Each parameter set alone (its threshold still chosen on the other categories): what each view of the",
        "detector earns. The default has four views (value, level of 9 points with its range at least 1 % of the",
        "value range, density, daily profile) over a window of 4,000 points; each other row changes one thing. A",
        "view stays in the default only if the default beats the row without it (or with it) cross-validated. The",
        "level floor is the exception, kept although its row shows it costs a little: without it one false alert",
        "(a quantised series whose median had sat on one value for days) outranks the first windows found, and",
        "the curve below loses the halving at low recall. The grid and the default were settled after looking at",
        "these rows, so a row's cross-validated score is held out for the threshold only; the headline",
        "cross-validated score above, where each fold picks its parameter set from the grid, is the one held out",
        "for both (the grid itself was still chosen by us).",
        "",
        "| Parameter set | in-sample | cross-validated | " + " | ".join(categories) + " |",
        "|---|---|---|" + "---|" * len(categories),
        components,
        "",
    ]


def _half(row: dict[str, Any]) -> str:
    if row["ours_fp"] is None or row["static_fp"] is None:
        return "–"
    return "✓" if row["ours_fp"] <= row["static_fp"] / 2 else "✗"


def _fp_curve(curve: dict[str, Any]) -> list[str]:
    rows = "\n".join(
        f"| {r['windows']} | {'–' if r['ours_fp'] is None else r['ours_fp']} "
        f"| {'–' if r['static_fp'] is None else r['static_fp']} | {_half(r)} |"
        for r in curve["levels"]
    )
    low, high = curve["both_reach"] or (0, 0)
    verdict = (
        "holds at every one of them"
        if curve["half_or_fewer_everywhere"]
        else "does not hold at " + ", ".join(str(k) for k in curve["levels_failing"]) + " windows found"
    )
    plot = [f"![False alerts against windows found]({curve['plot']})", ""] if curve["plot"] else []
    return [
        "### False alerts against windows found",
        "",
        "Every threshold of ours and every margin of the static two-sided rule (same de-duplication, rows after",
        "the probationary period): for each number of windows found, the fewest false alerts that find that many.",
        f"Both reach {low} to {high} windows; “≥ 50 % fewer false positives at equal recall” {verdict}.",
        "",
        f"The live threshold (`analysis.streaming_threshold`'s default, {curve['live']['threshold']} rounded) finds",
        f"the most windows within {curve['live']['false_alerts_per_file']} false alerts a file:",
        f"{curve['live']['windows']} windows with {curve['live']['false_alerts']} false alerts (the NAB-optimal",
        "standard threshold above buys the last windows with about one false alert a file).",
        "",
        *plot,
        "| Windows found | false alerts, ours | false alerts, static | ours ≤ half |",
        "|---|---|---|---|",
        rows,
        "",
    ]


def render(results: dict[str, Any]) -> str:
    """A Markdown section for ``docs/benchmarks.md``."""
    s, fp, e = results["streaming"], results["false_positives"], results["engine"]
    check, totals = results["windowed_gaussian_published_check"], results["published_totals_normalised"]
    rows = [
        ("Streaming detector (ours), in-sample", s, f"{results['streaming_ms_per_1000_points']} µs"),
        ("Windowed Gaussian (reproduced)", results["windowed_gaussian"], ""),
        ("IsolationForest over lags", results["isolation_forest_lags"], ""),
        ("IsolationForest over lags, de-duplicated", results["isolation_forest_lags_dedup"], ""),
    ]
    table = "\n".join(
        f"| {name} | {r['standard']['score']} | {r['reward_low_FP_rate']['score']} "
        f"| {r['reward_low_FN_rate']['score']} | {r['standard']['windows_detected']}/{r['standard']['windows']} | {t} |"
        for name, r, t in rows
    )
    board = " · ".join(f"{k} {v}" for k, v in PUBLISHED.items())
    lines = [
        "## Anomaly detection on NAB",
        "",
        f"NAB development subset: {results['files']} files, {results['rows']:,} rows, {results['windows']} windows.",
        "Scored with `benchmarks/nab/score.py` (NAB's method: windows, scaled sigmoid, one threshold swept per",
        "profile, normalised so the null detector scores 0 and a perfect one 100). One parameter set for every file;",
        "each point is scored from the points before it only (no file's later values, min or max are used).",
        "",
        "| Detector | standard | reward_low_FP | reward_low_FN | windows found (standard) | per point |",
        "|---|---|---|---|---|---|",
        table,
        "",
        "These scores are in-sample: the threshold is swept on the files scored, and our parameters were chosen on",
        "them. “Per point” is the streaming detector's cost for one series and one collection cycle (this",
        f"machine, pure Python, the four default views; {results.get('shape_view_us_per_point', '?')} µs with the",
        f"shape view too; {results.get('live_us_per_point', '?')} µs as the live agent calls it, one point a call).",
        "",
        *([] if "cross_validation" in results else [f"Published scoreboard, full corpus (standard): {board}.", ""]),
        *(_cross_validation(results["cross_validation"]) if "cross_validation" in results else []),
        *(_fp_curve(results["fp_recall_curve"]) if "fp_recall_curve" in results else []),
        "### Scorer check and the static threshold at our recall",
        "",
        "Scorer check: the reproduced windowed Gaussian at its published threshold matches NAB's published",
        f"per-file score and TP/TN/FP/FN counts on {check['files_matching']} of {check['files_checked']} file and",
        "profile pairs of this subset. NAB's published full-corpus totals for it normalise, with our formula, to",
        f"{totals['standard']} (standard) and {totals['reward_low_FP_rate']} (reward_low_FP).",
        "",
        "False positives, the same alert de-duplication for both (an alert must beat every score of the previous",
        f"{results['dedup_rows']} rows): ours {fp['ours']['false_positives']} false alerts at its standard threshold",
        f"({fp['ours']['false_positives'] / results['files']:.2f} a file),",
        f"finding {fp['ours']['windows_detected']} of {fp['ours']['windows']} windows. A static two-sided threshold",
        f"on the raw value (from each file's probationary rows, margin swept) needs {fp['static']['false_positives']}",
        f"false alerts to find {fp['static']['windows_detected']}: {fp['reduction_percent']} % fewer for ours.",
        "",
        "Engine cost (`benchmarks/nab/engine_memory.py`): importing the engine adds",
        f"{round(e['rss_engine_imported_mb'] - e['rss_store_filled_mb'], 1)} MB to the agent; a refit on",
        f"{e['refit_buckets']} buckets takes {e['refit_seconds']} s (scikit-learn in a child process: peak RSS",
        f"{e['fit_child_peak_rss_mb']} MB, released when it exits); a scoring run {e['score_run_ms_median']} ms.",
        f"After a refit and 60 scoring runs the agent's RSS is {e['engine_rss_delta_mb']} MB higher; scikit-learn",
        f"loaded in the agent: {e['sklearn_in_agent_process']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nab", type=Path, default=DEFAULT_NAB, help="NAB root with data/, labels/, config/")
    args = parser.parse_args()
    began = time.perf_counter()
    results = run(args.nab)
    results["seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
