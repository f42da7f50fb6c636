"""A writer SIGKILLed mid-flight, many times: every Parquet file opens, every acknowledged sample is there once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq

from crucible_monitor.config import StorageConfig
from crucible_monitor.storage.store import MetricStore

WRITER = Path(__file__).with_name("crash_writer.py")
KILLS = 30


def _run_until_killed(directory: Path, first_batch: int, acks_wanted: int) -> list[int]:
    """Start the writer, read ``acks_wanted`` acknowledgements, SIGKILL it; return the batches acknowledged."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), str(first_batch)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acked = []
    for line in process.stdout:
        acked.append(int(line.split()[1]))
        if len(acked) >= acks_wanted:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    return acked


def test_every_acknowledged_sample_survives_repeated_sigkill_exactly_once(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    acked: set[int] = set()
    for run in range(KILLS):
        acked.update(_run_until_killed(tmp_path, first_batch=run * 100_000 + 1, acks_wanted=rng.randint(1, 40)))

    for path in tmp_path.rglob("*.parquet"):
        pq.read_table(path)  # every file that exists is complete and readable

    store = MetricStore(
        tmp_path,
        StorageConfig(fsync=False, raw_retention=timedelta(days=3650), minute_retention=timedelta(days=3650)),
        retention=timedelta(days=3650),
    )
    store.open()
    try:
        series = store.query("crash_value", start=0, end=4_000_000_000, step=0.001, agg="count")
        points: dict[tuple[str, float], float] = {}
        for s in series:
            for ts, count in zip(s.timestamps, s.values, strict=True):
                points[(s.labels["series"], ts)] = count
        twice = sorted(key for key, count in points.items() if count != 1)
        assert not twice, f"stored twice: {twice[:5]} of {len(points)}"
        values = store.query("crash_value", start=0, end=4_000_000_000, step=0.001, agg="last")
        stored_batches = {int(v) for s in values for v in s.values}
    finally:
        store.close()
    assert len(series) == 20
    assert acked <= stored_batches, f"lost acknowledged batches: {sorted(acked - stored_batches)[:10]}"
    assert len(acked) >= KILLS
