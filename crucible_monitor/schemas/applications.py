"""Application drill-downs: MySQL slow queries, Laravel errors, access-log endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = [
    "EndpointRanking",
    "EndpointStats",
    "ExceptionCount",
    "FailedJob",
    "LogError",
    "RecentErrors",
    "SlowQueries",
    "SlowQuerySource",
    "StatementDigest",
    "TopEndpoints",
]


SlowQuerySource = Literal["auto", "performance_schema", "slow_log"]
"""Where slow queries are read: ``auto`` takes performance_schema when it is on, else the slow log table."""

EndpointRanking = Literal["latency", "errors"]
"""How top endpoints are ranked: slowest first, or most failing first."""


class StatementDigest(BaseModel):
    """One normalised statement and the time it took."""

    model_config = ConfigDict(frozen=True)

    statement: str
    """Literals replaced by ``?`` (performance_schema's digest text, or the same done to the slow log's text)."""
    schema_name: str | None
    calls: int
    total_seconds: float
    avg_seconds: float
    max_seconds: float
    rows_examined: int
    rows_sent: int
    first_seen: str | None
    last_seen: str | None


class SlowQueries(BaseModel):
    """The statements that took the most time in total."""

    model_config = ConfigDict(frozen=True)

    source: Literal["performance_schema", "slow_log"]
    since: str
    note: str
    """What the totals cover."""
    total: int
    """Statements (digests) that matched."""
    limit: int
    truncated: bool
    """Fewer statements are listed than matched (or the slow log held more rows than were read)."""
    statements: list[StatementDigest]


class LogError(BaseModel):
    """One error (or worse) log entry."""

    model_config = ConfigDict(frozen=True)

    ts: str
    level: str
    channel: str
    message: str
    exception: str | None
    file: str
    """The log file's name."""
    count: int = 1
    """Identical entries (same file, level, channel, exception and message) in the range; ``ts`` is the newest's."""
    first_seen: str | None = None
    """The oldest identical entry's time, when ``count`` > 1."""


class FailedJob(BaseModel):
    """One row of ``failed_jobs``."""

    model_config = ConfigDict(frozen=True)

    id: str
    failed_at: str
    connection: str
    queue: str
    job: str | None
    """The job's class (the payload's displayName)."""
    exception: str | None
    exception_message: str | None


class ExceptionCount(BaseModel):
    """How often one exception class was logged in the range."""

    model_config = ConfigDict(frozen=True)

    exception: str
    count: int
    last_seen: str


class RecentErrors(BaseModel):
    """An app's errors since a time: log entries of level error and above, and failed jobs."""

    model_config = ConfigDict(frozen=True)

    app: str
    since: str
    errors_total: int
    """Error entries in the range, repeats included."""
    by_level: dict[str, int]
    top_exceptions: list[ExceptionCount]
    total: int
    """Distinct entries (repeats grouped) in the range; ``errors`` lists the newest ``limit`` of them."""
    limit: int
    truncated: bool
    """``errors`` shows fewer than ``total``, or the logs were larger than the scan budget."""
    scan_incomplete: bool
    """The logs were larger than the scan budget (64 MiB): older entries in the range were not read."""
    errors: list[LogError]
    failed_jobs: list[FailedJob]
    failed_jobs_truncated: bool
    """More jobs failed in the range than ``limit``."""
    problems: list[str]
    """What could not be read: a log file, or failed jobs (no database_url, or the database's error)."""


class EndpointStats(BaseModel):
    """One endpoint's requests in a time range."""

    model_config = ConfigDict(frozen=True)

    vhost: str
    method: str
    path: str
    requests: int
    client_errors: int
    server_errors: int
    server_error_ratio: float
    avg_seconds: float | None
    p95_seconds: float | None
    """The upper bound of the histogram bucket holding the 95th percentile: at most 19 % above the true value."""
    max_seconds: float | None


class TopEndpoints(BaseModel):
    """The slowest or the most failing endpoints of one vhost (or all) over a time range."""

    model_config = ConfigDict(frozen=True)

    host: str | None
    by: EndpointRanking
    since: str
    until: str
    requests: int
    """All requests of the host (or all hosts) in the range."""
    total: int
    """Endpoints that qualify for the ranking (timed requests for latency, 4xx or 5xx for errors)."""
    limit: int
    truncated: bool
    endpoints: list[EndpointStats]
