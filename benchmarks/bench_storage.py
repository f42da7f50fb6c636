"""Storage: bytes per sample of a compacted day, and history query latency over 24 hours and 30 days.

Builds 30 days of the synthetic ~200-series host (see synthetic.py) at 10 s through the real store: raw day files,
then maintenance (compaction, 1-minute and 1-hour rollups, retention of raw to 7 days), as the agent would.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from crucible_monitor.config import StorageConfig
from crucible_monitor.storage.parquet import RAW_SCHEMA, SORT_KEYS, read_table, write_atomic
from crucible_monitor.storage.store import MetricStore

try:
    from synthetic import day_arrays, host_series
except ImportError:  # run as benchmarks.bench_storage
    from benchmarks.synthetic import day_arrays, host_series

__all__ = ["run"]

DAYS = 30
START = 1_764_288_000.0  # a UTC midnight
QUERY_RUNS = 50


def _day_table(day: int) -> pa.Table:
    parts = list(day_arrays(START + day * 86400, seed=day))
    lengths = [len(p[2]) for p in parts]
    return pa.table(
        {
            "metric": pa.array(np.repeat([p[0] for p in parts], lengths), pa.string()),
            "labels": pa.array(np.repeat([p[1] for p in parts], lengths), pa.string()),
            "ts": pa.array(np.concatenate([p[2] for p in parts])).cast(pa.timestamp("ms", tz="UTC")),
            "value": pa.array(np.concatenate([p[3] for p in parts]), pa.float64()),
        },
        schema=RAW_SCHEMA,
    ).sort_by(SORT_KEYS)


def _timings(action: object, runs: int = QUERY_RUNS) -> dict[str, float]:
    assert callable(action)
    action()  # warm the footer cache, as a running agent would be
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2), "p95_ms": round(samples[int(runs * 0.95) - 1], 2)}


def run() -> dict[str, object]:
    """Build the data set in a temporary directory and measure it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        series = len(host_series())
        for day in range(DAYS):
            write_atomic(
                _day_table(day),
                root
                / "raw"
                / time.strftime("%Y-%m-%d", time.gmtime(START + day * 86400))
                / "000000000001-000000000001.parquet",
            )
        now = START + DAYS * 86400 + 600
        store = MetricStore(root, StorageConfig(fsync=False), retention=timedelta(days=DAYS + 1), clock=lambda: now)
        store.open()
        started = time.perf_counter()
        store.maintain()
        maintain_s = time.perf_counter() - started

        last_day = sorted((root / "raw").iterdir())[-1]
        [raw_file] = last_day.glob("*.parquet")
        samples = read_table(raw_file).num_rows
        raw_bytes = raw_file.stat().st_size
        minute_bytes = (root / "1m" / f"{last_day.name}.parquet").stat().st_size
        hour_bytes = (root / "1h" / f"{last_day.name}.parquet").stat().st_size

        day_end = START + DAYS * 86400
        metric, labels = "cpu_usage_ratio", {"cpu": "total"}
        queries = {
            "24h_step_10s_raw": _timings(
                lambda: store.query(metric, start=day_end - 86400, end=day_end, step=10, labels=labels)
            ),
            "24h_step_5m_1m_tier": _timings(
                lambda: store.query(metric, start=day_end - 86400, end=day_end, step=300, labels=labels)
            ),
            "30d_step_3h_1h_tier": _timings(
                lambda: store.query(metric, start=START, end=day_end, step=3 * 3600, labels=labels)
            ),
            "30d_step_1h_1h_tier": _timings(
                lambda: store.query(metric, start=START, end=day_end, step=3600, labels=labels)
            ),
        }
        points = len(store.query(metric, start=day_end - 86400, end=day_end, step=10, labels=labels)[0].values)
        store.close()
    return {
        "series": series,
        "samples_per_day": samples,
        "raw_bytes_per_sample": round(raw_bytes / samples, 3),
        "raw_1m_1h_bytes_per_raw_sample": round((raw_bytes + minute_bytes + hour_bytes) / samples, 3),
        "day_file_bytes": {"raw": raw_bytes, "1m": minute_bytes, "1h": hour_bytes},
        "maintenance_seconds_for_30_days": round(maintain_s, 1),
        "query_24h_raw_points": points,
        "queries": queries,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
