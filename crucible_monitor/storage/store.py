"""The metric store: WAL → immutable Parquet tiers (raw, 1-minute, 1-hour), retention, and queries.

Exactly once: once :meth:`MetricStore.append` returns, a batch is in the WAL. Flushing writes every file of the
closed segments (temp file, fsync) and publishes them (rename) in the same critical section that stops serving
those rows from memory; only then does the WAL checkpoint and delete the segments. A crash in between only means
the segments (and any closed since) are flushed again, into files whose range contains the earlier ones (see
:mod:`~crucible_monitor.storage.files` for the layout and the superseded-file rule).

File work (flush, compaction, rollups, retention) goes through a ``runner``: in-process by default, a worker process
in the agent, so that the agent does not keep Parquet's writer code and buffers. A flush of at most
:data:`INLINE_FLUSH_ROWS` rows is written in-process all the same: starting a worker costs more CPU (about 0.25 s,
importing pyarrow) than writing them, and their buffers are small. Reads stay in-process.
"""

from __future__ import annotations

import errno
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from crucible_monitor.config import StorageConfig
from crucible_monitor.errors import DiskFull, StorageError
from crucible_monitor.models import Aggregation, Sample, labels_key, labels_match, parse_labels_key
from crucible_monitor.storage import aggregate
from crucible_monitor.storage.files import (
    DAY_MS,
    TIERS,
    Maintenance,
    day_of,
    days_with_data,
    disk_usage,
    live_raw_files,
    maintain,
    rollup_source,
    write_flush,
)
from crucible_monitor.storage.parquet import Columns, publish, read_metric
from crucible_monitor.storage.wal import Row, WriteAheadLog, fsync_dir

__all__ = ["TIERS", "History", "LatestPoint", "MetricStore", "Runner", "SeriesData", "StoreStats", "run_here"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
Runner = Callable[..., Any]
"""Runs ``fn(*args)`` somewhere (here, or in a worker process) and returns its result."""


def run_here(fn: Callable[..., _T], *args: Any) -> _T:
    """The default runner: call it in this process."""
    return fn(*args)


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


INLINE_FLUSH_ROWS = 20_000
"""Flushes up to this many rows are written in the agent's process (ten minutes of a default host at 10 s)."""
MAX_HELD_ROWS = 1_000_000
"""Most samples held in memory while the disk is full (some 40 MB: hours of a busy host at 10 s)."""


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Sizes for health output."""

    disk_bytes: int
    wal_bytes: int
    pending_rows: int
    days: dict[str, int]
    held_rows: int = 0
    """Samples held in memory while the disk is full (written when space returns)."""
    held_since: float | None = None
    dropped_rows: int = 0
    """Samples given up because the hold was full (oldest first)."""


class History(Protocol):
    """What analysis reads history through: the local :class:`MetricStore`, or Prometheus
    (:class:`~crucible_monitor.storage.promql.PrometheusHistory`, ``analysis.source: prometheus``)."""

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
        """Points of ``metric`` in buckets of ``step`` seconds."""

    def latest(self, metric: str | None = None, labels: Mapping[str, str] | None = None) -> list[LatestPoint]:
        """The newest point of every matching series."""


class MetricStore:
    """Crash-safe storage of samples with downsampled tiers. Thread-safe."""

    def __init__(
        self,
        directory: Path,
        config: StorageConfig,
        *,
        retention: timedelta,
        clock: Callable[[], float] = time.time,
        runner: Runner = run_here,
    ) -> None:
        self.directory = directory
        self.config = config
        self.retention = retention
        self.clock = clock
        self.runner = runner
        self.wal = WriteAheadLog(directory / "wal", fsync=config.fsync)
        self._lock = threading.RLock()
        self._pending: dict[int, list[Row]] = {}  # WAL segment → rows not yet in Parquet
        self._flushing: list[Row] = []  # rows being written, still served from memory
        self._held: list[Row] = []  # rows the WAL had no space for, oldest first (written before the next batch)
        self._by_metric: dict[str, list[Row]] | None = None  # pending, flushing, held rows per metric, built on read
        self._held_since: float | None = None
        self._dropped = 0
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
        self._by_metric = None
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

    def append(self, samples: Iterable[Sample], ts: float | None = None) -> int:
        """Store a batch (every sample stamped ``ts`` when given: a collection's tick). Once this returns, every
        sample in it survives a crash. Returns the rows stored (with any held for lack of space, written first).

        Samples with a non-finite value are dropped (NaN cannot be stored faithfully or queried sensibly).

        Raises:
            DiskFull: no space for the WAL; the batch is held in memory (at most :data:`MAX_HELD_ROWS` rows, the
                oldest given up first) and written by the first append that finds space.
            StorageError: the WAL could not be written otherwise; nothing of the batch is stored.
        """
        rows = _rows(samples, ts)
        if not rows and not self._held:
            return 0
        with self._lock:
            batch = [*self._held, *rows]
            try:
                self.wal.append(batch)
            except StorageError as exc:
                if not isinstance(exc.__cause__, OSError) or exc.__cause__.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                self._hold(batch, rows)
                raise DiskFull(f"{exc}: {len(self._held)} samples held in memory until there is space") from exc
            self._pending.setdefault(self.wal.active_segment, []).extend(batch)
            if self._held:
                self._by_metric = None  # the held rows it served move to pending
            elif self._by_metric is not None:
                for row in batch:
                    self._by_metric.setdefault(row[1], []).append(row)
            for row in rows:
                self._remember(row)
            self._held, self._held_since = [], None
        return len(batch)

    def hold(self, samples: Iterable[Sample], ts: float | None = None) -> int:
        """Keep a batch in memory without trying the WAL (the disk is full), as :meth:`append` does when it finds no
        space; the next append that succeeds writes it. Returns the rows held in all."""
        rows = _rows(samples, ts)
        with self._lock:
            self._hold([*self._held, *rows], rows)
            return len(self._held)

    def _hold(self, batch: list[Row], rows: list[Row]) -> None:
        self._held = batch[-MAX_HELD_ROWS:]
        self._dropped += len(batch) - len(self._held)
        self._held_since = self._held_since or self.clock()
        self._by_metric = None  # held rows are served too (rebuilt on the next read)
        for row in rows:
            self._remember(row)

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
            runner = run_here if len(rows) <= INLINE_FLUSH_ROWS else self.runner
            written = runner(write_flush, str(self.directory), closed) if rows else []
        except Exception as exc:  # the worker's failure, whatever it was: the rows stay served and in the WAL
            with self._lock:
                self._pending[closed[0]] = rows + self._pending.get(closed[0], [])
                self._flushing = []
            raise StorageError(f"cannot write Parquet in {self.directory}: {exc}") from exc
        with self._lock:
            for tmp, final in written:
                publish(Path(tmp), Path(final))
            self._flushing = []
            self._by_metric = None
            self.wal.checkpoint(closed)
        if written:
            fsync_dir(self.directory / "raw")
        return len(rows)

    def maintain(self) -> None:
        """Compact raw days, write rollups of finished days, apply retention and the disk cap."""
        with self._lock:
            days = {row[0] // DAY_MS for rows in self._pending.values() for row in rows}
        busy = frozenset(day_of(day * DAY_MS) for day in days)
        settings = Maintenance(
            now_ms=round(self.clock() * 1000),
            keep={
                "raw": min(self.config.raw_retention, self.retention),
                "1m": min(self.config.minute_retention, self.retention),
                "1h": self.retention,
            },
            max_disk=int(self.config.max_disk),
            busy_days=busy,
        )
        self.runner(maintain, str(self.directory), settings)

    def stats(self) -> StoreStats:
        """Bytes on disk per tier and in the WAL, and rows waiting to be flushed."""
        days, parquet, wal = disk_usage(self.directory)
        with self._lock:
            pending = sum(len(r) for r in self._pending.values())
            held, since, dropped = len(self._held), self._held_since, self._dropped
        return StoreStats(
            disk_bytes=parquet + wal,
            wal_bytes=wal,
            pending_rows=pending,
            days=days,
            held_rows=held,
            held_since=since,
            dropped_rows=dropped,
        )

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
            if not labels_match(parsed, labels):
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
    ) -> tuple[list[Columns], list[Columns], set[str]]:
        preferred = [t for t, width in TIERS.items() if width <= step_ms][::-1]  # coarsest first
        fallback = [t for t in TIERS if t not in preferred]
        raw_parts: list[Columns] = []
        rollup_parts: list[Columns] = []
        used: set[str] = set()
        rollup_columns = ["labels", "ts", *aggregate.ROLLUP_COLUMNS[agg]]
        with self._lock:
            if self._by_metric is None:  # one pass over memory for every query until the next flush
                self._by_metric = {}
                for rows in (*self._pending.values(), self._flushing, self._held):
                    for row in rows:
                        self._by_metric.setdefault(row[1], []).append(row)
            memory = list(self._by_metric.get(metric, ()))
        recent = [r for r in memory if start_ms <= r[0] < end_ms]
        days_in_memory = {day_of(day * DAY_MS) for day in {r[0] // DAY_MS for r in recent}}
        for day in days_with_data(self.directory, start_ms, end_ms):
            live_raw, _ = live_raw_files(self.directory / "raw" / day)
            for tier in ["raw"] if day in days_in_memory else preferred + fallback:
                files = live_raw if tier == "raw" else self._fresh_rollup(tier, day, live_raw)
                if not files:
                    continue
                for path in files:
                    part = read_metric(
                        path, metric, start_ms, end_ms, ["labels", "ts", "value"] if tier == "raw" else rollup_columns
                    )
                    if part is not None:
                        (raw_parts if tier == "raw" else rollup_parts).append(part)
                used.add(tier)
                break
        if recent:
            used.add("raw")
            raw_parts.append(
                {
                    "labels": np.array([r[2] for r in recent], dtype=object),
                    "ts": np.array([r[0] for r in recent], dtype=np.int64),
                    "value": np.array([r[3] for r in recent], dtype=np.float64),
                }
            )
        return raw_parts, rollup_parts, used

    def _fresh_rollup(self, tier: str, day: str, live_raw: list[Path]) -> list[Path]:
        """The rollup file of ``day`` if it was computed from the day's current raw data (or raw is gone)."""
        path = self.directory / tier / f"{day}.parquet"
        if not path.exists():
            return []
        if live_raw and [p.name for p in live_raw] != [rollup_source(path)]:
            return []  # raw data changed since (late rows): the next maintenance recomputes it
        return [path]


def _rows(samples: Iterable[Sample], ts: float | None) -> list[Row]:
    """Samples as stored rows, each stamped ``ts`` when given (a collection's tick); a non-finite value is dropped."""
    if ts is None:
        return [
            (round(s.ts * 1000), s.metric, labels_key(s.labels), float(s.value))
            for s in samples
            if math.isfinite(s.value)
        ]
    tick = round(ts * 1000)
    return [(tick, s.metric, labels_key(s.labels), float(s.value)) for s in samples if math.isfinite(s.value)]


def _concat(parts: list[Columns]) -> Columns:
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _rows_by_series(keys: npt.NDArray[np.object_]) -> dict[str, npt.NDArray[np.int64]]:
    """Row indices per label key. Parquet parts come sorted by series, so keys form runs: compare neighbours
    (cheap) instead of sorting strings (slow)."""
    if not len(keys):
        return {}
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    runs: dict[str, list[npt.NDArray[np.int64]]] = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        runs.setdefault(str(keys[start]), []).append(np.arange(start, end, dtype=np.int64))
    return {key: np.concatenate(parts) for key, parts in runs.items()}


def _assemble(
    metric: str,
    raw_parts: list[Columns],
    rollup_parts: list[Columns],
    tiers: set[str],
    step_ms: int,
    agg: Aggregation,
    labels: Mapping[str, str] | None,
) -> list[SeriesData]:
    """Group the parts by series, filter labels, and aggregate each series into buckets."""
    per_series: dict[str, list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]] = {}
    for kind, parts in (("rollup", rollup_parts), ("raw", raw_parts)):
        if not parts:
            continue
        data = _concat(parts)
        for key, rows in _rows_by_series(data["labels"]).items():
            if labels and not labels_match(parse_labels_key(key), labels):
                continue
            rows = rows[np.argsort(data["ts"][rows], kind="stable")]
            ts = data["ts"][rows]
            if kind == "raw":
                stamps, values = aggregate.bucket_raw(ts, data["value"][rows], step_ms, agg)
            else:
                columns = {c: data[c][rows] for c in aggregate.ROLLUP_COLUMNS[agg]}
                stamps, values = aggregate.bucket_rollup(ts, columns, step_ms, agg)
            per_series.setdefault(str(key), []).append((stamps, values))
    results = []
    for key, pieces in sorted(per_series.items()):
        stamps = np.concatenate([p[0] for p in pieces])
        values = np.concatenate([p[1] for p in pieces])
        order = np.argsort(stamps, kind="stable")
        results.append(
            SeriesData(
                metric=metric,
                labels=parse_labels_key(key),
                timestamps=(stamps[order] / 1000).tolist(),
                values=values[order].tolist(),
                tiers=tuple(sorted(tiers)),
            )
        )
    return results
