"""What the Monitor's operations return: pydantic models shared by the HTTP API, MCP, the CLI and RemoteMonitor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from crucible_monitor.analysis.results import EventRef
from crucible_monitor.collectors.http_checks import CheckResult
from crucible_monitor.collectors.processes import ProcessSnapshot
from crucible_monitor.collectors.services import ServiceStatus

if TYPE_CHECKING:
    from crucible_monitor.storage.state import StoredEvent

__all__ = [
    "ServiceState",
    "AuditView",
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
    "CheckResult",
    "CollectorStatus",
    "ConfigUpdate",
    "CpuView",
    "DiskView",
    "EventView",
    "FilesystemView",
    "Finding",
    "Health",
    "HistorySeries",
    "InterfaceView",
    "LogTail",
    "MemoryView",
    "MetricHistory",
    "MetricInfo",
    "MetricReport",
    "MetricsReport",
    "ProcessSnapshot",
    "ProcessView",
    "Quantity",
    "RestartResult",
    "SeriesReport",
    "ServiceDetail",
    "ServiceStatus",
    "StatusSummary",
    "StorageView",
    "SystemSnapshot",
]


class CollectorStatus(BaseModel):
    """How one collector has been doing since the agent started."""

    name: str
    ok: bool
    interval_seconds: float
    runs: int
    errors_total: int
    last_run: str | None = Field(None, description="ISO 8601")
    last_duration_seconds: float | None = None
    samples_last_run: int = 0
    last_error: str | None = Field(None, description="Only on authenticated endpoints.")


class StorageView(BaseModel):
    """Bytes on disk and rows waiting in the WAL."""

    disk_bytes: int
    wal_bytes: int
    pending_rows: int
    days: dict[str, int] = Field(description="Days held per tier (raw, 1m, 1h).")


class Health(BaseModel):
    """Liveness and a summary of the agent's own state."""

    status: Literal["ok", "degraded"]
    version: str
    host: str
    started_at: str | None
    uptime_seconds: float
    collectors: list[CollectorStatus]
    storage: StorageView | None = None


class CpuView(BaseModel):
    """CPU usage over the last collection interval (ratios in 0..1)."""

    count: int | None = None
    usage_ratio: float | None = None
    per_cpu: dict[str, float] = Field(default_factory=dict)
    modes: dict[str, float] = Field(default_factory=dict)


class MemoryView(BaseModel):
    """Memory and swap in bytes."""

    total_bytes: float | None = None
    used_bytes: float | None = None
    available_bytes: float | None = None
    used_ratio: float | None = None
    cached_bytes: float | None = None
    swap_total_bytes: float | None = None
    swap_used_bytes: float | None = None
    swap_used_ratio: float | None = None


class FilesystemView(BaseModel):
    """One mounted filesystem."""

    mountpoint: str
    device: str | None = None
    fstype: str | None = None
    size_bytes: float | None = None
    used_bytes: float | None = None
    avail_bytes: float | None = None
    used_ratio: float | None = None
    inodes_used_ratio: float | None = None


class DiskView(BaseModel):
    """I/O rates of one block device (None until two readings exist)."""

    device: str
    read_bytes_per_second: float | None = None
    write_bytes_per_second: float | None = None
    reads_per_second: float | None = None
    writes_per_second: float | None = None
    busy_ratio: float | None = None


class InterfaceView(BaseModel):
    """Traffic rates of one network interface (None until two readings exist)."""

    interface: str
    receive_bytes_per_second: float | None = None
    transmit_bytes_per_second: float | None = None
    errors_per_second: float | None = None
    drops_per_second: float | None = None


class SystemSnapshot(BaseModel):
    """The newest system readings."""

    host: str
    ts: str | None = Field(description="ISO 8601 time of the newest reading")
    uptime_seconds: float | None = None
    load: dict[str, float] = Field(default_factory=dict, description="1m, 5m, 15m load averages")
    cpu: CpuView
    memory: MemoryView
    filesystems: list[FilesystemView]
    disks: list[DiskView]
    network: list[InterfaceView]
    pressure: dict[str, float] = Field(default_factory=dict, description="resource_kind → stall ratio (avg10)")
    processes: dict[str, float] = Field(default_factory=dict)
    top_processes: ProcessSnapshot | None = None


class MetricInfo(BaseModel):
    """One entry of the metric catalogue."""

    name: str
    kind: Literal["gauge", "counter"]
    unit: str
    description: str
    labels: list[str]
    collector: str


class HistorySeries(BaseModel):
    """One series of a history query: ``points`` are ``[unix_seconds, value]`` pairs."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class MetricHistory(BaseModel):
    """The result of a history query."""

    metric: str
    kind: Literal["gauge", "counter"]
    unit: str
    agg: str
    start: str
    end: str
    step_seconds: float
    tiers: list[str] = Field(description="Storage tiers the points came from (raw, 1m, 1h).")
    series: list[HistorySeries]


class EventView(EventRef):
    """A stored event, with its data."""

    data: dict[str, Any]

    @classmethod
    def of(cls, stored: StoredEvent) -> Self:
        """The view of an event as ``state.db`` holds it."""
        return cls.model_validate({**EventRef.of(stored).model_dump(), "data": dict(stored.event.data)})


class ConfigUpdate(BaseModel):
    """The outcome of applying a config change live."""

    applied: bool
    changed: list[str] = Field(description="Top-level sections that changed.")
    config: dict[str, Any] = Field(description="The config now in force, secrets redacted.")
    persisted: bool = Field(False, description="Live changes are not written back to the config file.")


class Quantity(BaseModel):
    """A raw value with its unit and the form people read."""

    value: float
    unit: str
    human: str


class ProcessView(BaseModel):
    """A process as people read it."""

    pid: int
    name: str
    user: str
    cmdline: str
    cpu: Quantity | None = Field(description="CPU in cores over the last snapshot interval (None: first seen).")
    memory: Quantity
    started_at: str | None = Field(description="ISO 8601")


class Finding(BaseModel):
    """One thing that is wrong (or worth knowing), for the status summary."""

    severity: Literal["critical", "warning", "info"]
    subject: str = Field(description="What it is about: 'disk /var', 'service php8.2-fpm', 'check homepage'.")
    problem: str = Field(description="What is wrong, how bad, against which threshold.")
    since: str | None = Field(None, description="ISO 8601: since when it has been so, when known.")
    value: Quantity | None = None
    hint: str = Field(description="What to look at next (a tool call).")


class StatusSummary(BaseModel):
    """A one-call health summary: what is wrong first, then the vital signs."""

    host: str
    ts: str
    status: Literal["ok", "warning", "critical"]
    headline: str
    findings: list[Finding] = Field(description="Most urgent first.")
    vitals: dict[str, Quantity] = Field(description="CPU, memory, swap, load, each disk: value, unit, human form.")
    services: dict[str, int] = Field(description="total, up, down")
    checks: dict[str, int] = Field(description="total, failing")
    alerts: dict[str, int] = Field(description="firing, pending, acknowledged")
    top_by_cpu: list[ProcessView] = Field(description="The top 5 processes by CPU (cores) at the last snapshot.")
    top_by_memory: list[ProcessView] = Field(description="The top 5 processes by resident memory.")
    hints: list[str]


class SeriesReport(BaseModel):
    """One series of a metrics report: summary statistics and a bounded number of points."""

    labels: dict[str, str]
    points: list[tuple[str, float]] = Field(description="[ISO 8601 time, value], at most max_points")
    stats: dict[str, float] = Field(description="min, max, avg, p95, last over the range")
    human: dict[str, str] = Field(description="The same statistics as people read them")


class MetricReport(BaseModel):
    """One metric over a range, summarised."""

    metric: str
    kind: Literal["gauge", "counter"]
    unit: str = Field(description="Unit of the values: a counter's rate is per second.")
    description: str
    agg: str
    start: str
    end: str
    step_seconds: float
    series: list[SeriesReport]
    series_total: int = Field(description="Series that matched, before the report kept the top ones.")


class MetricsReport(BaseModel):
    """The result of get_metrics: one report per metric (several for a group)."""

    reports: list[MetricReport]
    hint: str


class LogTail(BaseModel):
    """The last lines of a service's log or of a configured log file."""

    source: str
    kind: Literal["journal", "supervisor", "file"]
    lines: list[str]
    filter: str | None = None
    truncated: bool = Field(description="True when more lines matched than were returned.")


class ServiceDetail(BaseModel):
    """One service: its state, recent state changes and restarts, and its last log lines."""

    service: ServiceStatus
    recent_events: list[EventView]
    log: LogTail | None
    log_error: str | None = None
    hint: str


class RestartResult(BaseModel):
    """What a restart request did."""

    service: str
    manager: str
    result: Literal["restarted", "dry_run", "declined", "failed"]
    message: str
    before: ServiceStatus | None = None
    after: ServiceStatus | None = None
    audit_id: int
    restarts_left: int = Field(description="Restarts left in the budget window after this one.")


class AuditView(BaseModel):
    """An audit record of an action attempted on the host."""

    id: int
    ts: str
    actor: str
    action: str
    target: str
    reason: str
    dry_run: bool
    result: str
    detail: str
    state_before: dict[str, Any] | None
    state_after: dict[str, Any] | None


# -- application drill-downs ------------------------------------------------------------------------------------

SlowQuerySource = Literal["auto", "performance_schema", "slow_log"]
ServiceState = Literal["all", "up", "down"]
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
    """Error entries in the range (``errors`` lists the newest ``limit`` of them)."""
    by_level: dict[str, int]
    top_exceptions: list[ExceptionCount]
    errors: list[LogError]
    failed_jobs: list[FailedJob]
    problems: list[str]
    """What could not be read: a log file, or failed jobs (no database_url, or the database's error)."""
    truncated: bool
    """The logs were larger than the scan budget (64 MiB): older entries in the range were not read."""


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
    endpoints: list[EndpointStats]
