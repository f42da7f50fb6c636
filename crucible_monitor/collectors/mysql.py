"""MySQL and MariaDB server metrics (PyMySQL), and the slowest statements.

Each cycle reads ``SHOW GLOBAL STATUS`` (connections, threads, queries, slow queries, aborted connects, InnoDB
buffer pool reads), ``max_connections`` and the replication state (``SHOW REPLICA STATUS``, falling back to
``SHOW SLAVE STATUS`` on servers that predate it); every ``sizes_interval`` it adds database and table sizes from
``information_schema``. Growth is the history of those sizes (what ``forecast_capacity`` reads), not a series of its
own. Counters are stored raw; the buffer pool hit ratio is computed over the last cycle.

:func:`slow_queries` lists the statements that took the most time, from performance_schema's statement digests or
else from the slow log table. The connection is kept between cycles; a server that cannot be reached is
``mysql_up 0`` and one ``COLLECTOR_ERROR`` event when it starts failing.

Least privilege (MariaDB; on MySQL use ``REPLICATION CLIENT`` instead of ``SLAVE MONITOR``)::

    CREATE USER 'crucible'@'localhost' IDENTIFIED BY '...';
    GRANT PROCESS, SLAVE MONITOR, SHOW VIEW ON *.* TO 'crucible'@'localhost';    -- SHOW VIEW: table sizes
    GRANT SELECT ON performance_schema.* TO 'crucible'@'localhost';              -- slow_queries
    GRANT SELECT ON mysql.slow_log TO 'crucible'@'localhost';                    -- slow_queries, slow log source
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
import pymysql.cursors

from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
from crucible_monitor.config import MysqlConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind, MetricSpec, Sample, iso
from crucible_monitor.schemas import SlowQueries, SlowQuerySource, StatementDigest

__all__ = [
    "CATALOGUE",
    "MysqlCollector",
    "MysqlConfig",
    "SlowQueries",
    "SlowQuerySource",
    "StatementDigest",
    "connect",
    "describe",
    "normalise_statement",
    "slow_queries",
]

logger = logging.getLogger(__name__)

_G, _C = MetricKind.GAUGE, MetricKind.COUNTER
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("mysql_up", _G, "boolean", "1 when the server answered this cycle."),
    MetricSpec("mysql_uptime_seconds", _G, "seconds", "Seconds since the server started."),
    MetricSpec("mysql_connections", _G, "connections", "Open client connections (Threads_connected)."),
    MetricSpec("mysql_max_connections", _G, "connections", "The max_connections setting."),
    MetricSpec("mysql_connections_used_ratio", _G, "ratio", "Open connections over max_connections."),
    MetricSpec(
        "mysql_max_used_connections", _G, "connections", "Most connections open at once since the server started."
    ),
    MetricSpec("mysql_threads_running", _G, "threads", "Threads executing a statement now."),
    MetricSpec("mysql_queries_total", _C, "statements", "Statements sent by clients (Questions)."),
    MetricSpec("mysql_slow_queries_total", _C, "statements", "Statements slower than long_query_time."),
    MetricSpec("mysql_aborted_connects_total", _C, "connections", "Failed connection attempts."),
    MetricSpec(
        "mysql_innodb_buffer_pool_read_requests_total", _C, "reads", "Logical reads from the InnoDB buffer pool."
    ),
    MetricSpec(
        "mysql_innodb_buffer_pool_reads_total", _C, "reads", "Logical reads the buffer pool missed (read from disk)."
    ),
    MetricSpec(
        "mysql_innodb_buffer_pool_hit_ratio",
        _G,
        "ratio",
        "Share of buffer pool reads served from memory over the last cycle; none without reads.",
    ),
    MetricSpec("mysql_database_size_bytes", _G, "bytes", "Data and index size of a database's tables.", ("database",)),
    MetricSpec(
        "mysql_table_size_bytes",
        _G,
        "bytes",
        "Data and index size of the largest tables (top_tables of them).",
        ("database", "table"),
    ),
    MetricSpec(
        "mysql_replica_lag_seconds",
        _G,
        "seconds",
        "Seconds_Behind_Master/Source of a replication channel; none while its SQL thread is stopped.",
        ("channel",),
    ),
    MetricSpec("mysql_replica_io_running", _G, "boolean", "1 when the replica's I/O thread runs.", ("channel",)),
    MetricSpec("mysql_replica_sql_running", _G, "boolean", "1 when the replica's SQL thread runs.", ("channel",)),
)

_STATUS = {
    "Uptime": "mysql_uptime_seconds",
    "Threads_connected": "mysql_connections",
    "Max_used_connections": "mysql_max_used_connections",
    "Threads_running": "mysql_threads_running",
    "Questions": "mysql_queries_total",
    "Slow_queries": "mysql_slow_queries_total",
    "Aborted_connects": "mysql_aborted_connects_total",
    "Innodb_buffer_pool_read_requests": "mysql_innodb_buffer_pool_read_requests_total",
    "Innodb_buffer_pool_reads": "mysql_innodb_buffer_pool_reads_total",
}
_SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
_PICOSECONDS = 1e12
_ER_PARSE_ERROR = 1064
_ER_ACCESS_DENIED = 1045
_CANNOT_CONNECT = (2002, 2003, 2005, 2006, 2013)  # no socket, refused, unknown host, gone away, lost
_MAX_DIGEST_CHARS = 1000
_SLOW_LOG_ROWS = 10_000
_LITERALS = re.compile(r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"\\]|\\.)*\"|\b0x[0-9a-fA-F]+\b|\b\d+(?:\.\d+)?\b")
_LISTS = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")


def connect(
    config: MysqlConfig, *, database: str | None = None, time_zone: str | None = "+00:00"
) -> pymysql.connections.Connection[Any]:
    """A new autocommit connection; its session ``time_zone`` is UTC unless given (None: the server's); close it.

    Raises:
        pymysql.MySQLError: the server cannot be reached or refuses the credentials.
    """
    options: dict[str, Any] = {
        "host": config.host,
        "port": config.port,
        "database": database if database is not None else config.database,
        "connect_timeout": config.connect_timeout.total_seconds(),
        "read_timeout": config.connect_timeout.total_seconds() * 6,
        "autocommit": True,
        "charset": "utf8mb4",
        "init_command": f"SET time_zone = '{time_zone}'" if time_zone else None,
        "defer_connect": True,
    }
    if config.user is not None:
        options["user"] = config.user
    elif config.defaults_file is None:
        options["user"] = "crucible"
    if config.password is not None:
        options["password"] = config.password.get_secret_value()
    if config.defaults_file is not None:
        options["read_default_file"] = str(config.defaults_file)
    connection = pymysql.connect(**options)
    path = str(config.unix_socket) if config.unix_socket is not None else connection.unix_socket
    if not path:
        connection.connect()
        return connection
    # PyMySQL leaks the socket when connecting to a unix socket fails: connect it here and hand it over.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(config.connect_timeout.total_seconds())
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise pymysql.err.OperationalError(
            2002, f"Can't connect to local server through socket {path!r} ({exc.strerror})"
        ) from None
    connection.connect(sock)
    return connection


def describe(exc: pymysql.MySQLError) -> str:
    """``MySQL error <code>: <message>`` (never credentials: the server's messages do not carry them)."""
    if len(exc.args) >= 2:
        return f"MySQL error {exc.args[0]}: {exc.args[1]}"
    return str(exc) or type(exc).__name__


# ---------------------------------------------------------------------------------------------------------------
# Slow queries (an MCP tool)


def normalise_statement(sql: str) -> str:
    """A statement with its literals as ``?`` and lists of them as ``(...)``, whitespace collapsed."""
    text = _LITERALS.sub("?", " ".join(sql.split()))
    return _LISTS.sub("(...)", text)[:_MAX_DIGEST_CHARS]


def slow_queries(
    config: MysqlConfig,
    since: float,
    *,
    limit: int = 10,
    source: SlowQuerySource = "auto",
) -> SlowQueries:
    """The ``limit`` statements with the most total time among those run since ``since``.

    ``auto`` uses performance_schema's digests when it is on, else the slow log table. Blocking: call it in a
    worker thread.

    Raises:
        CollectorError: the server cannot be queried, or the source is off (the message says how to turn it on).
    """
    try:
        with connect(config) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT @@performance_schema, @@slow_query_log, @@log_output")
            performance_schema, slow_log, log_output = cursor.fetchone() or (0, 0, "")
            use_digests = source == "performance_schema" or (source == "auto" and performance_schema)
            if use_digests and not performance_schema:
                raise CollectorError("performance_schema is off: start the server with performance_schema=ON")
            if not use_digests and not (slow_log and "TABLE" in str(log_output).upper()):
                raise CollectorError(
                    "neither performance_schema nor a slow log table is on: set performance_schema=ON, or "
                    "slow_query_log=ON with log_output=TABLE (and long_query_time to the threshold you want)"
                )
            threshold = config.slow_query_threshold.total_seconds()
            if use_digests:
                return _digests(cursor, since, limit, threshold)
            return _slow_log(cursor, since, limit, threshold)
    except pymysql.MySQLError as exc:
        raise CollectorError(f"cannot read slow queries: {describe(exc)}") from None


def _utc_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _iso(value: object) -> str | None:
    return iso(value.replace(tzinfo=UTC).timestamp()) if isinstance(value, datetime) else None


def _digests(cursor: pymysql.cursors.Cursor, since: float, limit: int, threshold: float) -> SlowQueries:
    cursor.execute(
        "SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest"
        " WHERE LAST_SEEN >= %s AND DIGEST_TEXT IS NOT NULL AND MAX_TIMER_WAIT >= %s",
        (_utc_text(since), int(threshold * _PICOSECONDS)),
    )
    counted = cursor.fetchone()
    total = int(counted[0]) if counted else 0
    cursor.execute(
        "SELECT SCHEMA_NAME, DIGEST_TEXT, COUNT_STAR, SUM_TIMER_WAIT, MAX_TIMER_WAIT, SUM_ROWS_EXAMINED,"
        " SUM_ROWS_SENT, FIRST_SEEN, LAST_SEEN FROM performance_schema.events_statements_summary_by_digest"
        " WHERE LAST_SEEN >= %s AND DIGEST_TEXT IS NOT NULL AND MAX_TIMER_WAIT >= %s"
        " ORDER BY SUM_TIMER_WAIT DESC LIMIT %s",
        (_utc_text(since), int(threshold * _PICOSECONDS), limit),
    )
    statements = [
        StatementDigest(
            statement=str(text)[:_MAX_DIGEST_CHARS],
            schema_name=schema,
            calls=int(calls),
            total_seconds=round(int(total) / _PICOSECONDS, 6),
            avg_seconds=round(int(total) / _PICOSECONDS / max(int(calls), 1), 6),
            max_seconds=round(int(longest) / _PICOSECONDS, 6),
            rows_examined=int(examined),
            rows_sent=int(sent),
            first_seen=_iso(first),
            last_seen=_iso(last),
        )
        for schema, text, calls, total, longest, examined, sent, first, last in cursor.fetchall()
    ]
    return SlowQueries(
        source="performance_schema",
        since=iso(since),
        note="statements last run since `since`"
        + (f" with a run of {threshold:g} s or more (slow_query_threshold)" if threshold else "")
        + "; their totals count from first_seen (server start or digest reset)",
        total=max(total, len(statements)),
        limit=limit,
        truncated=max(total, len(statements)) > len(statements),
        statements=statements,
    )


def _slow_log(cursor: pymysql.cursors.Cursor, since: float, limit: int, threshold: float) -> SlowQueries:
    cursor.execute(
        "SELECT start_time, query_time, rows_sent, rows_examined, db, sql_text FROM mysql.slow_log"
        " WHERE start_time >= %s AND query_time >= SEC_TO_TIME(%s) ORDER BY start_time DESC LIMIT %s",
        (_utc_text(since), threshold, _SLOW_LOG_ROWS),
    )
    rows = cursor.fetchall()
    groups: dict[tuple[str | None, str], list[tuple[datetime, float, int, int]]] = {}
    for started, took, sent, examined, db, text in rows:
        sql = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        seconds = took.total_seconds() if isinstance(took, timedelta) else float(took)
        groups.setdefault((db or None, normalise_statement(sql)), []).append((started, seconds, sent, examined))
    statements = [
        StatementDigest(
            statement=statement,
            schema_name=db,
            calls=len(runs),
            total_seconds=round(sum(r[1] for r in runs), 6),
            avg_seconds=round(sum(r[1] for r in runs) / len(runs), 6),
            max_seconds=round(max(r[1] for r in runs), 6),
            rows_examined=sum(int(r[3]) for r in runs),
            rows_sent=sum(int(r[2]) for r in runs),
            first_seen=_iso(min(r[0] for r in runs)),
            last_seen=_iso(max(r[0] for r in runs)),
        )
        for (db, statement), runs in groups.items()
    ]
    statements.sort(key=lambda s: s.total_seconds, reverse=True)
    return SlowQueries(
        source="slow_log",
        since=iso(since),
        note=f"statements in mysql.slow_log since `since` (the newest {_SLOW_LOG_ROWS} at most)"
        + (f" that took {threshold:g} s or more (slow_query_threshold)" if threshold else ""),
        total=len(statements),
        limit=limit,
        truncated=len(statements) > limit or len(rows) >= _SLOW_LOG_ROWS,
        statements=statements[:limit],
    )


# ---------------------------------------------------------------------------------------------------------------
# The collector


class MysqlCollector:
    """Server status, connections, replication and sizes of one MySQL/MariaDB server."""

    name = "mysql"
    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(self, config: MysqlConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._connection: pymysql.connections.Connection[Any] | None = None
        self._buffer_pool: tuple[float, float] | None = None
        self._sizes_at: float | None = None
        self._replica_statement = "SHOW REPLICA STATUS"
        self._problems = Problems(self.name, "mysql")

    async def collect(self) -> Collection:
        """Query the server once (in a worker thread: PyMySQL blocks)."""
        return await asyncio.to_thread(self._collect)

    async def aclose(self) -> None:
        """Close the connection."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except pymysql.MySQLError:
                logger.debug("closing the MySQL connection failed")

    def _collect(self) -> Collection:
        now = self._clock()
        problems: list[str | BlindSpot] = []
        try:
            if self._connection is None:
                self._connection = connect(self.config)
            with self._connection.cursor() as cursor:
                samples = self._status(cursor)
                samples += self._replication(cursor, problems)
                if self._sizes_at is None or now - self._sizes_at >= self.config.sizes_interval.total_seconds():
                    samples += self._sizes(cursor)
                    self._sizes_at = now
        except pymysql.MySQLError as exc:
            self._close()
            self._buffer_pool = None
            problems.append(self._blind(exc))
            samples = [Sample("mysql_up", 0.0)]
        else:
            samples.append(Sample("mysql_up", 1.0))
        return self._problems.collection(samples, problems, now)

    def _blind(self, exc: pymysql.MySQLError) -> BlindSpot:
        """The server as a blind spot, under the setting most likely wrong for this error."""
        config = self.config
        where = str(config.unix_socket) if config.unix_socket is not None else f"{config.host}:{config.port}"
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        key = "collectors.mysql"
        if code == _ER_ACCESS_DENIED:
            wrong = "defaults_file" if config.password is None and config.defaults_file is not None else "password"
            key += f".{wrong}"
        elif code in _CANNOT_CONNECT:
            key += ".unix_socket" if config.unix_socket is not None else ".host"
        return BlindSpot(f"server {where}", key, f"cannot query the server: {describe(exc)}")

    def _status(self, cursor: pymysql.cursors.Cursor) -> list[Sample]:
        names = ", ".join(f"'{name}'" for name in _STATUS)
        cursor.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
        status = {str(name): float(value) for name, value in cursor.fetchall()}
        cursor.execute("SELECT @@max_connections")
        (max_connections,) = cursor.fetchone() or (0,)
        samples = [Sample(metric, status[name]) for name, metric in _STATUS.items() if name in status]
        samples.append(Sample("mysql_max_connections", float(max_connections)))
        if max_connections and "Threads_connected" in status:
            ratio = round(status["Threads_connected"] / float(max_connections), 4)
            samples.append(Sample("mysql_connections_used_ratio", ratio))
        requests = status.get("Innodb_buffer_pool_read_requests")
        misses = status.get("Innodb_buffer_pool_reads")
        if requests is not None and misses is not None:
            previous, self._buffer_pool = self._buffer_pool, (requests, misses)
            if previous is not None and requests > previous[0] and misses >= previous[1]:
                hit = 1 - (misses - previous[1]) / (requests - previous[0])
                samples.append(Sample("mysql_innodb_buffer_pool_hit_ratio", round(max(hit, 0.0), 6)))
        return samples

    def _replication(self, cursor: pymysql.cursors.Cursor, problems: list[str | BlindSpot]) -> list[Sample]:
        try:
            cursor.execute(self._replica_statement)
        except pymysql.err.ProgrammingError as exc:
            if exc.args[0] != _ER_PARSE_ERROR or self._replica_statement == "SHOW SLAVE STATUS":
                raise
            self._replica_statement = "SHOW SLAVE STATUS"  # MySQL < 8.0.22, MariaDB < 10.5.1
            cursor.execute(self._replica_statement)
        except pymysql.err.OperationalError as exc:  # e.g. 1227: the user lacks SLAVE MONITOR / REPLICATION CLIENT
            problems.append(f"replication status: {describe(exc)}")
            return []
        columns = [column[0] for column in cursor.description or ()]
        samples: list[Sample] = []
        for row in cursor.fetchall():
            fields = dict(zip(columns, row, strict=True))
            labels = {"channel": str(fields.get("Channel_Name") or fields.get("Connection_name") or "")}
            io = fields.get("Replica_IO_Running", fields.get("Slave_IO_Running"))
            sql = fields.get("Replica_SQL_Running", fields.get("Slave_SQL_Running"))
            lag = fields.get("Seconds_Behind_Source", fields.get("Seconds_Behind_Master"))
            samples.append(Sample("mysql_replica_io_running", 1.0 if io == "Yes" else 0.0, labels))
            samples.append(Sample("mysql_replica_sql_running", 1.0 if sql == "Yes" else 0.0, labels))
            if lag is not None:
                samples.append(Sample("mysql_replica_lag_seconds", float(lag), labels))
        return samples

    def _sizes(self, cursor: pymysql.cursors.Cursor) -> list[Sample]:
        excluded = ", ".join(f"'{schema}'" for schema in _SYSTEM_SCHEMAS)
        cursor.execute(f"SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ({excluded})")
        databases = dict.fromkeys((str(name) for (name,) in cursor.fetchall()), 0.0)
        cursor.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0)"
            f" FROM information_schema.TABLES WHERE TABLE_SCHEMA NOT IN ({excluded}) AND TABLE_TYPE = 'BASE TABLE'"
        )
        tables = [(str(schema), str(table), float(size)) for schema, table, size in cursor.fetchall()]
        for schema, _, size in tables:
            databases[schema] = databases.get(schema, 0.0) + size
        samples = [
            Sample("mysql_database_size_bytes", size, {"database": db}) for db, size in sorted(databases.items())
        ]
        largest = sorted(tables, key=lambda t: t[2], reverse=True)[: self.config.top_tables]
        samples += [
            Sample("mysql_table_size_bytes", size, {"database": schema, "table": table})
            for schema, table, size in largest
        ]
        return samples
