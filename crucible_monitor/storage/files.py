"""The on-disk layout of the metric store, and the file work that may run in a worker process.

::

    wal/000000000042.wal                              batches not yet in Parquet
    raw/2026-11-28/000000000040-000000000041.parquet  raw rows of WAL segments 40..41 that fall on that day
    1m/2026-11-28.parquet, 1h/2026-11-28.parquet      rollups of a finished day (min, max, sum, count, last)

:func:`write_flush` and :func:`maintain` are plain functions of a directory, so the agent can run them in a
short-lived worker process: writing Parquet loads code and buffers (tens of MB) that the agent need not keep.

A raw file is named by the range of WAL segments it holds. Compaction merges a day's files into one named by the
union of their ranges. A file whose range lies inside another file's range in the same day is superseded: readers
skip it and the next maintenance deletes it. A reader that finds a file gone (compaction, retention) reads again.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from crucible_monitor.storage import aggregate
from crucible_monitor.storage.parquet import (
    ROLLUP_SCHEMA,
    SORT_KEYS,
    file_metadata,
    raw_table,
    read_table,
    round_to_decimals,
    series_decimals,
    series_starts,
    write_atomic,
    write_temp,
)
from crucible_monitor.storage.wal import Row, WriteAheadLog

__all__ = [
    "days_with_data",
    "DAY_MS",
    "TIERS",
    "Maintenance",
    "day_of",
    "day_start_ms",
    "disk_usage",
    "live_raw_files",
    "maintain",
    "rollup_source",
    "write_flush",
]

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
TIERS: dict[str, int] = {"raw": 0, "1m": 60_000, "1h": 3_600_000}
"""Tier name → bucket width in ms (0: raw samples)."""
COMPACT_AT = 6  # merge a day's raw files once it has this many
_PURGE_ORDER = ("raw", "1m", "1h")  # what the disk cap deletes first


def day_of(ts_ms: int) -> str:
    """The UTC day of a timestamp, as its directory name."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def day_start_ms(day: str) -> int:
    """Midnight UTC of a day, in ms."""
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def days_with_data(directory: Path, start_ms: int, end_ms: int) -> list[str]:
    """The UTC days from ``start_ms`` up to ``end_ms`` (exclusive) that some tier has files for, oldest first: a
    query from 1970 lists three directories instead of looking for 20,000 day directories that do not exist."""
    first, last = day_of(start_ms), day_of(max(start_ms, end_ms - 1))
    names: set[str] = set()
    for tier in TIERS:
        try:
            entries = list((directory / tier).iterdir())
        except OSError:  # no such tier yet
            continue
        names.update(p.name if tier == "raw" else p.stem for p in entries if tier == "raw" or p.suffix == ".parquet")
    return sorted(day for day in names if _DAY.fullmatch(day) and first <= day <= last)


def _range(path: Path) -> tuple[int, int] | None:
    low, _, high = path.stem.partition("-")
    return (int(low), int(high)) if low.isdigit() and high.isdigit() else None


def live_raw_files(day_dir: Path) -> tuple[list[Path], list[Path]]:
    """A day's raw files split into live ones and ones superseded by a compacted file."""
    files = [(p, r) for p in day_dir.glob("*.parquet") if (r := _range(p)) is not None]
    live: list[Path] = []
    superseded: list[Path] = []
    for path, (low, high) in files:
        covered = any(lo <= low and high <= hi and (lo, hi) != (low, high) for _, (lo, hi) in files)
        (superseded if covered else live).append(path)
    return sorted(live), superseded


def rollup_source(path: Path) -> str | None:
    """The raw file a rollup file was computed from (kept in its metadata)."""
    stat = path.stat()
    metadata = file_metadata(str(path), stat.st_mtime_ns, stat.st_size).metadata or {}
    source = metadata.get(b"source")
    return source.decode() if source else None


def disk_usage(directory: Path) -> tuple[dict[str, int], int, int]:
    """Days held per tier, bytes of Parquet, bytes of WAL."""
    days: dict[str, int] = {}
    parquet = 0
    for tier in TIERS:
        root = directory / tier
        if root.exists():
            days[tier] = sum(1 for p in root.iterdir() if not p.name.startswith("."))
            parquet += sum(p.stat().st_size for p in root.rglob("*.parquet"))
        else:
            days[tier] = 0
    wal_root = directory / "wal"
    wal = sum(p.stat().st_size for p in wal_root.glob("*.wal")) if wal_root.exists() else 0
    return days, parquet, wal


# -- flushing -------------------------------------------------------------------------------------------------


def write_flush(directory: str, segments: list[int]) -> list[tuple[str, str]]:
    """Write the rows of closed WAL ``segments`` as raw Parquet temp files, one per day; return (temp, final) paths.

    The caller publishes them (rename) when it is ready to stop serving those rows from memory.
    """
    root = Path(directory)
    wal = WriteAheadLog(root / "wal")
    by_day: dict[int, list[Row]] = {}  # whole days since the epoch → rows
    for segment in segments:
        for row in wal.read(segment):
            by_day.setdefault(row[0] // DAY_MS, []).append(row)
    name = f"{segments[0]:012d}-{segments[-1]:012d}.parquet"
    written = []
    for day, rows in by_day.items():
        final = root / "raw" / day_of(day * DAY_MS) / name
        written.append((str(write_temp(raw_table(rows), final)), str(final)))
    return written


# -- maintenance ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Maintenance:
    """What maintenance needs to know: the time, retention per tier, the disk cap, days still being written."""

    now_ms: int
    keep: dict[str, timedelta]
    max_disk: int
    busy_days: frozenset[str]


def maintain(directory: str, settings: Maintenance) -> None:
    """Compact raw days, write rollups of finished days, apply retention and the disk cap."""
    root = Path(directory)
    today = day_of(settings.now_ms)
    raw_root = root / "raw"
    days = sorted(p.name for p in raw_root.iterdir() if p.is_dir()) if raw_root.exists() else []
    for day in days:
        _compact(raw_root / day, finished=day < today)
        if day < today and day not in settings.busy_days:
            _write_rollups(root, day)
    _apply_retention(root, settings, today)


def _compact(day_dir: Path, *, finished: bool) -> None:
    live, superseded = live_raw_files(day_dir)
    for path in superseded:
        path.unlink(missing_ok=True)
    if len(live) < (2 if finished else COMPACT_AT):
        return
    ranges = [r for p in live if (r := _range(p)) is not None]
    target = day_dir / f"{min(r[0] for r in ranges):012d}-{max(r[1] for r in ranges):012d}.parquet"
    table = pa.concat_tables(read_table(p) for p in live).sort_by(SORT_KEYS)
    write_atomic(table, target)
    for path in live:
        if path != target:
            path.unlink(missing_ok=True)
    logger.debug("compacted %d raw files of %s into %s", len(live), day_dir.name, target.name)


def _write_rollups(root: Path, day: str) -> None:
    live, _ = live_raw_files(root / "raw" / day)
    if len(live) != 1:
        return
    source = live[0].name
    raw: pa.Table | None = None
    for tier in ("1m", "1h"):
        target = root / tier / f"{day}.parquet"
        if target.exists() and rollup_source(target) == source:
            continue
        raw = raw if raw is not None else read_table(live[0])
        write_atomic(rollup_table(raw, TIERS[tier]), target, {"source": source})


def rollup_table(raw: pa.Table, step_ms: int) -> pa.Table:
    """Rollup rows of a raw day table (sorted by series then time).

    Sums are rounded to the decimals of their series: the exact sum of k-decimal values has k decimals, so this
    removes float noise (and lets the sum column compress like the values).
    """
    starts = series_starts(raw)
    series = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, raw.num_rows]))
    values = raw.column("value").to_numpy()
    ts = raw.column("ts").cast(pa.int64()).to_numpy()
    first_rows, buckets, columns = aggregate.rollup(series, ts, values, step_ms)
    columns["sum"] = round_to_decimals(columns["sum"].astype(np.float64), series_decimals(values, starts)[first_rows])
    return pa.table(
        {
            "metric": raw.column("metric").take(first_rows),
            "labels": raw.column("labels").take(first_rows),
            "ts": pa.array(buckets, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            **{name: pa.array(values) for name, values in columns.items()},
        },
        schema=ROLLUP_SCHEMA,
    )


def _tier_days(root: Path, tier: str) -> list[tuple[str, Path]]:
    base = root / tier
    if not base.exists():
        return []
    return sorted((p.name if p.is_dir() else p.stem, p) for p in base.iterdir() if not p.name.startswith("."))


def _delete(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _apply_retention(root: Path, settings: Maintenance, today: str) -> None:
    for tier, keep in settings.keep.items():
        oldest = day_of(settings.now_ms - int(keep.total_seconds() * 1000))
        _delete(path for day, path in _tier_days(root, tier) if day < oldest)
    while (size := sum(disk_usage(root)[1:])) > settings.max_disk:
        victims = [p for tier in _PURGE_ORDER for day, p in _tier_days(root, tier) if day < today]
        if not victims:
            logger.warning("data uses %d bytes, over storage.max_disk, with nothing left to delete", size)
            return
        logger.warning("storage.max_disk exceeded (%d bytes): deleting %s", size, victims[0])
        _delete([victims[0]])
