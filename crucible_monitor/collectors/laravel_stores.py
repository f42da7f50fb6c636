"""A Laravel app's data stores, its SQL database and its Redis: connections, the failed_jobs query, error texts.

Database and Redis URLs may hold passwords: they are secrets, never logged or shown.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import zoneinfo
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql
import redis
from pydantic import SecretStr

from crucible_monitor.collectors import mysql
from crucible_monitor.collectors.laravel_logs import MAX_MESSAGE_CHARS
from crucible_monitor.config import LaravelAppConfig, MysqlConfig
from crucible_monitor.models import iso
from crucible_monitor.schemas import FailedJob

__all__ = ["AppDatabase", "connect_redis", "describe_error", "failed_jobs"]

logger = logging.getLogger(__name__)

_TIMEOUT_SECONDS = 5.0
_DISPLAY_NAME = re.compile(r'"displayName"\s*:\s*"((?:[^"\\]|\\.)*)"')
_THROWABLE = re.compile(r"^((?:[A-Za-z_][A-Za-z0-9_]*\\)*[A-Za-z_][A-Za-z0-9_]*): (.*?)(?: in /\S+:\d+)?$")


class AppDatabase:
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

    @property
    def schema(self) -> str | None:
        """The MySQL database (schema) the URL names; None for SQLite or a URL without one."""
        return None if self._sqlite_path is not None else self._name

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


def connect_redis(url: SecretStr, db: int | None = None) -> redis.Redis:
    """A client of the app's Redis (it connects on first use), on database ``db`` if given, else the URL's."""
    pool = redis.ConnectionPool.from_url(
        url.get_secret_value(), socket_timeout=_TIMEOUT_SECONDS, socket_connect_timeout=_TIMEOUT_SECONDS
    )
    if db is not None:
        pool.connection_kwargs["db"] = db
    return redis.Redis.from_pool(pool)  # the client owns the pool: close() closes it


def _naive(ts: float, zone: zoneinfo.ZoneInfo) -> str:
    """``ts`` as the app writes times into its database: local wall-clock text without a zone."""
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M:%S")


def _timestamp(value: object, zone: zoneinfo.ZoneInfo) -> float:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()


def failed_jobs(database: AppDatabase, app: LaravelAppConfig, since: float, limit: int) -> list[FailedJob]:
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
                exception_message=(throwable.group(2) if throwable else first_line)[:MAX_MESSAGE_CHARS] or None,
            )
        )
    return jobs


def describe_error(exc: BaseException) -> str:
    """What went wrong with a store, without the URL (it may hold a password)."""
    if isinstance(exc, pymysql.MySQLError):
        return mysql.describe(exc)
    return str(exc) or type(exc).__name__
