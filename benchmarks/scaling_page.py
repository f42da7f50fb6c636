"""The scaling section of docs/benchmarks.md: one PNG per curve, the table, and what the curves say."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PLOTS", "plot", "render"]

GOAL_US = 15.0
PLOTS = ("scaling_cpu.png", "scaling_memory.png", "scaling_query.png", "scaling_maintain.png", "scaling_alerts.png")


def _figure(
    path: Path,
    title: str,
    ylabel: str,
    lines: list[tuple[str, list[float], list[float]]],
    goal: float | None = None,
    xlabel: str = "series",
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for label, xs, ys in lines:
        ax.plot(xs, ys, marker="o", label=label)
    if goal is not None:
        ax.axhline(goal, color="red", linestyle="--", linewidth=1, label=f"goal ≤ {goal:g}")
    if xlabel == "series":
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def plot(results: dict[str, Any], directory: Path) -> None:
    """One PNG per curve (:data:`PLOTS`)."""
    runs = results["runs"]
    xs = [float(r["series"]) for r in runs]

    def col(get: Callable[[dict[str, Any]], float]) -> list[float]:
        return [float(get(r)) for r in runs]

    cpu, memory, query, maintain, alerts = (directory / name for name in PLOTS)
    _figure(
        cpu,
        "CPU per sample collected and stored (10 s interval)",
        "µs of CPU per sample",
        [
            ("collected and stored", xs, col(lambda r: r["cpu_us_per_sample"])),
            ("the synthetic collector alone", xs, col(lambda r: r["collector_us_per_sample"])),
        ],
        GOAL_US,
    )
    _figure(
        memory,
        f"RSS per series, in-memory window full ({results['flush_every_ticks']} samples per series)",
        "bytes per series",
        [("RSS growth / series", xs, col(lambda r: r["memory_bytes_per_series"]))],
    )
    _figure(
        query,
        "24 h one-series query (raw 10 s points), median",
        "ms",
        [
            ("canary (alone in its metric)", xs, col(lambda r: r["query_24h"]["canary"]["median_ms"])),
            ("cpu_usage_ratio (3 series per replica)", xs, col(lambda r: r["query_24h"]["siblings"]["median_ms"])),
        ],
    )
    day = results["whole_day"]["maintain"]
    ticks = runs[0]["maintain"]["samples"] // runs[0]["series"]
    samples = [*col(lambda r: r["maintain"]["samples"]), float(day["samples"])]
    _figure(
        maintain,
        f"maintain() of a finished day: {ticks} ticks of each size,\n"
        f"and a whole day of {results['whole_day']['series']:,} series",
        "seconds",
        [
            ("CPU", samples, [*col(lambda r: r["maintain"]["cpu_s"]), day["cpu_s"]]),
            ("wall", samples, [*col(lambda r: r["maintain"]["wall_s"]), day["wall_s"]]),
        ],
        xlabel="samples in the day",
    )
    _figure(
        alerts,
        f"Alert evaluation, {results['rules']:,} threshold rules, one cycle (median)",
        "ms",
        [
            ("wall", xs, col(lambda r: r["alerts"]["cycle_ms_median"])),
            ("CPU", xs, col(lambda r: r["alerts"]["cycle_cpu_ms_median"])),
        ],
    )


_HEADER = (
    "| Series | CPU per sample (collector) | Memory per series | 24 h query, canary / siblings "
    "| Day's maintain, CPU / wall | Maintain peak RSS (per sample) | 5,000 rules, wall / CPU |\n"
    "|---|---|---|---|---|---|---|"
)


def render(results: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    runs, day = results["runs"], results["whole_day"]
    ok = ", ".join(
        f"{r['series']:,}: {r['cpu_us_per_sample']} µs {'✓' if r['cpu_us_per_sample'] <= GOAL_US else '✗'}"
        for r in runs
    )
    rows = "\n".join(
        f"| {r['series']:,} | {r['cpu_us_per_sample']} µs ({r['collector_us_per_sample']} µs) "
        f"| {r['memory_bytes_per_series']:,} B "
        f"| {r['query_24h']['canary']['median_ms']} / {r['query_24h']['siblings']['median_ms']} ms "
        f"| {r['maintain']['cpu_s']} / {r['maintain']['wall_s']} s, {r['maintain']['cpu_us_per_sample']} µs "
        f"| {r['maintain']['peak_rss_growth_mb']:,} MB ({r['maintain']['peak_bytes_per_sample']} B) "
        f"| {r['alerts']['cycle_ms_median']} / {r['alerts']['cycle_cpu_ms_median']} ms |"
        for r in runs
    )
    dm = day["maintain"]
    dq = day["query_24h"]
    first = runs[0]
    ticks = first["maintain"]["samples"] // first["series"]
    images = "\n".join(f"![{name[8:-4]}]({name})" for name in PLOTS)
    return f"""## Scaling with the number of series

`python benchmarks/run.py --only scaling` (`benchmarks/bench_scaling.py`): a synthetic collector emits the
synthetic host's series, replicated with an `instance` label, plus one canary series alone in its metric, at 10 s
through the agent's own path (`Agent.run_collector`, the WAL and the in-memory window, a flush every 10 minutes,
Parquet work in-process so that its CPU counts): {results["ticks"]} ticks timed at every size (one flush period),
each size in a fresh process. **CPU per sample**: process CPU over the ticks and the flush, divided by the samples
stored (in parentheses the synthetic collector's own share: building the samples). **Memory per series**: RSS
growth from before the first tick to just before the flush, when the in-memory window is full, divided by the
series; the window holds {results["flush_every_ticks"]} samples per series (`storage.flush_interval` /
`collect_interval`) plus each series' latest point. **Alerts**: {results["rules"]:,} threshold rules (5 % firing)
on the store's latest points, a tick stored before each cycle, median of {first["alerts"]["cycles"]} cycles after
{ticks - 1 - results["ticks"] - first["alerts"]["cycles"]}, wall / CPU. **Day's maintain**: the day then ends
({ticks} ticks of every series in two raw files) and `maintain()` compacts them and writes the 1m and 1h rollups:
CPU / wall, CPU per sample, peak RSS growth (and per sample of the day). **24 h query**: raw 10 s points of the
canary / of `cpu_usage_ratio{{cpu="total",instance="0"}}`, whose metric has 3 series per replica, median of
{results["query_runs"]}.

CPU per sample against the 15 µs goal: {ok}.

{_HEADER}
{rows}

A whole day, for comparison: {day["series"]:,} series × 8,640 ticks ({day["samples"]:,} samples) written as 24
hourly raw files: `maintain()` takes {dm["cpu_s"]} s of CPU ({dm["cpu_us_per_sample"]} µs per sample),
{dm["wall_s"]} s wall, and its RSS peaks {dm["peak_rss_growth_mb"]:,} MB higher ({dm["peak_bytes_per_sample"]} bytes
per sample of the day); the 24 h query takes {dq["canary"]["median_ms"]} ms (canary) and
{dq["siblings"]["median_ms"]} ms (`cpu_usage_ratio`, {dq["siblings"]["points"]:,} points).

{_reading(results)}

{images}
"""


def _spread(values: list[float]) -> tuple[float, float, str]:
    """Lowest, highest, and whether they are within ×1.5 of each other ("flat")."""
    low, high = min(values), max(values)
    return low, high, "flat in the number of series" if high <= 1.5 * low else "not flat"


def _reading(results: dict[str, Any]) -> str:
    """What the curves say, computed from the numbers."""
    runs, day = results["runs"], results["whole_day"]
    first, last = runs[0], runs[-1]

    def times(key: str) -> float:
        return float(last["query_24h"][key]["median_ms"]) / float(first["query_24h"][key]["median_ms"])

    cpu = _spread([r["cpu_us_per_sample"] for r in runs])
    memory = _spread([r["memory_bytes_per_series"] for r in runs])
    held = round(last["memory_bytes_per_series"] / (results["flush_every_ticks"] + 1))
    maintain = _spread([r["maintain"]["cpu_us_per_sample"] for r in runs[1:]] + [day["maintain"]["cpu_us_per_sample"]])
    linear = maintain[2].replace("flat in the number of series", "so linear in the samples")
    per_1k = ", ".join(f"{r['alerts']['cycle_cpu_ms_median'] / r['series'] * 1000:,.0f}" for r in runs)
    whole_day_gb = day["maintain"]["peak_bytes_per_sample"] * last["series"] * 8640 / 2**30
    grow = last["series"] / first["series"]
    return f"""Reading the curves ({first["series"]:,} → {last["series"]:,} series, ×{grow:g}):

- **CPU per sample**: {cpu[0]} to {cpu[1]} µs, {cpu[2]}: the cost is per sample (the WAL record, the window's
  row, the latest point) rather than per cycle.
- **Memory per series**: {memory[0]:,} to {memory[1]:,} bytes, {memory[2]} (about {held} bytes per sample held),
  bounded by the flush interval; {last["series"]:,} series hold
  {round(last["rss_window_full_mb"] - last["rss_start_mb"])} MB just before a flush.
- **The 24 h query** of the canary takes ×{times("canary"):.1f} as long, that of a series with siblings in its
  metric ×{times("siblings"):.1f}: a read skips row groups by metric name and time, not by labels, so it decodes
  every row of the metric's series (and walks every row group's statistics).
- **Compaction and rollups**: {maintain[0]} to {maintain[1]} µs of CPU per sample of the day from
  {runs[1]["maintain"]["samples"]:,} samples to a whole day of {day["samples"]:,},
  {linear} ({first["maintain"]["cpu_us_per_sample"]} µs for the smallest day, mostly fixed costs). Their peak
  memory grows with the day too (it is read, sorted and
  rolled up at once: {day["maintain"]["peak_bytes_per_sample"]} bytes per sample for a whole day), so a whole day of
  {last["series"]:,} series would need about {whole_day_gb:,.0f} GB: not measured here, and not bounded.
- **Alert evaluation** with {results["rules"]:,} rules: {per_1k} ms of CPU per 1,000 series per cycle, so it grows
  with the series, not only the rules (each cycle builds every series' latest point, and each rule scans the
  series of its metric)."""
