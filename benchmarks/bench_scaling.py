"""Scaling with the number of series: 1,000, 10,000 and 50,000 series at 10 s through the agent's real store path.

Each size runs in its own process (so that memory numbers do not carry over). A synthetic collector emits the
``benchmarks/synthetic.py`` host's series, replicated with an ``instance`` label, plus one canary series whose
metric no other series has. The agent (every other collector off, the Parquet work in-process so that its CPU is
counted) is driven as its scheduler would drive it, on a clock moved by hand: ``Agent.run_collector`` every 10 s,
``MetricStore.flush`` every ``storage.flush_interval`` (10 min). Then, on that process:

- **CPU per sample**: process CPU time (``time.process_time``) over the collection ticks and their flushes, divided
  by the samples stored; the synthetic collector's own cost (building the ``Sample`` objects) is measured apart.
- **Memory per series**: RSS growth from before the first tick to just before the first flush, when the in-memory
  window is full (``flush_interval / collect_interval`` = 60 samples per series, plus each series' latest point),
  divided by the series.
- **Compaction and rollups of a day**: ``MetricStore.maintain()`` once the day is over (its flushed raw files merged
  into one, the 1-minute and 1-hour rollups written): CPU, wall time and peak RSS growth.
- **A 24 h one-series query** (raw 10 s points) of the canary and of ``cpu_usage_ratio{cpu="total",instance="0"}``
  (a metric with 3 series per replica), median of 20 after a warm-up.
- **Alert evaluation with 5,000 threshold rules** (5 % firing) over the store's latest points, as
  ``bench_alerts.py`` builds them: ``AlertEngine.evaluate()`` per 10 s cycle, a new tick stored before each.

A whole day at 50,000 series is 432 M samples, more than this machine can compact (see the measured memory per
sample of ``maintain``), so every size collects the same :data:`TICKS` ticks; one extra run compacts and queries a
whole day of 1,000 series written as 24 hourly raw files, for the whole-day cost per sample.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crucible_monitor.agent import Agent
from crucible_monitor.alerts.conditions import AlertInputs
from crucible_monitor.alerts.config import AlertingConfig
from crucible_monitor.alerts.engine import AlertEngine
from crucible_monitor.collectors.base import Collection, CollectorHealth
from crucible_monitor.config import Config, StorageConfig
from crucible_monitor.models import MetricSpec, Sample, labels_key
from crucible_monitor.storage.parquet import RAW_SCHEMA, SORT_KEYS, write_atomic
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

sys.path.insert(0, str(Path(__file__).parent))
from scaling_page import plot, render  # noqa: E402  (benchmarks are scripts beside each other)
from synthetic import SeriesDef, host_series  # noqa: E402

__all__ = ["render", "run"]

SIZES = (1_000, 10_000, 50_000)
STEP = 10.0
TICKS = 60
"""Collection ticks timed at every size: 10 minutes at 10 s, one flush period (the flush included)."""
FLUSH_EVERY = 60  # ticks: the default storage.flush_interval (10 min) at 10 s
START = 1_798_761_600.0  # 2027-01-01T00:00:00Z, a day boundary
DAY = 86_400.0
RULES = 5_000
FIRING = 250
ALERT_WARM = 4  # the firing rules need `for: 30s`, three cycles, to fire
ALERT_CYCLES = 6
QUERY_RUNS = 20
CANARY = "scaling_canary_value"
SIBLINGS = ("cpu_usage_ratio", {"cpu": "total", "instance": "0"})
DOCS = Path(__file__).parent.parent / "docs"


def population(series: int) -> list[SeriesDef]:
    """``series`` series: the synthetic host replicated with an ``instance`` label, and the canary."""
    base = host_series()
    replicas = -(-(series - 1) // len(base))
    defs = [SeriesDef(d.metric, {**d.labels, "instance": str(r)}, d.kind) for r in range(replicas) for d in base]
    return [*defs[: series - 1], SeriesDef(CANARY, {}, "decimal2")]


class SyntheticCollector:
    """Emits every series of ``defs`` each run, values precomputed (``ticks`` of them), stamped by the agent."""

    name = "synthetic"
    catalogue: Sequence[MetricSpec] = ()

    def __init__(self, defs: list[SeriesDef], ticks: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.ids = [(d.metric, d.labels) for d in defs]
        self.values = np.stack([d.values(rng, ticks) for d in defs], axis=1)  # ticks × series
        self.runs = 0

    async def collect(self) -> Collection:
        """The next tick's value of every series."""
        row = self.values[self.runs % len(self.values)].tolist()
        self.runs += 1
        return Collection(samples=[Sample(m, v, labels) for (m, labels), v in zip(self.ids, row, strict=True)])


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRss:
    """The highest RSS seen while the block runs (sampled every 10 ms by a thread)."""

    def __enter__(self) -> _PeakRss:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _config(directory: Path) -> Config:
    return Config.model_validate(
        {
            "agent": {"data_dir": str(directory / "data"), "collect_interval": "10s", "data_retention": "30d"},
            "storage": {"worker_process": False, "flush_interval": "10m"},
            "collectors": {
                "system": {"enabled": False},
                "services": {"systemd": {"enabled": False}, "supervisor": {"enabled": False}},
            },
            "analysis": {"enabled": False},
        }
    )


def _query_ms(store: MetricStore, metric: str, labels: dict[str, str], end: float) -> dict[str, float]:
    def once() -> int:
        result = store.query(metric, start=end - DAY, end=end, step=STEP, labels=labels)
        assert len(result) == 1, f"{metric}{labels}: {len(result)} series"
        return len(result[0].values)

    points = once()  # warm the footer cache, as in a running agent
    times = []
    for _ in range(QUERY_RUNS):
        began = time.perf_counter()
        once()
        times.append((time.perf_counter() - began) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "points": points}


def _maintain(store: MetricStore, samples: int) -> dict[str, float]:
    with _PeakRss() as rss:
        cpu, wall = time.process_time(), time.perf_counter()
        store.maintain()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "samples": samples,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "cpu_us_per_sample": round(cpu / samples * 1e6, 3),
        "peak_rss_growth_mb": round((rss.peak - rss.base) / 2**20, 1),
        "peak_bytes_per_sample": round((rss.peak - rss.base) / samples),
    }


def _rules(defs: list[SeriesDef]) -> AlertingConfig:
    rules = [
        {
            "name": f"Rule{r}",
            "kind": "threshold",
            "metric": defs[r % len(defs)].metric,
            "match": defs[r % len(defs)].labels,
            "value": -1.0 if r < FIRING else 1e18,  # every synthetic value is >= 0
            "for": "30s",
        }
        for r in range(RULES)
    ]
    return AlertingConfig.model_validate(
        {"rules": rules, "receivers": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}}}
    )


async def _one(series: int) -> dict[str, Any]:
    defs = population(series)
    collector = SyntheticCollector(defs, 1 + TICKS + ALERT_WARM + ALERT_CYCLES)
    now = [START]

    def clock() -> float:
        return now[0]

    with tempfile.TemporaryDirectory() as tmp:
        agent = Agent(_config(Path(tmp)), clock=clock)
        await agent.start(schedule=False)
        agent.collectors[collector.name] = collector
        agent.health[collector.name] = CollectorHealth(interval=STEP, key="collectors.synthetic")
        store = agent.store
        try:
            rss_start = _rss()
            await agent.run_collector(collector.name)  # tick 0: every series' first point (untimed)
            cpu, wall, window_rss = time.process_time(), time.perf_counter(), 0
            for tick in range(1, TICKS + 1):
                now[0] = START + tick * STEP
                await agent.run_collector(collector.name)
                if tick % FLUSH_EVERY == 0:
                    window_rss = window_rss or _rss()  # before the first flush: the window is full
                    store.flush()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            stored = TICKS * series
            assert agent.health[collector.name].samples_last_run == series
            rss_end = _rss()
            # the collector alone: building the samples, nothing stored
            own = time.process_time()
            for _ in range(10):
                await collector.collect()
            collector.runs -= 10
            own_us = (time.process_time() - own) / (10 * series) * 1e6

            alerts = await _alerts(agent, defs, now)  # more ticks of the same day
            store.flush()  # the day's second raw file: maintenance has files to compact
            now[0] = START + DAY + 600  # the next day, 00:10: the collected day is finished
            maintain = _maintain(store, (1 + TICKS + ALERT_WARM + ALERT_CYCLES) * series)
            queries = {
                "canary": _query_ms(store, CANARY, {}, START + DAY),
                "siblings": _query_ms(store, SIBLINGS[0], dict(SIBLINGS[1]), START + DAY),
            }
        finally:
            await agent.stop()
    return {
        "series": series,
        "ticks": TICKS,
        "samples": stored,
        "cpu_us_per_sample": round(cpu / stored * 1e6, 2),
        "collector_us_per_sample": round(own_us, 2),
        "wall_s": round(wall, 1),
        "memory_bytes_per_series": round((window_rss - rss_start) / series),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_window_full_mb": round(window_rss / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "maintain": maintain,
        "query_24h": queries,
        "alerts": alerts,
    }


async def _alerts(agent: Agent, defs: list[SeriesDef], now: list[float]) -> dict[str, Any]:
    """``ALERT_CYCLES`` evaluation cycles of 5,000 rules after a warm-up, a new tick stored before each."""
    with tempfile.TemporaryDirectory() as tmp:
        state = StateDB(Path(tmp) / "state.db", clock=agent.clock)
        engine = AlertEngine(_rules(defs), state, AlertInputs(samples=agent.store), host="bench", clock=agent.clock)
        wall: list[float] = []
        cpu: list[float] = []
        try:
            for cycle in range(ALERT_WARM + ALERT_CYCLES):
                now[0] += STEP
                await agent.run_collector("synthetic")  # a new tick (untimed)
                began_wall, began_cpu = time.perf_counter(), time.process_time()
                engine.evaluate()
                if cycle >= ALERT_WARM:
                    wall.append((time.perf_counter() - began_wall) * 1000)
                    cpu.append((time.process_time() - began_cpu) * 1000)
            firing = state.execute("SELECT count(*) FROM alerts WHERE state = 'firing'")[0][0]
        finally:
            state.close()
    return {
        "rules": RULES,
        "firing": firing,
        "cycles": ALERT_CYCLES,
        "cycle_ms_median": round(statistics.median(wall), 1),
        "cycle_cpu_ms_median": round(statistics.median(cpu), 1),
    }


def _whole_day(series: int = SIZES[0]) -> dict[str, Any]:
    """A whole day of ``series`` series written as 24 hourly raw files, compacted and rolled up, then queried."""
    defs = population(series)
    rng = np.random.default_rng(1)
    per_day = round(DAY / STEP)
    values = np.stack([d.values(rng, per_day) for d in defs])  # series × ticks
    ticks = ((START + np.arange(per_day) * STEP) * 1000).astype(np.int64)
    metrics = [d.metric for d in defs]
    keys = [labels_key(d.labels) for d in defs]
    now = START + DAY + 600
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        hour = per_day // 24
        for h in range(24):
            part = slice(h * hour, (h + 1) * hour)
            table = pa.table(
                {
                    "metric": pa.array(np.repeat(metrics, hour), pa.string()),
                    "labels": pa.array(np.repeat(keys, hour), pa.string()),
                    "ts": pa.array(np.tile(ticks[part], series)).cast(pa.timestamp("ms", tz="UTC")),
                    "value": pa.array(values[:, part].ravel(), pa.float64()),
                },
                schema=RAW_SCHEMA,
            ).sort_by(SORT_KEYS)
            write_atomic(table, root / "raw" / "2027-01-01" / f"{h + 1:012d}-{h + 1:012d}.parquet")
        del values, table
        store = MetricStore(root, StorageConfig(worker_process=False), retention=timedelta(days=30), clock=lambda: now)
        store.open()
        maintain = _maintain(store, per_day * series)
        queries = {
            "canary": _query_ms(store, CANARY, {}, START + DAY),
            "siblings": _query_ms(store, SIBLINGS[0], dict(SIBLINGS[1]), START + DAY),
        }
        store.close()
    return {"series": series, "samples": per_day * series, "maintain": maintain, "query_24h": queries}


def _child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its last line of output is the JSON result."""
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, env=os.environ.copy()
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(sizes: Sequence[int] = SIZES, *, plots: Path | None = DOCS) -> dict[str, Any]:
    """Every size in its own process, the whole-day run, then the plots (PNG files in ``plots``)."""
    runs = []
    for series in sizes:
        print(f"  {series:,} series...", flush=True)
        runs.append(_child(["--one", str(series)]))
    print("  a whole day of 1,000 series...", flush=True)
    results = {
        "ticks": TICKS,
        "flush_every_ticks": FLUSH_EVERY,
        "rules": RULES,
        "query_runs": QUERY_RUNS,
        "runs": runs,
        "whole_day": _child(["--whole-day"]),
    }
    if plots is not None:
        plot(results, plots)
    return results


def _main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(asyncio.run(_one(int(sys.argv[2])))))
    elif sys.argv[1:] == ["--whole-day"]:
        print(json.dumps(_whole_day()))
    else:
        print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    _main()
