"""Cost of one collection cycle on this machine's real /proc: the system collector and a processes snapshot.

Each system cycle is timed alone, after a pause long enough for /proc/stat to move on (10 ms, one USER_HZ tick),
so every timed cycle also computes the CPU ratios, as a real 10 s cycle does. Prints one JSON object::

    {"system_cycle_ms": {"median": ..., "p95": ...}, "series": N, "processes_snapshot_ms": {...}, ...}
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

from crucible_monitor.collectors.processes import ProcessesCollector
from crucible_monitor.collectors.system import SystemCollector
from crucible_monitor.config import SystemCollectorConfig

__all__ = ["run"]

GOAL_MS = 1.0


def _summary(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "median": round(statistics.median(ms), 4),
        "p95": round(ms[int(len(ms) * 0.95) - 1], 4),
        "min": round(ms[0], 4),
    }


async def _bench(cycles: int, spacing: float, snapshots: int) -> dict[str, object]:
    config = SystemCollectorConfig()
    system = SystemCollector(config)
    for _ in range(20):  # warm up: first reads, label caches, the mount table
        await system.collect()
    timings: list[float] = []
    with_cpu = 0
    series = 0
    for _ in range(cycles):
        time.sleep(spacing)  # outside the timed part: lets the CPU counters move, as between real cycles
        start = time.perf_counter()
        collection = await system.collect()
        timings.append(time.perf_counter() - start)
        if any(s.metric == "cpu_usage_ratio" for s in collection.samples):
            with_cpu += 1
            series = max(series, len(collection.samples))
    processes = ProcessesCollector(config)
    await processes.collect()
    snapshot_timings: list[float] = []
    for _ in range(snapshots):
        start = time.perf_counter()
        await processes.collect()
        snapshot_timings.append(time.perf_counter() - start)
    system_ms = _summary(timings)
    return {
        "system_cycle_ms": system_ms,
        "series": series,
        "cycles": cycles,
        "cycles_with_cpu_ratios": with_cpu,
        "goal_met": system_ms["median"] <= GOAL_MS,
        "processes_snapshot_ms": _summary(snapshot_timings),
        "processes": processes.latest.total if processes.latest else 0,
        "cpus": os.cpu_count(),
    }


def run(cycles: int = 2000, spacing: float = 0.01, snapshots: int = 200) -> dict[str, object]:
    """Time ``cycles`` system collections and ``snapshots`` processes snapshots; about 25 s with the defaults."""
    return asyncio.run(_bench(cycles, spacing, snapshots))


if __name__ == "__main__":
    print(json.dumps(run()))
