"""The agent's own health: collector runs, errors and durations, memory, CPU and storage size."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from crucible_monitor.collectors.base import Collection, CollectorHealth
from crucible_monitor.models import MetricKind, MetricSpec, Sample

if TYPE_CHECKING:
    from crucible_monitor.storage.store import StoreStats

__all__ = ["CATALOGUE", "AgentCollector"]

CATALOGUE = (
    MetricSpec("agent_collector_runs_total", MetricKind.COUNTER, "runs", "Collections run.", ("collector",)),
    MetricSpec("agent_collector_errors_total", MetricKind.COUNTER, "errors", "Collections failed.", ("collector",)),
    MetricSpec(
        "agent_collector_duration_seconds", MetricKind.GAUGE, "seconds", "Duration of the last run.", ("collector",)
    ),
    MetricSpec("agent_resident_memory_bytes", MetricKind.GAUGE, "bytes", "Resident memory of the agent process."),
    MetricSpec("agent_cpu_seconds_total", MetricKind.COUNTER, "seconds", "CPU time used by the agent process."),
    MetricSpec("agent_storage_bytes", MetricKind.GAUGE, "bytes", "Bytes of metric data on disk.", ("kind",)),
)

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class AgentCollector:
    """Samples of the agent itself, read from ``/proc/self`` and the agent's bookkeeping."""

    name = "agent"
    catalogue = CATALOGUE

    def __init__(
        self,
        health: Callable[[], Mapping[str, CollectorHealth]],
        storage: Callable[[], StoreStats],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._health = health
        self._storage = storage
        self._clock = clock

    async def collect(self) -> Collection:
        """One reading of the agent's own numbers."""
        now = self._clock()
        samples = []
        for name, health in self._health().items():
            labels = {"collector": name}
            samples.append(Sample("agent_collector_runs_total", health.runs, labels, now))
            samples.append(Sample("agent_collector_errors_total", health.errors_total, labels, now))
            if health.last_duration is not None:
                samples.append(Sample("agent_collector_duration_seconds", round(health.last_duration, 6), labels, now))
        fields = Path("/proc/self/stat").read_text(encoding="ascii").rpartition(")")[2].split()
        samples.append(Sample("agent_cpu_seconds_total", (int(fields[11]) + int(fields[12])) / _TICKS, {}, now))
        resident = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1]) * _PAGE
        samples.append(Sample("agent_resident_memory_bytes", resident, {}, now))
        stats = self._storage()
        samples.append(Sample("agent_storage_bytes", stats.disk_bytes - stats.wal_bytes, {"kind": "parquet"}, now))
        samples.append(Sample("agent_storage_bytes", stats.wal_bytes, {"kind": "wal"}, now))
        return Collection(samples=samples)
