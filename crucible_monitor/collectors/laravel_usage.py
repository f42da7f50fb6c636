"""A Laravel app's usage: its Redis cache (hits, misses, keys), its active sessions and its statements' time.

- **cache** (``cache_store: redis``): the Redis server's ``keyspace_hits`` and ``keyspace_misses`` (``INFO stats``;
  Redis counts per server, not per prefix) and the keys under the cache's prefix in the cache connection's database.
- **sessions**: rows of the ``sessions`` table used within the session lifetime (database driver), or the keys under
  the cache prefix named by a 40-character session id (redis driver: Laravel keeps sessions in the Redis cache store
  on the default connection, and Redis expires them after the lifetime).
- **query time**: statements and their total time in the app's schema, from MySQL/MariaDB's
  ``performance_schema.events_statements_summary_by_digest`` (its counts since the table was last reset).

Keys are counted with ``SCAN ... COUNT``, at most :data:`MAX_SCAN_CALLS` calls a cycle (never ``KEYS``).
"""

from __future__ import annotations

import re

import pymysql
import redis

from crucible_monitor.collectors.laravel_stores import AppDatabase
from crucible_monitor.config import LaravelAppConfig
from crucible_monitor.models import MetricKind, MetricSpec, Sample

__all__ = ["MAX_SCAN_CALLS", "USAGE_CATALOGUE", "cache_samples", "query_time_samples", "session_samples"]

_G, _C = MetricKind.GAUGE, MetricKind.COUNTER
USAGE_CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "laravel_cache_hits_total",
        _C,
        "lookups",
        "Key lookups that found a key on the app's cache Redis (keyspace_hits: the whole server's, Redis does not "
        "count per prefix).",
        ("app",),
    ),
    MetricSpec(
        "laravel_cache_misses_total",
        _C,
        "lookups",
        "Key lookups that found no key on the app's cache Redis (keyspace_misses: the whole server's, Redis does not "
        "count per prefix).",
        ("app",),
    ),
    MetricSpec(
        "laravel_cache_hit_ratio",
        _G,
        "ratio",
        "hits / (hits + misses) of the cache Redis since it started (the whole server's); none before any lookup.",
        ("app",),
    ),
    MetricSpec(
        "laravel_cache_keys",
        _G,
        "keys",
        "Keys under the app's cache prefix in the cache connection's database (a bounded SCAN: a lower bound when "
        "the collector reports the scan stopped).",
        ("app",),
    ),
    MetricSpec(
        "laravel_sessions_active",
        _G,
        "sessions",
        "Sessions used within the session lifetime (database driver) or not yet expired in Redis (redis driver).",
        ("app",),
    ),
    MetricSpec(
        "laravel_session_users_active",
        _G,
        "users",
        "Distinct logged-in users among the active sessions (database driver: the sessions table's user_id).",
        ("app",),
    ),
    MetricSpec(
        "laravel_db_statements_total",
        _C,
        "statements",
        "Statements run in the app's schema (performance_schema digests, since the digest table was last reset).",
        ("app",),
    ),
    MetricSpec(
        "laravel_db_statement_seconds_total",
        _C,
        "seconds",
        "Time spent in statements in the app's schema (performance_schema digests).",
        ("app",),
    ),
    MetricSpec(
        "laravel_db_statement_avg_seconds",
        _G,
        "seconds",
        "Mean time of a statement in the app's schema since the digest table was last reset; none before any.",
        ("app",),
    ),
)

MAX_SCAN_CALLS = 100
"""SCAN calls a cycle for one count (each examines about :data:`_SCAN_COUNT` keys)."""
_SCAN_COUNT = 1000
_SESSION_ID = re.compile(rb":?[A-Za-z0-9]{40}")  # Str::random(40), after the prefix (older releases add a colon)
_PICOSECONDS = 1e12
_ACCESS_DENIED = {1142, 1143, 1227, 1044}


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _scan(client: redis.Redis, prefix: str, tail: str, keep: re.Pattern[bytes] | None = None) -> tuple[int, bool]:
    """How many keys start with ``prefix`` and match the glob ``tail`` after it (and ``keep`` whole, if given),
    and whether the scan ended."""
    found, cursor = 0, 0
    pattern = _glob_escape(prefix) + tail
    start = len(prefix.encode())
    for _ in range(MAX_SCAN_CALLS):
        cursor, keys = client.scan(cursor, match=pattern, count=_SCAN_COUNT)
        for key in keys:
            raw = key.encode() if isinstance(key, str) else key
            found += keep is None or keep.fullmatch(raw[start:]) is not None
        if cursor == 0:
            return found, True
    return found, False


def cache_samples(client: redis.Redis, app: LaravelAppConfig) -> tuple[list[Sample], list[str]]:
    """The cache Redis's hits and misses (read first, before this cycle's own lookups) and the app's cache keys.

    Raises:
        redis.RedisError: Redis cannot be reached or refuses.
    """
    labels = {"app": app.name}
    stats = client.info("stats")
    hits, misses = int(stats.get("keyspace_hits", 0)), int(stats.get("keyspace_misses", 0))
    samples = [
        Sample("laravel_cache_hits_total", float(hits), labels),
        Sample("laravel_cache_misses_total", float(misses), labels),
    ]
    if hits + misses:
        samples.append(Sample("laravel_cache_hit_ratio", round(hits / (hits + misses), 6), labels))
    keys, complete = _scan(client, app.cache_key_prefix, "*")
    samples.append(Sample("laravel_cache_keys", float(keys), labels))
    problems = [] if complete else [f"cache keys: scan stopped after {MAX_SCAN_CALLS * _SCAN_COUNT} keys"]
    return samples, problems


def session_samples(
    app: LaravelAppConfig, now: float, database: AppDatabase | None, client: redis.Redis | None
) -> tuple[list[Sample], list[str]]:
    """Active sessions from the store ``app.session_driver`` names (``[]`` when none or it is not configured).

    Raises:
        pymysql.MySQLError, sqlite3.Error: the database cannot be read.
        redis.RedisError: Redis cannot be reached or refuses.
    """
    labels = {"app": app.name}
    if app.session_driver == "database" and database is not None:
        since = int(now - app.session_lifetime.total_seconds())
        ((active, users),) = database.query(
            f"SELECT COUNT(*), COUNT(DISTINCT user_id) FROM `{app.sessions_table}` WHERE last_activity >= %s",
            (since,),
        )
        return [
            Sample("laravel_sessions_active", float(active or 0), labels),
            Sample("laravel_session_users_active", float(users or 0), labels),
        ], []
    if app.session_driver == "redis" and client is not None:
        active, complete = _scan(client, app.cache_key_prefix, "*", _SESSION_ID)
        problems = [] if complete else [f"sessions: scan stopped after {MAX_SCAN_CALLS * _SCAN_COUNT} keys"]
        return [Sample("laravel_sessions_active", float(active), labels)], problems
    return [], []


def query_time_samples(database: AppDatabase, app: LaravelAppConfig) -> tuple[list[Sample], list[str]]:
    """Statements and their time in the app's schema (MySQL/MariaDB; ``[]`` for SQLite or when turned off).

    Raises:
        pymysql.MySQLError: the server cannot be reached (a missing grant is a problem text instead).
    """
    schema = database.schema
    if not app.query_time or schema is None:
        return [], []
    try:
        ((count, picoseconds),) = database.query(
            "SELECT COALESCE(SUM(COUNT_STAR), 0), COALESCE(SUM(SUM_TIMER_WAIT), 0)"
            " FROM performance_schema.events_statements_summary_by_digest WHERE SCHEMA_NAME = %s",
            (schema,),
        )
        # Asked apart: MariaDB 10.11 answers 0 for it in the same SELECT as an aggregate over performance_schema.
        ((enabled,),) = database.query("SELECT @@performance_schema") if not int(count) else ((1,),)
    except (pymysql.err.OperationalError, pymysql.err.ProgrammingError) as exc:
        if exc.args and exc.args[0] in _ACCESS_DENIED:
            return [], [
                "query time: the database user may not read performance_schema (GRANT SELECT ON "
                "performance_schema.* TO it, or set query_time: false)"
            ]
        raise
    if not int(enabled):
        return [], ["query time: performance_schema is off (performance_schema=ON in my.cnf, then restart)"]
    labels = {"app": app.name}
    seconds = int(picoseconds) / _PICOSECONDS
    samples = [
        Sample("laravel_db_statements_total", float(count), labels),
        Sample("laravel_db_statement_seconds_total", seconds, labels),
    ]
    if int(count):
        samples.append(Sample("laravel_db_statement_avg_seconds", seconds / int(count), labels))
    return samples, []
