"""Days of the agent in accelerated time (its injected clock, a synthetic textfile collector at 10 s): compaction,
rollups and retention run as scheduled, the disk stays under the cap, open descriptors stay flat. 30 days, with
RSS and query time, are ``python benchmarks/reliability.py --days 30`` (``docs/reliability.md``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from accelerated_days import days_config, run_days

from crucible_monitor.storage.files import live_raw_files

pytestmark = pytest.mark.anyio


async def test_three_accelerated_days_compact_roll_up_and_expire_on_schedule(tmp_path: Path) -> None:
    config = days_config(tmp_path, raw_days=1, minute_days=1, keep_days=2, max_disk="64MB")
    run = await run_days(config, 3, series=10)
    metrics = config.agent.data_dir / "metrics"
    assert run.collector_errors == 0
    assert (run.collections, run.maintenances) == (3 * 8640, 3 * 24)
    raw_days = sorted(p for p in (metrics / "raw").iterdir() if p.is_dir())
    # the run ends at 2027-01-04T00:00: raw keeps that day and the one before (1 d); the rollups of finished days
    # are kept 1 d (1 m) and the 2 d of data_retention (1 h); 2027-01-01 is gone from every tier
    assert [p.name for p in raw_days] == ["2027-01-03", "2027-01-04"]
    assert sorted(p.stem for p in (metrics / "1m").glob("*.parquet")) == ["2027-01-03"]
    assert sorted(p.stem for p in (metrics / "1h").glob("*.parquet")) == ["2027-01-02", "2027-01-03"]
    # compaction: the finished raw day is one file
    assert len(live_raw_files(raw_days[0])[0]) == 1
    assert all(day.disk_bytes < 64 * 10**6 for day in run.days)
    assert len({day.open_fds for day in run.days[1:]}) == 1, [day.open_fds for day in run.days]
