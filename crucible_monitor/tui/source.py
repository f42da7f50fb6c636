"""What the dashboard reads from the agent, and what it remembers between refreshes.

Everything comes from the HTTP API through :class:`~crucible_monitor.remote.RemoteMonitor` (typed as
:class:`~crucible_monitor.operations.Operations`); one refresh is :func:`~crucible_monitor.cli_status.fetch_status`,
the same reads ``crucible-monitor status`` makes. :class:`Trends` keeps the last values of each vital sign for the
sparklines: seeded once from the history operation, then fed by every refresh.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from crucible_monitor.cli_status import StatusData, fetch_status
from crucible_monitor.errors import CrucibleError
from crucible_monitor.operations import Operations
from crucible_monitor.remote import AgentUnavailable
from crucible_monitor.schemas import AnomalyView, MetricHistory, SystemSnapshot

__all__ = [
    "Connection",
    "Context",
    "GpuRow",
    "StatusData",
    "Trends",
    "fetch_status",
    "gpu_rows",
    "recent_anomalies",
    "seed_trends",
    "vitals",
]

TREND_POINTS = 120
"""Values each sparkline keeps (at the default 2 s refresh: four minutes)."""
SEED_WINDOW = 600.0
"""Seconds of history the sparklines start with."""

# vital → (metric, label filter, agg): what the history operation holds for each sparkline
_SEEDS: dict[str, tuple[str, dict[str, str], str | None]] = {
    "cpu": ("cpu_usage_ratio", {"cpu": "total"}, None),
    "memory": ("memory_used_ratio", {}, None),
    "swap": ("swap_used_ratio", {}, None),
    "load": ("load1", {}, None),
    "net rx": ("network_receive_bytes_total", {}, "rate"),
    "net tx": ("network_transmit_bytes_total", {}, "rate"),
}


@dataclass
class Trends:
    """The recent values of each vital sign, oldest first, at most :data:`TREND_POINTS` each."""

    series: dict[str, deque[float]] = field(default_factory=dict)

    def add(self, name: str, value: float | None) -> None:
        """Append ``value`` to ``name``'s series (a missing reading adds nothing)."""
        if value is not None:
            self.series.setdefault(name, deque(maxlen=TREND_POINTS)).append(float(value))

    def extend(self, name: str, values: Iterable[float]) -> None:
        """Append several values, oldest first."""
        for value in values:
            self.add(name, value)

    def values(self, name: str) -> list[float]:
        """``name``'s values, oldest first (empty when none were seen)."""
        return list(self.series.get(name, ()))

    def record(self, system: SystemSnapshot) -> None:
        """Feed one refresh's snapshot."""
        for name, value in vitals(system).items():
            self.add(name, value)


def vitals(system: SystemSnapshot) -> dict[str, float | None]:
    """The value of each sparkline in one snapshot: ratios, load, bytes/s summed over interfaces, disks by mount."""
    values: dict[str, float | None] = {
        "cpu": system.cpu.usage_ratio,
        "memory": system.memory.used_ratio,
        "swap": system.memory.swap_used_ratio,
        "load": system.load.get("1m"),
        "net rx": _total(i.receive_bytes_per_second for i in system.network),
        "net tx": _total(i.transmit_bytes_per_second for i in system.network),
    }
    for fs in system.filesystems:
        values[f"disk {fs.mountpoint}"] = fs.used_ratio
    return values


def _total(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


async def seed_trends(ops: Operations, trends: Trends, mountpoints: Iterable[str], now: float | None = None) -> None:
    """Start each sparkline with the last :data:`SEED_WINDOW` seconds of history; a metric the agent lacks (no
    swap) or an error leaves that sparkline to fill from the refreshes."""
    end = time.time() if now is None else now
    wanted = dict(_SEEDS)
    for mountpoint in mountpoints:
        wanted[f"disk {mountpoint}"] = ("filesystem_used_ratio", {"mountpoint": mountpoint}, None)

    async def one(name: str, metric: str, labels: Mapping[str, str], agg: str | None) -> None:
        try:
            history = await ops.history(
                metric, start=end - SEED_WINDOW, end=end, agg=agg, labels=dict(labels) or None, step=5.0
            )
        except AgentUnavailable:
            raise
        except CrucibleError:
            return
        trends.extend(name, _summed(history))

    await asyncio.gather(*(one(name, *seed) for name, seed in wanted.items()))


def _summed(history: MetricHistory) -> list[float]:
    """The series of ``history`` added up per timestamp (network rates over interfaces), oldest first."""
    totals: dict[float, float] = {}
    for series in history.series:
        for ts, value in series.points:
            totals[ts] = totals.get(ts, 0.0) + value
    return [totals[ts] for ts in sorted(totals)]


ANOMALY_WINDOW = 3600.0
"""Seconds back the overview lists anomalies for."""


async def recent_anomalies(ops: Operations, now: float, limit: int = 10) -> list[AnomalyView]:
    """The anomalies of the last :data:`ANOMALY_WINDOW` seconds, newest first; none when the agent cannot say."""
    try:
        found: list[AnomalyView] = await ops.list_anomalies(since=now - ANOMALY_WINDOW, limit=limit)
    except AgentUnavailable:
        raise
    except CrucibleError:
        return []
    return sorted(found, key=lambda a: a.start, reverse=True)


GPU_WINDOW = 120.0
"""Seconds of GPU readings the panel reads (their newest value is shown)."""
_GPU_METRICS = (
    "gpu_utilization_ratio",
    "gpu_memory_used_bytes",
    "gpu_memory_total_bytes",
    "gpu_temperature_celsius",
    "gpu_power_watts",
    "gpu_throttle_reason",
)


_NOT_THROTTLED = frozenset({"gpu_idle"})
"""Flags NVML reports among the throttle reasons that are no slowdown (an idle GPU lowers its clocks)."""


@dataclass(frozen=True)
class GpuRow:
    """One GPU's newest readings, for the overview's GPU panel."""

    index: str
    name: str
    values: dict[str, float]
    throttled: list[str]


async def gpu_rows(ops: Operations, collectors: Iterable[str], now: float) -> list[GpuRow]:
    """Each GPU's newest readings when the agent runs the gpu collector (none otherwise, or without a GPU)."""
    if "gpu" not in collectors:
        return []
    try:  # one read of the gpu_* group, not one per metric: this runs at every refresh
        report = await ops.metrics_report("gpu", start=now - GPU_WINDOW, end=now, agg="last")
    except AgentUnavailable:
        raise
    except CrucibleError:  # not collected yet (no GPU: the group is absent)
        return []
    gpus: dict[str, GpuRow] = {}
    for metric_report in report.reports:
        metric = metric_report.metric
        if metric not in _GPU_METRICS:
            continue
        for series in metric_report.series:
            index = series.labels.get("gpu", "?")
            row = gpus.setdefault(index, GpuRow(index, series.labels.get("name", ""), {}, []))
            last = series.stats.get("last")
            if last is None:
                continue
            if metric == "gpu_throttle_reason":
                if last >= 1 and series.labels.get("reason") not in _NOT_THROTTLED:
                    row.throttled.append(series.labels.get("reason", "?"))
            else:
                row.values[metric] = last
    return [gpus[k] for k in sorted(gpus)]


@dataclass
class Connection:
    """How the last refreshes went: the data of the last good one, and the error since, if any."""

    url: str
    data: StatusData | None = None
    fetched_at: float | None = None
    """Wall-clock time of the last good refresh."""
    error: str | None = None
    """Why the newest refresh failed (None: it worked)."""
    failures: int = 0
    unreachable: bool = False
    """The newest failure was no answer at all (not an error answer such as a refused token)."""

    def succeeded(self, data: StatusData, now: float) -> None:
        """Record a good refresh."""
        self.data, self.fetched_at, self.error, self.failures = data, now, None, 0

    def failed(self, error: CrucibleError) -> None:
        """Record a failed refresh; the last good data stays (marked stale)."""
        self.error, self.failures = str(error), self.failures + 1
        self.unreachable = isinstance(error, AgentUnavailable)

    def age(self, now: float) -> float | None:
        """Seconds since the last good refresh (None: never)."""
        return None if self.fetched_at is None else max(0.0, now - self.fetched_at)

    def readings_age(self, now: float) -> float | None:
        """Seconds since the agent's newest system reading (its collectors may lag even when it answers)."""
        ts = self.data.system.ts if self.data else None
        if ts is None:
            return None
        return max(0.0, now - datetime.fromisoformat(ts).timestamp())


@dataclass
class Context:
    """What every screen of one dashboard shares: the agent, the last refreshes, the trends and what is allowed."""

    ops: Operations
    url: str
    refresh: float
    read_only: bool
    """``--read-only``, or the agent's own ``actions.read_only``: actions are hidden."""
    conn: Connection = field(init=False)
    trends: Trends = field(default_factory=Trends)
    allowlist: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    """Action → the agent's reason for refusing it (a 401/403): shown disabled, with the reason."""
    actor: str = "dashboard"
    anomalies: list[AnomalyView] = field(default_factory=list)
    """The last hour's anomalies, newest first (read with each refresh)."""
    gpus: list[GpuRow] = field(default_factory=list)
    """Each GPU's newest readings (empty without the gpu collector or a GPU)."""
    last_action: str | None = None
    """What the newest action did or why it was refused (with its audit record), shown until the next one."""

    def __post_init__(self) -> None:
        self.conn = Connection(self.url)

    @property
    def stale_after(self) -> float:
        """Data older than this many seconds is marked stale (three missed refreshes, at least 10 s)."""
        return max(10.0, 3 * self.refresh)
