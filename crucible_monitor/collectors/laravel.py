"""Laravel applications: queue depth, failed jobs, log errors, scheduler heartbeat, Horizon, cache, sessions.

One :class:`LaravelCollector` per configured app (named ``laravel:<app>``) reads, each cycle:

- **logs**: ``storage/logs/laravel*.log`` (the single and daily channels), tailed rotation-safe with persisted
  positions. Monolog's line format (``[2026-11-28 10:00:00] production.ERROR: message {"exception":"[object]
  (App\\\\Exceptions\\\\Foo(code: 0): ...`` followed by stack-trace lines) is counted per level and per exception
  class, which sits on an entry's first line; continuation lines are skipped.
- **queues**: jobs ready, reserved and delayed per queue, from the ``jobs`` table (database driver) or from the
  ``queues:<name>`` list and its ``:delayed`` and ``:reserved`` sorted sets (redis driver, under the app's prefix).
- **failed jobs**: the ``failed_jobs`` table's size (and, in :func:`recent_errors`, the latest with their job and
  exception classes).
- **scheduler**: the age of a heartbeat file the app touches from a scheduled task, when one is configured
  (Laravel leaves no trace of a scheduler run on its own).
- **Horizon**, when its keys exist in the app's Redis: up when a master supervisor reported in the last 14 seconds
  and is not paused (Horizon's own ``horizon:status`` rule).
- **usage** (:mod:`~crucible_monitor.collectors.laravel_usage`): the Redis cache's hits, misses and keys, active
  sessions, and the statements and their time in the app's schema.

A source that fails (database, Redis, missing logs) is one ``COLLECTOR_ERROR`` event when it starts failing; the
other sources are still read. Database and Redis URLs may hold passwords: they are secrets, never logged or shown.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pymysql
import redis

from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
from crucible_monitor.collectors.laravel_logs import (
    ERROR_LEVELS,
    LEVELS,
    LogEntry,
    entries_newest_first,
    log_files,
    parse_log_line,
)
from crucible_monitor.collectors.laravel_stores import AppDatabase, connect_redis, describe_error, failed_jobs
from crucible_monitor.collectors.laravel_usage import (
    USAGE_CATALOGUE,
    cache_samples,
    query_time_samples,
    session_samples,
)
from crucible_monitor.collectors.tailing import Tailer
from crucible_monitor.config import LaravelAppConfig, LaravelConfig
from crucible_monitor.errors import NotFoundError
from crucible_monitor.models import MetricKind, MetricSpec, Sample, iso
from crucible_monitor.schemas import ExceptionCount, FailedJob, LogError, RecentErrors

__all__ = [
    "CATALOGUE",
    "LEVELS",
    "ExceptionCount",
    "FailedJob",
    "LaravelAppConfig",
    "LaravelCollector",
    "LaravelConfig",
    "LogEntry",
    "LogError",
    "RecentErrors",
    "find_app",
    "parse_log_line",
    "recent_errors",
]

logger = logging.getLogger(__name__)

_G, _C = MetricKind.GAUGE, MetricKind.COUNTER
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "laravel_log_entries_total",
        _C,
        "entries",
        "Log entries read since the agent started, by level.",
        ("app", "level"),
    ),
    MetricSpec(
        "laravel_exceptions_total",
        _C,
        "entries",
        "Log entries carrying an exception, by its class (the first 100 classes; later ones count as (other)).",
        ("app", "exception"),
    ),
    MetricSpec(
        "laravel_queue_jobs",
        _G,
        "jobs",
        "Jobs per queue: ready (waiting for a worker), reserved (being processed) or delayed.",
        ("app", "queue", "state"),
    ),
    MetricSpec(
        "laravel_queue_oldest_job_age_seconds",
        _G,
        "seconds",
        "How long the oldest ready job has been available (database driver; none when the queue is empty).",
        ("app", "queue"),
    ),
    MetricSpec("laravel_failed_jobs", _G, "jobs", "Rows of the failed_jobs table.", ("app",)),
    MetricSpec(
        "laravel_scheduler_heartbeat_age_seconds",
        _G,
        "seconds",
        "Seconds since the scheduler heartbeat file was last touched (when one is configured).",
        ("app",),
    ),
    MetricSpec(
        "laravel_horizon_up",
        _G,
        "boolean",
        "1 when a Horizon master supervisor reported in the last 14 s and runs; 0 when paused or inactive.",
        ("app",),
    ),
    *USAGE_CATALOGUE,
)

_MAX_EXCEPTION_CLASSES = 100
_OTHER = "(other)"
_SCAN_BUDGET = 64 * 1024 * 1024
_HORIZON_FRESH_SECONDS = 14


# ---------------------------------------------------------------------------------------------------------------
# Config


def find_app(config: LaravelConfig, name: str) -> LaravelAppConfig:
    """The configured app called ``name``.

    Raises:
        NotFoundError: there is none (the message lists the configured apps).
    """
    for app in config.apps:
        if app.name == name:
            return app
    names = ", ".join(app.name for app in config.apps) or "none configured"
    raise NotFoundError(f"no Laravel app {name!r}; apps: {names}")


# ---------------------------------------------------------------------------------------------------------------
# Recent errors (an MCP tool)


def recent_errors(app: LaravelAppConfig, since: float, *, limit: int = 50) -> RecentErrors:
    """The app's error entries since ``since`` (newest first, read backwards from the logs' ends) and failed jobs.

    Blocking (file and database reads): call it in a worker thread.
    """
    zone = app.zone
    budget = [_SCAN_BUDGET]
    found: list[tuple[LogEntry, str]] = []
    problems: list[str] = []
    for path in log_files(app, since):
        try:
            found += [
                (e, path.name) for e in entries_newest_first(path, since, zone, budget) if e.level in ERROR_LEVELS
            ]
        except OSError as exc:
            problems.append(f"cannot read {path}: {exc.strerror}")
    found.sort(key=lambda item: item[0].ts, reverse=True)
    entries = [entry for entry, _ in found]
    exceptions = Counter(e.exception for e in entries if e.exception)
    last_seen: dict[str, float] = {}
    for entry in entries:
        if entry.exception:
            last_seen.setdefault(entry.exception, entry.ts)
    failed: list[FailedJob] = []
    if app.database_url is None:
        problems.append("failed jobs: no database_url configured")
    else:
        database = AppDatabase(app.database_url.get_secret_value())
        try:
            failed = failed_jobs(database, app, since, limit + 1)  # one more says whether there are more
        except (pymysql.MySQLError, sqlite3.Error) as exc:
            problems.append(f"failed jobs: {describe_error(exc)}")
        finally:
            database.close()
    groups = _grouped(found)
    return RecentErrors(
        app=app.name,
        since=iso(since),
        errors_total=len(entries),
        by_level=dict(Counter(e.level for e in entries)),
        top_exceptions=[
            ExceptionCount(exception=name, count=count, last_seen=iso(last_seen[name]))
            for name, count in exceptions.most_common(10)
        ],
        total=len(groups),
        limit=limit,
        truncated=len(groups) > limit or budget[0] <= 0,
        scan_incomplete=budget[0] <= 0,
        errors=groups[:limit],
        failed_jobs=failed[:limit],
        failed_jobs_truncated=len(failed) > limit,
        problems=problems,
    )


def _grouped(found: list[tuple[LogEntry, str]]) -> list[LogError]:
    """Entries (newest first) with repeats (same file, level, channel, exception and message) folded into the
    newest, with their count and the oldest's time."""
    groups: dict[tuple[str, str, str, str | None, str], LogError] = {}
    counts: Counter[tuple[str, str, str, str | None, str]] = Counter()
    oldest: dict[tuple[str, str, str, str | None, str], float] = {}
    for entry, file in found:
        key = (file, entry.level, entry.channel, entry.exception, entry.message)
        counts[key] += 1
        oldest[key] = entry.ts
        if key not in groups:
            groups[key] = LogError(
                ts=iso(entry.ts),
                level=entry.level,
                channel=entry.channel,
                message=entry.message,
                exception=entry.exception,
                file=file,
            )
    return [
        error.model_copy(update={"count": counts[key], "first_seen": iso(oldest[key]) if counts[key] > 1 else None})
        for key, error in groups.items()
    ]


# ---------------------------------------------------------------------------------------------------------------
# The collector


class LaravelCollector:
    """One Laravel app: logs, queues, failed jobs, scheduler heartbeat, Horizon, cache, sessions, query time."""

    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(
        self,
        app: LaravelAppConfig,
        *,
        state_dir: Path,
        clock: Callable[[], float] = time.time,
        key: str = "collectors.laravel.apps[0]",
    ) -> None:
        self.app = app
        self.name = f"laravel:{app.name}"
        self.key = key
        """The config key of this app's settings (blind spots name the settings under it)."""
        self._clock = clock
        self._tailer = Tailer(app.log_patterns(), state_dir / f"laravel-{app.name}.json")
        self._database = AppDatabase(app.database_url.get_secret_value()) if app.database_url else None
        self._redis = connect_redis(app.redis_url) if app.redis_url else None
        self._cache_redis = (
            connect_redis(app.redis_url, app.cache_redis_db) if app.redis_url and app.cache_store == "redis" else None
        )
        self._levels: Counter[str] = Counter(dict.fromkeys(LEVELS, 0))
        self._exceptions: Counter[str] = Counter()
        self._queues: set[str] = set(app.queues)
        self._horizon_seen = False
        self._problems = Problems(self.name, f"laravel app {app.name}")

    async def collect(self) -> Collection:
        """Read every source once (in a worker thread: files, database and Redis block)."""
        return await asyncio.to_thread(self._collect)

    async def aclose(self) -> None:
        """Close the database and Redis connections."""
        if self._database is not None:
            await asyncio.to_thread(self._database.close)
        for client in (self._cache_redis, self._redis):
            if client is not None:
                await asyncio.to_thread(client.close)

    def _collect(self) -> Collection:
        now = self._clock()
        labels = {"app": self.app.name}
        samples: list[Sample] = []
        problems: list[str | BlindSpot] = []
        self._read_logs()
        problems += [BlindSpot(f"logs of {self.app.name}", f"{self.key}.logs", p) for p in self._tailer.problems]
        samples += [
            Sample("laravel_log_entries_total", float(count), {**labels, "level": level})
            for level, count in self._levels.items()
        ]
        samples += [
            Sample("laravel_exceptions_total", float(count), {**labels, "exception": name})
            for name, count in sorted(self._exceptions.items())
        ]
        broken: set[str] = set()  # a store that failed once this cycle is not asked again
        for store, read in (
            ("redis", self._read_cache),  # first: before this cycle's own lookups count as misses
            ("database", self._read_database),
            ("database", self._read_database_usage),
            ("redis", self._read_redis),
        ):
            if store in broken:
                continue
            try:
                found, texts = read(now)
            except (pymysql.MySQLError, sqlite3.Error) as exc:
                broken.add(store)
                error = f"database: {describe_error(exc)}"
                problems.append(BlindSpot(f"database of {self.app.name}", f"{self.key}.database_url", error))
            except redis.RedisError as exc:
                broken.add(store)
                error = f"redis: {describe_error(exc)}"
                problems.append(BlindSpot(f"redis of {self.app.name}", f"{self.key}.redis_url", error))
            else:
                samples += found
                problems += texts
        heartbeat = self.app.scheduler_heartbeat
        if heartbeat is not None:
            try:
                age = now - (self.app.path / heartbeat).stat().st_mtime
                samples.append(Sample("laravel_scheduler_heartbeat_age_seconds", round(max(age, 0.0), 3), labels))
            except OSError as exc:
                problems.append(f"scheduler heartbeat {self.app.path / heartbeat}: {exc.strerror}")
        try:
            self._tailer.save()
        except OSError:
            logger.exception("cannot save the log positions of laravel app %s", self.app.name)
        return self._problems.collection(samples, problems, now)

    def _read_logs(self) -> None:
        zone = self.app.zone
        for chunk in self._tailer.read():
            for line in chunk.data.split(b"\n"):
                if not line.startswith(b"["):
                    continue
                entry = parse_log_line(line, zone)
                if entry is None:
                    continue
                self._levels[entry.level] += 1
                if entry.exception:
                    known = entry.exception in self._exceptions
                    full = len(self._exceptions) >= _MAX_EXCEPTION_CLASSES
                    self._exceptions[entry.exception if known or not full else _OTHER] += 1

    def _read_cache(self, now: float) -> tuple[list[Sample], Sequence[str | BlindSpot]]:
        return ([], []) if self._cache_redis is None else cache_samples(self._cache_redis, self.app)

    def _read_database_usage(self, now: float) -> tuple[list[Sample], Sequence[str | BlindSpot]]:
        if self._database is None:
            return [], []
        sessions, problems = session_samples(self.app, now, self._database, None)
        statements, blind = query_time_samples(self._database, self.app)
        key, target = f"{self.key}.query_time", f"query time of {self.app.name}"
        return sessions + statements, [*problems, *(BlindSpot(target, key, text) for text in blind)]

    def _read_database(self, now: float) -> tuple[list[Sample], Sequence[str | BlindSpot]]:
        if self._database is None:
            return [], []
        labels = {"app": self.app.name}
        samples: list[Sample] = []
        if self.app.queue_driver == "database":
            rows = self._database.query(
                "SELECT queue,"
                " SUM(CASE WHEN reserved_at IS NULL AND available_at <= %s THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN reserved_at IS NOT NULL THEN 1 ELSE 0 END),"
                " SUM(CASE WHEN reserved_at IS NULL AND available_at > %s THEN 1 ELSE 0 END),"
                " MIN(CASE WHEN reserved_at IS NULL AND available_at <= %s THEN available_at END)"
                f" FROM `{self.app.jobs_table}` GROUP BY queue",
                (int(now), int(now), int(now)),
            )
            found = {str(queue): (int(r or 0), int(s or 0), int(d or 0), oldest) for queue, r, s, d, oldest in rows}
            self._queues |= set(found)
            for queue in sorted(self._queues):
                ready, reserved, delayed, oldest = found.get(queue, (0, 0, 0, None))
                samples += _queue_samples(labels, queue, ready, reserved, delayed)
                if oldest is not None:
                    age = {**labels, "queue": queue}
                    samples.append(Sample("laravel_queue_oldest_job_age_seconds", max(0.0, now - int(oldest)), age))
        ((failed,),) = self._database.query(f"SELECT COUNT(*) FROM `{self.app.failed_jobs_table}`")
        samples.append(Sample("laravel_failed_jobs", float(failed), labels))
        return samples, []

    def _read_redis(self, now: float) -> tuple[list[Sample], Sequence[str | BlindSpot]]:
        if self._redis is None:
            return [], []
        labels = {"app": self.app.name}
        samples, problems = session_samples(self.app, now, None, self._redis)
        if self.app.queue_driver == "redis":
            queues = sorted(self._queues)
            pipe = self._redis.pipeline(transaction=False)
            for queue in queues:
                key = f"{self.app.redis_prefix}queues:{queue}"
                pipe.llen(key)
                pipe.zcard(f"{key}:reserved")
                pipe.zcard(f"{key}:delayed")
            counts = pipe.execute()
            for i, queue in enumerate(queues):
                ready, reserved, delayed = counts[3 * i : 3 * i + 3]
                samples += _queue_samples(labels, queue, int(ready), int(reserved), int(delayed))
        horizon = self.app.horizon_prefix
        masters = [
            name.decode() if isinstance(name, bytes) else str(name)
            for name in self._redis.zrevrangebyscore(f"{horizon}masters", "+inf", int(now) - _HORIZON_FRESH_SECONDS)
        ]
        if masters or self._horizon_seen or self._redis.exists(f"{horizon}masters"):
            self._horizon_seen = True
            statuses = [self._redis.hget(f"{horizon}master:{name}", "status") for name in masters]
            up = any(status in (b"running", "running") for status in statuses)
            samples.append(Sample("laravel_horizon_up", 1.0 if up else 0.0, labels))
        return samples, problems


def _queue_samples(labels: dict[str, str], queue: str, ready: int, reserved: int, delayed: int) -> list[Sample]:
    return [
        Sample("laravel_queue_jobs", float(count), {**labels, "queue": queue, "state": state})
        for state, count in (("ready", ready), ("reserved", reserved), ("delayed", delayed))
    ]
