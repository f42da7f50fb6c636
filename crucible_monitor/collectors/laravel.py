"""Laravel applications: queue depth, failed jobs, log errors, scheduler heartbeat and Horizon.

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

A source that fails (database, Redis, missing logs) is one ``COLLECTOR_ERROR`` event when it starts failing; the
other sources are still read. Database and Redis URLs may hold passwords: they are secrets, never logged or shown.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import re
import sqlite3
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
import redis
from pydantic import SecretStr

from crucible_monitor.collectors import mysql
from crucible_monitor.collectors.base import Collection, Problems
from crucible_monitor.collectors.tailing import Tailer
from crucible_monitor.config import LaravelAppConfig, LaravelConfig, MysqlConfig
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

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""Monolog's levels (RFC 5424), lowest first."""
_ERROR_LEVELS = frozenset(LEVELS[LEVELS.index("error") :])

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
)

_MAX_EXCEPTION_CLASSES = 100
_OTHER = "(other)"
_MAX_MESSAGE_CHARS = 500
_SCAN_BLOCK = 1024 * 1024
_SCAN_BUDGET = 64 * 1024 * 1024
_HORIZON_FRESH_SECONDS = 14
_TIMEOUT_SECONDS = 5.0
_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
_ENTRY = re.compile(
    rb"\[(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?)\] "
    rb"(\S+?)\.(DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL|ALERT|EMERGENCY): ?"
)
_EXCEPTION = re.compile(rb'"exception":"\[object\] \(((?:[A-Za-z_][A-Za-z0-9_]*\\\\)*[A-Za-z_][A-Za-z0-9_]*)\(code: ')
_CONTEXT = re.compile(r' (?:\{"|\[\{|\[\] \[\]$|\{\} \[\]$|\[\]$)')
_DISPLAY_NAME = re.compile(r'"displayName"\s*:\s*"((?:[^"\\]|\\.)*)"')
_THROWABLE = re.compile(r"^((?:[A-Za-z_][A-Za-z0-9_]*\\)*[A-Za-z_][A-Za-z0-9_]*): (.*?)(?: in /\S+:\d+)?$")


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
# Logs


@dataclass(frozen=True, slots=True)
class LogEntry:
    """The first line of one Monolog entry."""

    ts: float
    channel: str
    level: str
    """Lower case, one of :data:`LEVELS`."""
    message: str
    exception: str | None
    """The class of the exception in the entry's context, e.g. ``App\\Exceptions\\PaymentFailed``."""


def parse_log_line(line: bytes, zone: zoneinfo.ZoneInfo) -> LogEntry | None:
    """An entry's first line (``[date] channel.LEVEL: message context extra``); None for any other line.

    Times without an offset (Laravel's ``Y-m-d H:i:s``) are in ``zone``.
    """
    match = _ENTRY.match(line)
    if match is None:
        return None
    stamp, channel, level = match.groups()
    try:
        moment = datetime.fromisoformat(stamp.decode().replace(" ", "T", 1))
    except ValueError:  # digits that are no date (month 13...)
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    exception = _EXCEPTION.search(line, match.end())
    rest = line[match.end() :].decode("utf-8", "replace").rstrip()
    context = _CONTEXT.search(rest)
    message = (rest[: context.start()] if context else rest).strip()
    return LogEntry(
        ts=moment.timestamp(),
        channel=channel.decode("utf-8", "replace"),
        level=level.decode().lower(),
        message=message[:_MAX_MESSAGE_CHARS],
        exception=exception.group(1).replace(b"\\\\", b"\\").decode() if exception else None,
    )


def _entries_newest_first(path: Path, since: float, zone: zoneinfo.ZoneInfo, budget: list[int]) -> Iterator[LogEntry]:
    """The entries of one log file from its end back to ``since``, reading blocks backwards within ``budget[0]``."""
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        carry = b""
        while end > 0:
            if budget[0] <= 0:
                return
            start = max(0, end - _SCAN_BLOCK)
            handle.seek(start)
            block = handle.read(end - start) + carry
            budget[0] -= end - start
            lines = block.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            for line in reversed(lines):
                entry = parse_log_line(line, zone)
                if entry is None:
                    continue
                if entry.ts < since:
                    return
                yield entry
            end = start


# ---------------------------------------------------------------------------------------------------------------
# Database and Redis


class _Database:
    """The app's database, MySQL/MariaDB or SQLite (read-only), from its URL; SQL uses ``%s`` placeholders.

    MySQL sessions keep the server's time zone, as Laravel's do, so times read back as the app wrote them.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._sqlite_path = Path("/" + unquote(parts.path).lstrip("/")) if parts.scheme == "sqlite" else None
        socket = parse_qs(parts.query).get("unix_socket", [None])[0]
        self._mysql = MysqlConfig(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            unix_socket=Path(socket) if socket else None,
            user=unquote(parts.username or "root"),
            password=SecretStr(unquote(parts.password)) if parts.password else None,
            connect_timeout=timedelta(seconds=_TIMEOUT_SECONDS),
        )
        self._name = unquote(parts.path).lstrip("/") or None
        self._connection: pymysql.connections.Connection[Any] | None = None

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of one statement.

        Raises:
            pymysql.MySQLError: MySQL cannot be reached or refuses.
            sqlite3.Error: the SQLite file cannot be read.
        """
        if self._sqlite_path is not None:
            uri = f"{self._sqlite_path.as_uri()}?mode=ro"
            connection = sqlite3.connect(uri, uri=True, timeout=_TIMEOUT_SECONDS)
            try:
                return list(connection.execute(sql.replace("%s", "?"), params).fetchall())
            finally:
                connection.close()
        if self._connection is None:
            self._connection = mysql.connect(self._mysql, database=self._name, time_zone=None)
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(sql, params)
                return list(cursor.fetchall())
        except pymysql.MySQLError:
            self.close()  # reconnect next time
            raise

    def close(self) -> None:
        """Close the MySQL connection, if open."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except pymysql.MySQLError:
                logger.debug("closing the app's database connection failed")


def _redis(url: SecretStr) -> redis.Redis:
    return redis.Redis.from_url(
        url.get_secret_value(), socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
    )


def _naive(ts: float, zone: zoneinfo.ZoneInfo) -> str:
    """``ts`` as the app writes times into its database: local wall-clock text without a zone."""
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S")


def _timestamp(value: object, zone: zoneinfo.ZoneInfo) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()


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
    for path in _log_files(app, since):
        try:
            found += [
                (e, path.name) for e in _entries_newest_first(path, since, zone, budget) if e.level in _ERROR_LEVELS
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
        database = _Database(app.database_url.get_secret_value())
        try:
            failed = _failed_jobs(database, app, since, limit)
        except (pymysql.MySQLError, sqlite3.Error) as exc:
            problems.append(f"failed jobs: {_describe(exc)}")
        finally:
            database.close()
    return RecentErrors(
        app=app.name,
        since=iso(since),
        errors_total=len(entries),
        by_level=dict(Counter(e.level for e in entries)),
        top_exceptions=[
            ExceptionCount(exception=name, count=count, last_seen=iso(last_seen[name]))
            for name, count in exceptions.most_common(10)
        ],
        errors=[
            LogError(ts=iso(e.ts), level=e.level, channel=e.channel, message=e.message, exception=e.exception, file=f)
            for e, f in found[:limit]
        ],
        failed_jobs=failed,
        problems=problems,
        truncated=budget[0] <= 0,
    )


def _log_files(app: LaravelAppConfig, since: float) -> list[Path]:
    """The app's log files written to since ``since``, newest first."""
    files: dict[Path, float] = {}
    for pattern in app.log_patterns():
        for name in glob.glob(pattern):
            try:
                files[Path(name)] = Path(name).stat().st_mtime
            except OSError:
                continue
    return sorted((path for path, mtime in files.items() if mtime >= since), key=files.__getitem__, reverse=True)


def _failed_jobs(database: _Database, app: LaravelAppConfig, since: float, limit: int) -> list[FailedJob]:
    rows = database.query(
        f"SELECT id, uuid, connection, queue, SUBSTR(payload, 1, 2000), SUBSTR(exception, 1, 2000), failed_at "
        f"FROM `{app.failed_jobs_table}` WHERE failed_at >= %s ORDER BY failed_at DESC, id DESC LIMIT %s",
        (_naive(since, app.zone), limit),
    )
    jobs = []
    for row_id, uuid, connection, queue, payload, exception, failed_at in rows:
        display = _DISPLAY_NAME.search(str(payload or ""))
        first_line = str(exception or "").split("\n", 1)[0]
        throwable = _THROWABLE.match(first_line)
        jobs.append(
            FailedJob(
                id=str(uuid or row_id),
                failed_at=iso(_timestamp(failed_at, app.zone)),
                connection=str(connection),
                queue=str(queue),
                job=json.loads(f'"{display.group(1)}"') if display else None,
                exception=throwable.group(1) if throwable else None,
                exception_message=(throwable.group(2) if throwable else first_line)[:_MAX_MESSAGE_CHARS] or None,
            )
        )
    return jobs


def _describe(exc: BaseException) -> str:
    if isinstance(exc, pymysql.MySQLError):
        return mysql.describe(exc)
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------------------------------------------------------
# The collector


class LaravelCollector:
    """One Laravel app: logs, queues, failed jobs, scheduler heartbeat, Horizon."""

    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(self, app: LaravelAppConfig, *, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.name = f"laravel:{app.name}"
        self._clock = clock
        self._tailer = Tailer(app.log_patterns(), state_dir / f"laravel-{app.name}.json")
        self._database = _Database(app.database_url.get_secret_value()) if app.database_url else None
        self._redis = _redis(app.redis_url) if app.redis_url else None
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
        if self._redis is not None:
            await asyncio.to_thread(self._redis.close)

    def _collect(self) -> Collection:
        now = self._clock()
        labels = {"app": self.app.name}
        samples: list[Sample] = []
        problems: list[str] = []
        self._read_logs()
        problems += self._tailer.problems
        samples += [
            Sample("laravel_log_entries_total", float(count), {**labels, "level": level})
            for level, count in self._levels.items()
        ]
        samples += [
            Sample("laravel_exceptions_total", float(count), {**labels, "exception": name})
            for name, count in sorted(self._exceptions.items())
        ]
        for read in (self._read_database, self._read_redis):
            try:
                samples += read(now)
            except (pymysql.MySQLError, sqlite3.Error) as exc:
                problems.append(f"database: {_describe(exc)}")
            except redis.RedisError as exc:
                problems.append(f"redis: {_describe(exc)}")
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
        return Collection(samples=samples, events=self._problems.update(problems, now))

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

    def _read_database(self, now: float) -> list[Sample]:
        if self._database is None:
            return []
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
        return samples

    def _read_redis(self, now: float) -> list[Sample]:
        if self._redis is None:
            return []
        labels = {"app": self.app.name}
        samples: list[Sample] = []
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
        return samples


def _queue_samples(labels: dict[str, str], queue: str, ready: int, reserved: int, delayed: int) -> list[Sample]:
    return [
        Sample("laravel_queue_jobs", float(count), {**labels, "queue": queue, "state": state})
        for state, count in (("ready", ready), ("reserved", reserved), ("delayed", delayed))
    ]
