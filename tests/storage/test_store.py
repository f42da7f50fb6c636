"""The metric store: exact aggregates per tier, counter rates, compaction, rollups, retention and the disk cap."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from manual_clock import Clock

from crucible_monitor.config import StorageConfig
from crucible_monitor.models import Sample
from crucible_monitor.storage.files import days_with_data
from crucible_monitor.storage.store import MetricStore

DAY = 86400.0
START = 1_764_288_000.0  # 2025-11-28T00:00:00Z, a day boundary


def _store(path: Path, clock: Clock, **settings: object) -> MetricStore:
    config = StorageConfig.model_validate({"fsync": False, **settings})
    store = MetricStore(path, config, retention=timedelta(days=30), clock=clock)
    store.open()
    return store


def _fill(store: MetricStore, start: float, seconds: float, step: float = 10.0, seed: int = 1) -> np.ndarray:
    """Write a gauge (random) and a counter (growing) every ``step`` seconds; return the gauge values."""
    rng = np.random.default_rng(seed)
    stamps = np.arange(start, start + seconds, step)
    values = rng.random(len(stamps))
    for i, (ts, value) in enumerate(zip(stamps, values, strict=True)):
        store.append(
            [
                Sample("load_gauge", float(value), {"host": "a"}, float(ts)),
                Sample("bytes_total", float(i * 1000), {"interface": "eth0"}, float(ts)),
            ]
        )
        if i % 360 == 359:  # flush every hour of data
            store.flush()
    return values


def test_raw_queries_aggregate_exactly(tmp_path: Path) -> None:
    clock = Clock(START + 3600)
    store = _store(tmp_path, clock)
    values = _fill(store, START, 3600)
    for agg, expected in [
        ("avg", values.reshape(6, 60).mean(axis=1)),
        ("min", values.reshape(6, 60).min(axis=1)),
        ("max", values.reshape(6, 60).max(axis=1)),
        ("last", values.reshape(6, 60)[:, -1]),
        ("p95", np.percentile(values.reshape(6, 60), 95, axis=1)),
        ("count", np.full(6, 60.0)),
    ]:
        [series] = store.query("load_gauge", start=START, end=START + 3600, step=600, agg=agg)
        np.testing.assert_allclose(series.values, expected, err_msg=agg)
        assert series.timestamps == [START + i * 600 for i in range(6)]
        assert series.tiers == ("raw",)


def test_counter_rates_skip_the_first_point_and_resets(tmp_path: Path) -> None:
    clock = Clock(START + 100)
    store = _store(tmp_path, clock)
    counter = [100, 200, 300, 50, 150]  # the counter restarts between the 3rd and 4th points
    store.append(Sample("c_total", v, {}, START + 10 * i) for i, v in enumerate(counter))
    [series] = store.query("c_total", start=START, end=START + 50, step=10, agg="rate")
    assert series.timestamps == [START + 10, START + 20, START + 40]  # no point at the start or the reset
    assert series.values == [10.0, 10.0, 10.0]


def test_a_finished_day_is_compacted_and_rolled_up_and_rollups_match_raw(tmp_path: Path) -> None:
    clock = Clock(START + DAY + 60)
    store = _store(tmp_path, clock)
    _fill(store, START, DAY)
    store.flush()
    day_dir = tmp_path / "raw" / "2025-11-28"
    assert len(list(day_dir.glob("*.parquet"))) == 24
    store.maintain()
    assert len(list(day_dir.glob("*.parquet"))) == 1
    assert (tmp_path / "1m" / "2025-11-28.parquet").exists() and (tmp_path / "1h" / "2025-11-28.parquet").exists()
    for agg in ("avg", "min", "max", "last", "count"):
        [from_rollup] = store.query("load_gauge", start=START, end=START + DAY, step=3600, agg=agg)
        assert from_rollup.tiers == ("1h",)
        [from_raw] = store.query("load_gauge", start=START, end=START + DAY, step=5, agg=agg)
        raw_ts = np.array(from_raw.timestamps)
        buckets = (raw_ts // 3600 * 3600).astype(int)
        raw_values = np.array(from_raw.values)
        expected = {
            "avg": [raw_values[buckets == b].mean() for b in np.unique(buckets)],
            "min": [raw_values[buckets == b].min() for b in np.unique(buckets)],
            "max": [raw_values[buckets == b].max() for b in np.unique(buckets)],
            "last": [raw_values[buckets == b][-1] for b in np.unique(buckets)],
            "count": [360.0] * 24,
        }[agg]
        np.testing.assert_allclose(from_rollup.values, expected, err_msg=agg)
    [rate] = store.query("bytes_total", start=START, end=START + DAY, step=3600, agg="rate")
    np.testing.assert_allclose(rate.values, 100.0)  # 1000 per 10 s


def test_queries_read_the_coarsest_tier_that_serves_the_step(tmp_path: Path) -> None:
    clock = Clock(START + DAY + 60)
    store = _store(tmp_path, clock)
    _fill(store, START, DAY + 60)
    store.flush()
    store.maintain()
    assert store.query("load_gauge", start=START, end=START + DAY, step=3600)[0].tiers == ("1h",)
    assert store.query("load_gauge", start=START, end=START + DAY, step=300)[0].tiers == ("1m",)
    assert store.query("load_gauge", start=START, end=START + 3600, step=10)[0].tiers == ("raw",)
    # the current day has no rollups yet: it is served from raw, the finished day from 1h
    assert store.query("load_gauge", start=START, end=START + DAY + 60, step=3600)[0].tiers == ("1h", "raw")


def test_label_filters_select_series(tmp_path: Path) -> None:
    store = _store(tmp_path, Clock(START + 100))
    store.append(
        [
            Sample("fs_used_ratio", 0.5, {"mountpoint": "/"}, START),
            Sample("fs_used_ratio", 0.9, {"mountpoint": "/var"}, START),
        ]
    )
    [series] = store.query("fs_used_ratio", start=START, end=START + 10, step=10, labels={"mountpoint": "/var"})
    assert series.labels == {"mountpoint": "/var"} and series.values == [0.9]
    assert store.query("fs_used_ratio", start=START, end=START + 10, step=10, labels={"mountpoint": "/x"}) == []


def test_late_rows_for_a_rolled_up_day_are_not_hidden_by_the_stale_rollup(tmp_path: Path) -> None:
    clock = Clock(START + DAY + 60)
    store = _store(tmp_path, clock)
    _fill(store, START, DAY)
    store.flush()
    store.maintain()
    store.append([Sample("late_gauge", 7.0, {}, START + 100)])
    store.append([Sample("load_gauge", 1000.0, {"host": "a"}, START + 5)])  # a late sample for the finished day
    store.flush()
    [series] = store.query("load_gauge", start=START, end=START + DAY, step=3600, agg="max")
    assert series.values[0] == 1000.0
    store.maintain()  # recomputes the rollups from the recompacted day
    [series] = store.query("load_gauge", start=START, end=START + DAY, step=3600, agg="max")
    assert series.values[0] == 1000.0 and series.tiers == ("1h",)


def test_retention_deletes_old_days_per_tier(tmp_path: Path) -> None:
    clock = Clock(START + 3 * DAY + 60)
    store = _store(tmp_path, clock, raw_retention="1d", minute_retention="2d")
    for day in range(3):
        _fill(store, START + day * DAY, 3600, step=60)
    store.flush()
    store.maintain()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["2025-11-30"]
    assert sorted(p.stem for p in (tmp_path / "1m").iterdir()) == ["2025-11-29", "2025-11-30"]
    assert len(list((tmp_path / "1h").iterdir())) == 3
    # a 3-day query still answers from whatever tier holds each day
    [series] = store.query("load_gauge", start=START, end=START + 3 * DAY, step=60)
    assert set(series.tiers) == {"1h", "1m"}


def test_the_disk_cap_deletes_oldest_raw_days_first(tmp_path: Path) -> None:
    clock = Clock(START + 3 * DAY + 60)
    store = _store(tmp_path, clock)
    for day in range(3):
        _fill(store, START + day * DAY, 6 * 3600, step=10, seed=day)
    store.flush()
    store.maintain()
    size = store.stats().disk_bytes
    store.config = StorageConfig(fsync=False, max_disk=int(size * 0.8))
    store.maintain()
    assert store.stats().disk_bytes <= size * 0.8
    assert not (tmp_path / "raw" / "2025-11-28").exists()
    assert (tmp_path / "1h" / "2025-11-28.parquet").exists()


def test_parquet_files_use_the_tuned_layout(tmp_path: Path) -> None:
    store = _store(tmp_path, Clock(START + 100))
    _fill(store, START, 3600)
    store.flush()
    [path] = (tmp_path / "raw").rglob("*.parquet")
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in encodings["ts"]
    assert "DELTA_BINARY_PACKED" in encodings["value_m"]  # decimal mantissas, delta-encoded
    assert "BYTE_STREAM_SPLIT" in encodings["value_f"]  # the values that are not short decimals
    assert meta.column(0).compression == "ZSTD"
    table = pq.read_table(path)
    assert table.column("metric").to_pylist() == sorted(table.column("metric").to_pylist())


def test_values_round_trip_exactly_whether_decimal_or_not(tmp_path: Path) -> None:
    store = _store(tmp_path, Clock(START + 100))
    values = [0.1, 1 / 3, 1e300, -2.5, 2.0**60, 1e-12, 123456789.123, 0.0368, 7.0, -1e-9, 3.14159265358979]
    store.append(Sample("mixed", v, {}, START + i) for i, v in enumerate(values))
    store.flush()
    [series] = store.query("mixed", start=START, end=START + 100, step=0.001, agg="last")
    assert series.values == values


def test_non_finite_values_are_dropped_not_stored(tmp_path: Path) -> None:
    store = _store(tmp_path, Clock(START + 100))
    assert store.append([Sample("g", float("nan"), {}, START), Sample("g", 1.0, {}, START + 1)]) == 1


@pytest.mark.parametrize("crash_point", ["before_checkpoint", "after_checkpoint"])
def test_reopening_after_a_flush_was_interrupted_keeps_rows_once(tmp_path: Path, crash_point: str) -> None:
    clock = Clock(START + 100)
    store = _store(tmp_path, clock)
    store.append([Sample("g", 1.0, {}, START)])
    if crash_point == "before_checkpoint":
        store.wal.checkpoint = lambda flushed: None  # type: ignore[method-assign]
    store.flush()
    store.wal.close()  # the process dies here
    reopened = _store(tmp_path, clock)
    [series] = reopened.query("g", start=START, end=START + 10, step=10, agg="count")
    assert series.values == [1.0]


def test_the_days_a_query_reads_are_the_days_some_tier_holds(tmp_path: Path) -> None:
    for path in ("raw/2025-11-29/0-1.parquet", "raw/2025-11-30/0-1.parquet", "1m/2025-11-28.parquet"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"")
    (tmp_path / "1h").mkdir()
    (tmp_path / "1h" / "2025-10-01.parquet").write_bytes(b"")
    (tmp_path / "1h" / "notes.txt").write_bytes(b"")
    end = 1_764_547_200_000  # 2025-12-01T00:00:00Z, exclusive
    assert days_with_data(tmp_path, 0, end) == ["2025-10-01", "2025-11-28", "2025-11-29", "2025-11-30"]
    assert days_with_data(tmp_path, end - 86_400_000, end) == ["2025-11-30"]
    assert days_with_data(tmp_path / "nothing", 0, end) == []


def test_a_query_from_1970_answers_from_the_days_on_disk(tmp_path: Path) -> None:
    clock = Clock(1_764_460_800.0)  # 2025-11-30T00:00:00Z
    store = MetricStore(tmp_path, StorageConfig(fsync=False), retention=timedelta(days=30), clock=clock)
    store.open()
    try:
        for ts in (clock.now - 86_400 + 5, clock.now + 5):  # one sample on each of two days, both flushed
            store.append([Sample("load_1m", 1.0, {}, ts)])
            store.flush()
        store.append([Sample("load_1m", 2.0, {}, clock.now + 6)])  # and one in memory
        [series] = store.query("load_1m", start=0, end=clock.now + 60, step=0.001, agg="last")
        assert series.timestamps == [clock.now - 86_400 + 5, clock.now + 5, clock.now + 6]
    finally:
        store.close()
