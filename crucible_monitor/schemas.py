"""What the Monitor's operations return: pydantic models shared by the HTTP API, MCP, the CLI and RemoteMonitor."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from crucible_monitor.collectors.http_checks import CheckResult
from crucible_monitor.collectors.processes import ProcessSnapshot
from crucible_monitor.collectors.services import ServiceStatus

__all__ = [
    "CheckResult",
    "CollectorStatus",
    "ConfigUpdate",
    "CpuView",
    "DiskView",
    "EventView",
    "FilesystemView",
    "Health",
    "HistorySeries",
    "InterfaceView",
    "MemoryView",
    "MetricHistory",
    "MetricInfo",
    "ProcessSnapshot",
    "ServiceStatus",
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


class EventView(BaseModel):
    """A stored event."""

    id: int
    ts: str
    kind: str
    subject: str
    severity: str
    message: str
    data: dict[str, Any]


class ConfigUpdate(BaseModel):
    """The outcome of applying a config change live."""

    applied: bool
    changed: list[str] = Field(description="Top-level sections that changed.")
    config: dict[str, Any] = Field(description="The config now in force, secrets redacted.")
    persisted: bool = Field(False, description="Live changes are not written back to the config file.")
