"""The metric store: WAL → immutable Parquet tiers (raw, 1-minute, 1-hour), retention, and queries.

Layout under the store's directory::

    wal/000000000042.wal                       batches not yet in Parquet
    raw/2026-11-28/000000000040-000000000041.parquet   raw rows of WAL segments 40..41 that fall on that day
    1m/2026-11-28.parquet, 1h/2026-11-28.parquet       rollups of a finished day (min, max, sum, count, last)

Exactly once: a raw file is named by the range of WAL segments it holds. Flushing writes every file of the closed
segments (temp file, fsync, rename) before the WAL checkpoints and deletes them, so a crash in between only means
those segments (and any closed since) are flushed again, into files whose range contains the earlier ones.
Compaction merges a day's files into one named by the union of their ranges. A file whose range lies inside
another file's range in the same day is superseded: readers skip it and the next maintenance deletes it.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crucible_monitor.config import StorageConfig
from crucible_monitor.errors import StorageError
from crucible_monitor.models import Sample, labels_key, parse_labels_key
from crucible_monitor.storage import aggregate
from crucible_monitor.storage.aggregate import Aggregation
from crucible_monitor.storage.parquet import (
    ROLLUP_SCHEMA,
    SORT_KEYS,
    file_metadata,
    raw_table,
    read_metric,
    read_table,
    round_to_decimals,
    series_decimals,
    series_starts,
    write_atomic,
)
from crucible_monitor.storage.wal import Row, WriteAheadLog

__all__ = ["TIERS", "LatestPoint", "MetricStore", "SeriesData", "StoreStats"]

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
TIERS: dict[str, int] = {"raw": 0, "1m": 60_000, "1h": 3_600_000}
"""Tier name → bucket width in ms (0: raw samples)."""
_COMPACT_AT = 6  # merge a day's raw files once it has this many
_PURGE_ORDER = ("raw", "1m", "1h")  # what the disk cap deletes first


@dataclass(frozen=True, slots=True)
class SeriesData:
    """One series of a query result; ``timestamps`` are Unix seconds of bucket starts."""

    metric: str
    labels: dict[str, str]
    timestamps: list[float]
    values: list[float]
    tiers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LatestPoint:
    """The newest value of a series, and the one before it (for counter rates)."""

    metric: str
    labels: dict[str, str]
    ts: float
    value: float
    previous_ts: float | None
    previous_value: float | None

    def rate(self) -> float | None:
        """Per-second increase since the previous point; None for the first point or a reset."""
        if self.previous_ts is None or self.previous_value is None or self.ts <= self.previous_ts:
            return None
        if self.value < self.previous_value:
            return None
        return (self.value - self.previous_value) / (self.ts - self.previous_ts)


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Sizes for health output and the disk cap."""

    disk_bytes: int
    wal_bytes: int
    pending_rows: int
    days: dict[str, int]


def _day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def _day_start_ms(day: str) -> int:
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() * 1000)


def _range(path: Path) -> tuple[int, int] | None:
    low, _, high = path.stem.partition("-")
    return (int(low), int(high)) if low.isdigit() and high.isdigit() else None


def _live_raw_files(day_dir: Path) -> tuple[list[Path], list[Path]]:
    """A day's raw files split into live ones and ones superseded by a compacted file."""
    files = [(p, r) for p in day_dir.glob("*.parquet") if (r := _range(p)) is not None]
    live: list[Path] = []
    superseded: list[Path] = []
    for path, (low, high) in files:
        covered = any(lo <= low and high <= hi and (lo, hi) != (low, high) for _, (lo, hi) in files)
        (superseded if covered else live).append(path)
    return sorted(live), superseded


class MetricStore:
    """Crash-safe storage of samples with downsampled tiers. Thread-safe."""

    def __init__(
        self,
        directory: Path,
        config: StorageConfig,
        *,
        retention: timedelta,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.config = config
        self.retention = retention
        self.clock = clock
        self.wal = WriteAheadLog(directory / "wal", fsync=config.fsync)
        self._lock = threading.RLock()
        self._pending: dict[int, list[Row]] = {}  # WAL segment → rows not yet in Parquet
        self._flushing: list[Row] = []  # rows being written, still served from memory
        self._latest: dict[tuple[str, str], tuple[int, float, int | None, float | None]] = {}
        self._opened = False

    # -- lifecycle ------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Recover: drop temp files, replay the WAL into memory and flush what earlier runs left behind.

        Raises:
            StorageError: the directory cannot be used.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for tmp in self.directory.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot use data directory {self.directory}: {exc.strerror}") from exc
        self.wal.open()
        for segment in self.wal.segments():
            rows = list(self.wal.read(segment))
            self._pending[segment] = rows
            for row in rows:
                self._remember(row)
        self._opened = True
        if len(self._pending) > 1:
            self.flush()

    def close(self) -> None:
        """Flush to Parquet and close the WAL."""
        if self._opened:
            self.flush()
            self.wal.close()
            self._opened = False

    # -- writing --------------------------------------------------------------------------------------------

    def append(self, samples: Iterable[Sample]) -> int:
        """Store a batch. Once this returns, every sample in it survives a crash. Returns the rows stored.

        Samples with a non-finite value are dropped (NaN cannot be stored faithfully or queried sensibly).

        Raises:
            StorageError: the WAL could not be written; nothing of the batch is stored.
        """
        rows: list[Row] = [
            (round(s.ts * 1000), s.metric, labels_key(s.labels), float(s.value))
            for s in samples
            if math.isfinite(s.value)
        ]
        if not rows:
            return 0
        with self._lock:
            self.wal.append(rows)
            self._pending.setdefault(self.wal.active_segment, []).extend(rows)
            for row in rows:
                self._remember(row)
        return len(rows)

    def _remember(self, row: Row) -> None:
        ts, metric, labels, value = row
        key = (metric, labels)
        current = self._latest.get(key)
        if current is None:
            self._latest[key] = (ts, value, None, None)
        elif ts >= current[0]:
            self._latest[key] = (ts, value, current[0], current[1])

    def flush(self) -> int:
        """Turn closed WAL segments into raw Parquet files; returns the number of rows written.

        Raises:
            StorageError: a file could not be written; the WAL keeps the rows and the next flush retries.
        """
        with self._lock:
            closed = self.wal.rotate()
            rows = [row for segment in closed for row in self._pending.pop(segment, [])]
            self._flushing = rows
        try:
            if rows:
                name = f"{closed[0]:012d}-{closed[-1]:012d}.parquet"
                by_day: dict[str, list[Row]] = {}
                for row in rows:
                    by_day.setdefault(_day(row[0]), []).append(row)
                for day, day_rows in by_day.items():
                    write_atomic(raw_table(day_rows), self.directory / "raw" / day / name)
        except OSError as exc:
            with self._lock:
                for segment in closed:  # keep serving them; they are still in the WAL
                    self._pending.setdefault(segment, [])
                self._pending[closed[0]] = rows + self._pending[closed[0]]
                self._flushing = []
            raise StorageError(f"cannot write Parquet in {self.directory}: {exc.strerror}") from exc
        with self._lock:
            self._flushing = []
            self.wal.checkpoint(closed)
        return len(rows)

    # -- maintenance ----------------------------------------------------------------------------------------

    def maintain(self) -> None:
        """Compact raw days, write rollups of finished days, apply retention and the disk cap."""
        today = _day(round(self.clock() * 1000))
        raw_root = self.directory / "raw"
        days = sorted(p.name for p in raw_root.iterdir() if p.is_dir()) if raw_root.exists() else []
        for day in days:
            self._compact(day, finished=day < today)
            if day < today:
                self._write_rollups(day)
        self._apply_retention()

    def _compact(self, day: str, *, finished: bool) -> None:
        day_dir = self.directory / "raw" / day
        live, superseded = _live_raw_files(day_dir)
        with self._lock:
            for path in superseded:
                path.unlink(missing_ok=True)
        if len(live) < (2 if finished else _COMPACT_AT):
            return
        ranges = [r for p in live if (r := _range(p)) is not None]
        target = day_dir / f"{min(r[0] for r in ranges):012d}-{max(r[1] for r in ranges):012d}.parquet"
        table = pa.concat_tables(read_table(p) for p in live).sort_by(SORT_KEYS)
        write_atomic(table, target)
        with self._lock:
            for path in live:
                if path != target:
                    path.unlink(missing_ok=True)
        logger.debug("compacted %d raw files of %s into %s", len(live), day, target.name)

    def _write_rollups(self, day: str) -> None:
        live, _ = _live_raw_files(self.directory / "raw" / day)
        if len(live) != 1 or any(_day(row[0]) == day for rows in self._pending.values() for row in rows):
            return
        source = live[0].name
        for tier in ("1m", "1h"):
            target = self.directory / tier / f"{day}.parquet"
            if target.exists() and _rollup_source(target) == source:
                continue
            raw = read_table(live[0])
            write_atomic(_rollup_table(raw, TIERS[tier]), target, {"source": source})

    def _apply_retention(self) -> None:
        now_ms = round(self.clock() * 1000)
        limits = {
            "raw": min(self.config.raw_retention, self.retention),
            "1m": min(self.config.minute_retention, self.retention),
            "1h": self.retention,
        }
        for tier, keep in limits.items():
            oldest_day = _day(now_ms - int(keep.total_seconds() * 1000))
            for day, path in self._tier_days(tier):
                if day < oldest_day:
                    self._delete(path)
        while (size := self.stats().disk_bytes) > self.config.max_disk:
            victim = self._oldest_purgeable()
            if victim is None:
                logger.warning("data uses %d bytes, over storage.max_disk, with nothing left to delete", size)
                break
            logger.warning("storage.max_disk exceeded (%d bytes): deleting %s", size, victim)
            self._delete(victim)

    def _tier_days(self, tier: str) -> list[tuple[str, Path]]:
        root = self.directory / tier
        if not root.exists():
            return []
        entries = [(p.name if p.is_dir() else p.stem, p) for p in root.iterdir() if not p.name.startswith(".")]
        return sorted(entries)

    def _oldest_purgeable(self) -> Path | None:
        today = _day(round(self.clock() * 1000))
        for tier in _PURGE_ORDER:
            days = [(d, p) for d, p in self._tier_days(tier) if d < today]
            if days:
                return days[0][1]
        return None

    def _delete(self, path: Path) -> None:
        with self._lock:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def stats(self) -> StoreStats:
        """Bytes on disk per tier and in the WAL, and rows waiting to be flushed."""
        days: dict[str, int] = {}
        total = 0
        for tier in TIERS:
            root = self.directory / tier
            size = sum(p.stat().st_size for p in root.rglob("*.parquet")) if root.exists() else 0
            days[tier] = len(self._tier_days(tier))
            total += size
        wal_root = self.directory / "wal"
        wal = sum(p.stat().st_size for p in wal_root.glob("*.wal")) if wal_root.exists() else 0
        with self._lock:
            pending = sum(len(r) for r in self._pending.values())
        return StoreStats(disk_bytes=total + wal, wal_bytes=wal, pending_rows=pending, days=days)

    # -- reading --------------------------------------------------------------------------------------------

    def latest(self, metric: str | None = None, labels: Mapping[str, str] | None = None) -> list[LatestPoint]:
        """The newest point of every matching series (from memory)."""
        with self._lock:
            items = list(self._latest.items())
        points = []
        for (name, key), (ts, value, prev_ts, prev_value) in items:
            if metric is not None and name != metric:
                continue
            parsed = parse_labels_key(key)
            if labels and any(parsed.get(k) != v for k, v in labels.items()):
                continue
            points.append(
                LatestPoint(
                    metric=name,
                    labels=parsed,
                    ts=ts / 1000,
                    value=value,
                    previous_ts=None if prev_ts is None else prev_ts / 1000,
                    previous_value=prev_value,
                )
            )
        return points

    def metrics(self) -> set[str]:
        """Names of the metrics seen since start (in memory)."""
        with self._lock:
            return {metric for metric, _ in self._latest}

    def query(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float,
        agg: Aggregation = "avg",
        labels: Mapping[str, str] | None = None,
    ) -> list[SeriesData]:
        """Points of ``metric`` between ``start`` and ``end`` (Unix seconds) in buckets of ``step`` seconds.

        Each day is read from the coarsest tier whose resolution is at most ``step`` and that still holds that day
        (finer tiers, then coarser ones, when it does not); data not yet in Parquet comes from memory.
        """
        start_ms, end_ms, step_ms = int(start * 1000), int(end * 1000), max(1, int(step * 1000))
        for attempt in range(3):
            try:
                raw_parts, rollup_parts, tiers = self._read(metric, start_ms, end_ms, step_ms, agg)
                break
            except FileNotFoundError:  # compaction or retention replaced a file between listing and reading
                if attempt == 2:
                    raise
        return _assemble(metric, raw_parts, rollup_parts, tiers, step_ms, agg, labels)

    def _read(
        self, metric: str, start_ms: int, end_ms: int, step_ms: int, agg: Aggregation
    ) -> tuple[list[pa.Table], list[pa.Table], set[str]]:
        preferred = [t for t, width in TIERS.items() if width <= step_ms][::-1]  # coarsest first
        fallback = [t for t in TIERS if t not in preferred]
        raw_parts: list[pa.Table] = []
        rollup_parts: list[pa.Table] = []
        used: set[str] = set()
        raw_columns, rollup_columns = ["labels", "ts", "value"], ["labels", "ts", *aggregate.ROLLUP_COLUMNS[agg]]
        first_day = _day_start_ms(_day(start_ms))
        with self._lock:
            memory = [r for rows in self._pending.values() for r in rows] + self._flushing
            recent = [r for r in memory if r[1] == metric and start_ms <= r[0] < end_ms]
            days_in_memory = {_day(r[0]) for r in recent}
            for day_ms in range(first_day, end_ms, DAY_MS):
                day = _day(day_ms)
                live_raw, _ = _live_raw_files(self.directory / "raw" / day)
                for tier in ["raw"] if day in days_in_memory else preferred + fallback:
                    files = live_raw if tier == "raw" else self._fresh_rollup(tier, day, live_raw)
                    if not files:
                        continue
                    for path in files:
                        columns = raw_columns if tier == "raw" else rollup_columns
                        part = read_metric(path, metric, start_ms, end_ms, columns)
                        if part is not None and part.num_rows:
                            (raw_parts if tier == "raw" else rollup_parts).append(part)
                    used.add(tier)
                    break
        if recent:
            used.add("raw")
            raw_parts.append(
                pa.table(
                    {
                        "labels": [r[2] for r in recent],
                        "ts": pa.array([r[0] for r in recent], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                        "value": pa.array([r[3] for r in recent], pa.float64()),
                    }
                )
            )
        return raw_parts, rollup_parts, used

    def _fresh_rollup(self, tier: str, day: str, live_raw: list[Path]) -> list[Path]:
        """The rollup file of ``day`` if it was computed from the day's current raw data (or raw is gone)."""
        path = self.directory / tier / f"{day}.parquet"
        if not path.exists():
            return []
        if live_raw and [p.name for p in live_raw] != [_rollup_source(path)]:
            return []  # raw data changed since (late rows): the next maintenance recomputes it
        return [path]


def _rollup_source(path: Path) -> str | None:
    stat = path.stat()
    metadata = file_metadata(str(path), stat.st_mtime_ns, stat.st_size).metadata or {}
    source = metadata.get(b"source")
    return source.decode() if source else None


def _assemble(
    metric: str,
    raw_parts: list[pa.Table],
    rollup_parts: list[pa.Table],
    tiers: set[str],
    step_ms: int,
    agg: Aggregation,
    labels: Mapping[str, str] | None,
) -> list[SeriesData]:
    """Group the parts by series, filter labels, and aggregate each series into buckets."""
    series: dict[str, dict[str, list[pa.Table]]] = {}
    for kind, parts in (("raw", raw_parts), ("rollup", rollup_parts)):
        for part in parts:
            for key in pc.unique(part.column("labels")).to_pylist():
                if labels:
                    parsed = parse_labels_key(key)
                    if any(parsed.get(k) != v for k, v in labels.items()):
                        continue
                subset = part.filter(pc.equal(part.column("labels"), key))
                series.setdefault(key, {}).setdefault(kind, []).append(subset)
    results = []
    for key, kinds in sorted(series.items()):
        stamps: list[np.ndarray] = []
        values: list[np.ndarray] = []
        if "rollup" in kinds:
            table = pa.concat_tables(kinds["rollup"]).sort_by("ts")
            ts = table.column("ts").cast(pa.int64()).to_numpy()
            cols = {c: table.column(c).to_numpy() for c in aggregate.ROLLUP_COLUMNS[agg]}
            s, v = aggregate.bucket_rollup(ts, cols, step_ms, agg)
            stamps.append(s)
            values.append(v)
        if "raw" in kinds:
            table = pa.concat_tables(kinds["raw"]).sort_by("ts")
            ts = table.column("ts").cast(pa.int64()).to_numpy()
            s, v = aggregate.bucket_raw(ts, table.column("value").to_numpy(), step_ms, agg)
            stamps.append(s)
            values.append(v)
        all_ts = np.concatenate(stamps)
        all_values = np.concatenate(values)
        order = np.argsort(all_ts, kind="stable")
        results.append(
            SeriesData(
                metric=metric,
                labels=parse_labels_key(key),
                timestamps=(all_ts[order] / 1000).tolist(),
                values=all_values[order].tolist(),
                tiers=tuple(sorted(tiers)),
            )
        )
    return results


def _rollup_table(raw: pa.Table, step_ms: int) -> pa.Table:
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
