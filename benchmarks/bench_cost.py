"""What one sample costs: CPU of the agent's whole process tree per sample collected and stored, at a 1 s and the
default 10 s interval with the default collectors, its memory (RSS and PSS of the tree), and where the CPU goes
(``py-spy``, a sampling profiler, attached to the running agent; ``--gil``: only the thread running Python, so
waiting on the disk or a socket does not count).

    python benchmarks/run.py --only cost
    python benchmarks/bench_cost.py 1 60 --profile /tmp/agent.txt   # interval, seconds; collapsed stacks

Samples are counted exactly: after a clean stop, the raw Parquet rows stamped inside the measured window.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from daemons import cpu_seconds, free_port, memory_mb, started

_WARM_UP = 20.0

__all__ = ["run"]


def _rows_between(data: Path, start: float, end: float) -> int:
    rows = 0
    for path in (data / "metrics" / "raw").rglob("*.parquet"):
        ts = pq.read_table(path, columns=["ts"]).column("ts").cast("int64").to_numpy()
        rows += int(((ts >= start * 1000) & (ts < end * 1000)).sum())
    return rows


def measure(interval: float, seconds: float, profile: Path | None = None) -> dict[str, Any]:
    """An agent collecting every ``interval`` s, measured for ``seconds`` after a warm-up."""
    with tempfile.TemporaryDirectory(prefix="crucible-cost-") as tmp:
        directory = Path(tmp)
        port = free_port()
        config = directory / "monitor.yaml"
        config.write_text(
            f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {directory / 'data'}\n"
            f"  collect_interval: {interval:g}s\n",
            encoding="utf-8",
        )
        serve = [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)]
        with started(serve, f"http://127.0.0.1:{port}/api/v1/health") as process:  # stopped by SIGTERM: flushed
            time.sleep(_WARM_UP)  # the first collections, lazily imported modules, a first flush
            spy = None
            beside = Path(sys.executable).with_name("py-spy")  # the venv's, when it is not on PATH
            py_spy = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
            if profile is not None and py_spy:
                spy = subprocess.Popen(
                    [py_spy, "record", "--pid", str(process.pid), "-d", str(int(seconds)), "-r", "100"]
                    + ["--nonblocking", "--gil", "-f", "raw", "-o", str(profile)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            start, cpu_before = time.time(), cpu_seconds(process.pid)
            peak_rss = peak_pss = 0.0
            while time.time() < start + seconds:
                memory = memory_mb(process.pid)
                peak_rss, peak_pss = max(peak_rss, memory["rss_mb"]), max(peak_pss, memory["pss_mb"])
                time.sleep(1)  # the measured window
            end, cpu = time.time(), cpu_seconds(process.pid) - cpu_before
            if spy is not None:
                spy.wait(timeout=seconds + 30)
        samples = _rows_between(directory / "data", start, end)
    wall = end - start
    return {
        "interval_s": interval,
        "seconds": round(wall, 1),
        "samples": samples,
        "samples_per_s": round(samples / wall, 1),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 3),
        "cpu_us_per_sample": round(cpu / samples * 1e6, 1) if samples else None,
        "rss_peak_mb": round(peak_rss, 1),
        "pss_peak_mb": round(peak_pss, 1),
    }


def hot_spots(profile: Path, top: int = 12) -> list[tuple[str, float]]:
    """The functions of ours that the profile saw most (share of the agent's busy samples, inclusive)."""
    counts: Counter[str] = Counter()
    total = 0
    for line in profile.read_text(encoding="utf-8").splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [f for f in stack.split(";") if ("crucible_monitor" in f or "apscheduler" in f) and "/cli.py" not in f]
        total += int(n)
        for name in {f.split(" (")[0] + " (" + f.rsplit("/", 1)[-1].split(":")[0] + ")" for f in frames}:
            counts[name] += int(n)
    return [(name, round(100 * n / total, 1)) for name, n in counts.most_common(top)] if total else []


def run(seconds: float = 120.0) -> dict[str, Any]:
    """Both intervals; the profile of the 1 s run."""
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "profile.txt"
        fast = measure(1.0, seconds, profile)
        spots = hot_spots(profile) if profile.exists() else []
    return {"interval_1s": fast, "interval_10s": measure(10.0, seconds), "hot_spots_1s": spots}


def render(results: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md."""
    fast, slow = results["interval_1s"], results["interval_10s"]

    def row(r: dict[str, Any], goal_us: str, goal_cpu: str) -> str:
        return (
            f"| {r['interval_s']:g} s | {r['samples_per_s']} | {r['cpu_us_per_sample']} µs ({goal_us}) "
            f"| {r['cpu_percent_of_one_core']} % ({goal_cpu}) | {r['rss_peak_mb']} / {r['pss_peak_mb']} MB |"
        )

    spots = "\n".join(f"| `{name}` | {share} % |" for name, share in results["hot_spots_1s"])
    return f"""## What a sample costs

`benchmarks/bench_cost.py` (`python benchmarks/run.py --only cost`): `crucible-monitor serve` with the default
collectors, {fast["seconds"]:g} s measured after a {_WARM_UP:g} s warm-up; CPU of its whole process tree (the
Parquet workers included) divided by the raw rows stamped inside the window; RSS and PSS of the tree at their peak.

| Interval | Samples/s | CPU per sample (goal) | CPU (goal) | RSS / PSS peak |
|---|---|---|---|---|
{row(fast, "≤ 15 µs", "")}
{row(slow, "", "≤ 0.1 %")}

Where the CPU of the 1 s run goes (`py-spy record --gil`, the share of the samples in which each function of ours
was on the stack):

| Function | Share |
|---|---|
{spots}
"""


if __name__ == "__main__":
    interval = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    window = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
    target = Path(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--profile" else None
    result = measure(interval, window, target)
    if target is not None and target.exists():
        result["hot_spots"] = hot_spots(target, 25)
    print(json.dumps(result, indent=2))
