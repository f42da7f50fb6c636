"""The system snapshot: the newest points of the system collector arranged for people and tools."""

from __future__ import annotations

from collections import defaultdict

from crucible_monitor.models import iso, labels_match
from crucible_monitor.schemas import (
    CpuView,
    DiskView,
    FilesystemView,
    InterfaceView,
    MemoryView,
    ProcessSnapshot,
    SystemSnapshot,
)
from crucible_monitor.storage.store import LatestPoint

__all__ = ["system_snapshot"]


def system_snapshot(points: list[LatestPoint], host: str, top_processes: ProcessSnapshot | None) -> SystemSnapshot:
    """The newest system readings, with rates for counters, from the store's newest points."""
    latest = _Latest(points)
    return SystemSnapshot(
        host=host,
        ts=iso(latest.newest) if latest.newest else None,
        uptime_seconds=latest.value("uptime_seconds"),
        load={w: v for w in ("1m", "5m", "15m") if (v := latest.value(f"load{w[:-1]}")) is not None},
        cpu=CpuView(
            count=_int(latest.value("cpu_count")),
            usage_ratio=latest.value("cpu_usage_ratio", cpu="total"),
            per_cpu={p.labels["cpu"]: p.value for p in latest.series("cpu_usage_ratio") if p.labels["cpu"] != "total"},
            modes={p.labels["mode"]: p.value for p in latest.series("cpu_mode_ratio", cpu="total")},
        ),
        memory=MemoryView(
            total_bytes=latest.value("memory_total_bytes"),
            used_bytes=latest.value("memory_used_bytes"),
            available_bytes=latest.value("memory_available_bytes"),
            used_ratio=latest.value("memory_used_ratio"),
            cached_bytes=latest.value("memory_cached_bytes"),
            swap_total_bytes=latest.value("swap_total_bytes"),
            swap_used_bytes=latest.value("swap_used_bytes"),
            swap_used_ratio=latest.value("swap_used_ratio"),
        ),
        filesystems=[
            FilesystemView(
                mountpoint=labels["mountpoint"],
                device=labels.get("device"),
                fstype=labels.get("fstype"),
                size_bytes=latest.value("filesystem_size_bytes", **labels),
                used_bytes=latest.value("filesystem_used_bytes", **labels),
                avail_bytes=latest.value("filesystem_avail_bytes", **labels),
                used_ratio=latest.value("filesystem_used_ratio", **labels),
                inodes_used_ratio=latest.value("filesystem_inodes_used_ratio", **labels),
            )
            for labels in latest.label_sets("filesystem_size_bytes")
        ],
        disks=[
            DiskView(
                device=labels["device"],
                read_bytes_per_second=latest.rate("disk_read_bytes_total", **labels),
                write_bytes_per_second=latest.rate("disk_written_bytes_total", **labels),
                reads_per_second=latest.rate("disk_reads_total", **labels),
                writes_per_second=latest.rate("disk_writes_total", **labels),
                busy_ratio=latest.rate("disk_io_time_seconds_total", **labels),
            )
            for labels in latest.label_sets("disk_reads_total")
        ],
        network=[
            InterfaceView(
                interface=labels["interface"],
                receive_bytes_per_second=latest.rate("network_receive_bytes_total", **labels),
                transmit_bytes_per_second=latest.rate("network_transmit_bytes_total", **labels),
                errors_per_second=_sum(
                    latest.rate("network_receive_errors_total", **labels),
                    latest.rate("network_transmit_errors_total", **labels),
                ),
                drops_per_second=_sum(
                    latest.rate("network_receive_drops_total", **labels),
                    latest.rate("network_transmit_drops_total", **labels),
                ),
            )
            for labels in latest.label_sets("network_receive_bytes_total")
        ],
        pressure={f"{p.labels['resource']}_{p.labels['kind']}": p.value for p in latest.series("pressure_stall_ratio")},
        processes={
            name: value
            for name in ("processes_count", "processes_running", "processes_blocked")
            if (value := latest.value(name)) is not None
        },
        top_processes=top_processes,
    )


class _Latest:
    """Index over the newest points for building snapshots."""

    def __init__(self, points: list[LatestPoint]) -> None:
        self.by_metric: dict[str, list[LatestPoint]] = defaultdict(list)
        for point in points:
            self.by_metric[point.metric].append(point)
        self.newest = max((p.ts for p in points), default=None)

    def series(self, metric: str, **labels: str) -> list[LatestPoint]:
        return [p for p in self.by_metric.get(metric, []) if labels_match(p.labels, labels)]

    def _one(self, metric: str, labels: dict[str, str]) -> LatestPoint | None:
        return next((p for p in self.series(metric, **labels) if p.labels == labels or not labels), None)

    def value(self, metric: str, **labels: str) -> float | None:
        point = self._one(metric, labels)
        return point.value if point else None

    def rate(self, metric: str, **labels: str) -> float | None:
        point = self._one(metric, labels)
        return point.rate() if point else None

    def label_sets(self, metric: str) -> list[dict[str, str]]:
        return sorted((p.labels for p in self.by_metric.get(metric, [])), key=lambda labels: sorted(labels.items()))


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _sum(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None
