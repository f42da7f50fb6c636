"""Days of the real agent in accelerated time: its injected clock moved by hand, shared by
``tests/storage/test_accelerated_days.py`` (a few days, in CI) and ``benchmarks/reliability.py --days 30``.

A synthetic textfile (node_exporter's convention, read by the agent's own textfile collector) is rewritten before
every 10 s collection with ``series`` gauges from a seeded walk; the agent's jobs run as its scheduler would run
them, in order on the accelerated clock: a collection every 10 s, the WAL flush every ``storage.flush_interval``,
maintenance (compaction, rollups, retention) every hour. Once an accelerated day, the process' RSS, its open
descriptors, the store's bytes on disk and the time of a 24 h one-series query are taken.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from manual_clock import Clock

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config

DAY = 86400.0
STEP = 10.0
START = 1_798_761_600.0  # 2027-01-01T00:00:00Z: a day boundary, so that day N is whole
METRIC = "synthetic_value"


def days_config(
    directory: Path, *, raw_days: int, minute_days: int, keep_days: int, max_disk: str, worker: bool = False
) -> Config:
    """Only the textfile collector, flushed every 10 minutes; retention in whole days; the Parquet work in-process
    unless ``worker`` (as the agent runs it by default: maintenance in a worker process, small flushes inline)."""
    return Config.model_validate(
        {
            "agent": {
                "data_dir": str(directory / "data"),
                "collect_interval": "10s",
                "data_retention": f"{keep_days}d",
            },
            "storage": {
                "fsync": False,
                "worker_process": worker,
                "flush_interval": "10m",
                "raw_retention": f"{raw_days}d",
                "minute_retention": f"{minute_days}d",
                "max_disk": max_disk,
            },
            "collectors": {
                "system": {"enabled": False},
                "services": {"systemd": {"enabled": False}, "supervisor": {"enabled": False}},
                "textfile": {"directory": str(directory / "textfile")},
            },
            "analysis": {"enabled": False},
        }
    )


@dataclass
class Day:
    """What one accelerated day ended with."""

    day: int
    rss_mb: float
    python_blocks: int
    arrow_mb: float
    open_fds: int
    disk_bytes: int
    query_ms: float
    raw_days: int
    rollup_days: int


@dataclass
class Run:
    days: list[Day] = field(default_factory=list)
    collections: int = 0
    flushes: int = 0
    maintenances: int = 0
    collector_errors: int = 0


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


async def run_days(
    config: Config, days: int, *, series: int = 50, seed: int = 30, progress: Callable[[int], None] | None = None
) -> Run:
    """``days`` accelerated days of the agent built from ``config``; a measurement at the end of each."""
    textfile = config.collectors.textfile.directory
    assert textfile is not None
    textfile.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    values = [rng.uniform(10, 1000) for _ in range(series)]
    clock = Clock(START)
    agent = Agent(config, clock=clock)
    await agent.start(schedule=False)
    flush_every = round(config.storage.flush_interval.total_seconds() / STEP)
    hour = round(3600 / STEP)
    per_day = round(DAY / STEP)
    metrics = config.agent.data_dir / "metrics"
    run = Run()
    try:
        for tick in range(1, days * per_day + 1):
            clock.now = START + tick * STEP
            values = [round(max(0.0, v + rng.gauss(0, 5)), 2) for v in values]
            lines = [f'{METRIC}{{n="{i}"}} {v}' for i, v in enumerate(values)]
            tmp = textfile / ".synthetic.prom.tmp"
            tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
            os.replace(tmp, textfile / "synthetic.prom")
            await agent.run_collector("textfile")
            run.collections += 1
            if tick % flush_every == 0:
                await agent._flush()  # the scheduler's flush job, on the accelerated clock
                run.flushes += 1
            if tick % hour == 0:
                await agent._maintain()  # the scheduler's hourly maintenance job
                run.maintenances += 1
            if tick % per_day == 0:
                started = time.perf_counter()
                points = agent.store.query(METRIC, start=clock.now - DAY, end=clock.now, step=60, labels={"n": "0"})
                query_ms = (time.perf_counter() - started) * 1000
                assert points and points[0].timestamps, "the 24 h query returns the day"
                run.days.append(
                    Day(
                        day=tick // per_day,
                        rss_mb=round(_rss_mb(), 1),
                        python_blocks=sys.getallocatedblocks(),
                        arrow_mb=round(pa.total_allocated_bytes() / 2**20, 1),
                        open_fds=len(os.listdir("/proc/self/fd")),
                        disk_bytes=agent.store.stats().disk_bytes,
                        query_ms=round(query_ms, 2),
                        raw_days=sum(1 for p in (metrics / "raw").iterdir() if p.is_dir()),
                        rollup_days=sum(1 for _ in (metrics / "1h").glob("*.parquet")),
                    )
                )
                if progress is not None:
                    progress(tick // per_day)
        run.collector_errors = agent.health["textfile"].errors_total
    finally:
        await agent.stop()
    return run
