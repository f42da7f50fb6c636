"""The Monitor: the one facade of operations that the HTTP API, MCP server, CLI and TUI offer."""

from __future__ import annotations

import difflib
import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from crucible_monitor import __version__
from crucible_monitor.agent import Agent, CollectorHealth
from crucible_monitor.collectors.http_checks import HttpCheckCollector
from crucible_monitor.collectors.processes import ProcessesCollector
from crucible_monitor.collectors.services import ServicesCollector
from crucible_monitor.config import REDACTED, redacted, validate_config
from crucible_monitor.errors import ConfigError, NotFoundError, QueryError
from crucible_monitor.models import EventKind, MetricKind, iso
from crucible_monitor.schemas import (
    CheckResult,
    CollectorStatus,
    ConfigUpdate,
    CpuView,
    DiskView,
    EventView,
    FilesystemView,
    Health,
    HistorySeries,
    InterfaceView,
    MemoryView,
    MetricHistory,
    MetricInfo,
    ServiceStatus,
    StorageView,
    SystemSnapshot,
)
from crucible_monitor.storage.aggregate import AGGREGATIONS, Aggregation
from crucible_monitor.storage.store import LatestPoint

__all__ = ["MAX_POINTS", "Monitor"]

_C = TypeVar("_C")

MAX_POINTS = 11_000
"""Most buckets one history query may ask for per series."""

_NICE_STEPS = (10, 30, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400)
_LIVE_FORBIDDEN = ("listen_addr", "data_dir", "api_token")


class Monitor:
    """Operations over a running :class:`Agent`; every interface is a thin layer over these methods."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    # -- agent ----------------------------------------------------------------------------------------------

    def health(self, *, detailed: bool = False) -> Health:
        """Liveness, collectors' state and storage size; ``detailed`` adds error texts."""
        collectors = self.collectors(detailed=detailed)
        stats = self.agent.store.stats()
        return Health(
            status="ok" if all(c.ok for c in collectors) else "degraded",
            version=__version__,
            host=self.agent.config.agent.hostname,
            started_at=iso(self.agent.started_at) if self.agent.started_at else None,
            uptime_seconds=round(self.agent.uptime(), 3),
            collectors=collectors,
            storage=StorageView(
                disk_bytes=stats.disk_bytes, wal_bytes=stats.wal_bytes, pending_rows=stats.pending_rows, days=stats.days
            ),
        )

    def collectors(self, *, detailed: bool = True) -> list[CollectorStatus]:
        """Each collector's runs, errors and last duration."""
        return [_collector_status(name, h, detailed) for name, h in sorted(self.agent.health.items())]

    # -- current state --------------------------------------------------------------------------------------

    def system_status(self) -> SystemSnapshot:
        """The newest system readings, with rates for counters."""
        latest = _Latest(self.agent.store.latest())
        processes = self._collector_of(ProcessesCollector)
        return SystemSnapshot(
            host=self.agent.config.agent.hostname,
            ts=iso(latest.newest) if latest.newest else None,
            uptime_seconds=latest.value("uptime_seconds"),
            load={w: v for w in ("1m", "5m", "15m") if (v := latest.value(f"load{w[:-1]}")) is not None},
            cpu=CpuView(
                count=_int(latest.value("cpu_count")),
                usage_ratio=latest.value("cpu_usage_ratio", cpu="total"),
                per_cpu={
                    p.labels["cpu"]: p.value for p in latest.series("cpu_usage_ratio") if p.labels["cpu"] != "total"
                },
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
            pressure={
                f"{p.labels['resource']}_{p.labels['kind']}": p.value for p in latest.series("pressure_stall_ratio")
            },
            processes={
                name: value
                for name in ("processes_count", "processes_running", "processes_blocked")
                if (value := latest.value(name)) is not None
            },
            top_processes=processes.latest if processes else None,
        )

    def services(self) -> list[ServiceStatus]:
        """Every watched systemd unit and supervisor program."""
        collector = self._collector_of(ServicesCollector)
        return collector.statuses() if collector else []

    def http_checks(self) -> list[CheckResult]:
        """The latest result of every HTTP check (checks that have not run yet are left out)."""
        return [
            c.result
            for c in self.agent.collectors.values()
            if isinstance(c, HttpCheckCollector) and c.result is not None
        ]

    # -- history --------------------------------------------------------------------------------------------

    def list_metrics(self) -> list[MetricInfo]:
        """The metric catalogue of the running collectors."""
        seen: dict[str, MetricInfo] = {}
        for collector in self.agent.collectors.values():
            source = collector.name.partition(":")[0]
            for spec in collector.catalogue:
                seen.setdefault(
                    spec.name,
                    MetricInfo(
                        name=spec.name,
                        kind=spec.kind.value,
                        unit=spec.unit,
                        description=spec.description,
                        labels=list(spec.labels),
                        collector=source,
                    ),
                )
        return sorted(seen.values(), key=lambda m: m.name)

    def history(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float | None = None,
        agg: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> MetricHistory:
        """Points of one metric over a time range, downsampled to ``step`` seconds.

        ``agg`` defaults to ``rate`` for counters and ``avg`` for gauges; ``step`` defaults to about 300 buckets.

        Raises:
            QueryError: unknown metric or aggregation, an empty or reversed range, or too many points; the message
                lists the valid choices.
        """
        spec = self.agent.catalogue().get(metric)
        if spec is None:
            names = sorted(self.agent.catalogue())
            close = difflib.get_close_matches(metric, names, n=5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise QueryError(f"unknown metric {metric!r}; {hint}list_metrics shows all {len(names)} metrics")
        chosen = agg or ("rate" if spec.kind is MetricKind.COUNTER else "avg")
        valid = [a for a in AGGREGATIONS if a != "rate" or spec.kind is MetricKind.COUNTER]
        if chosen not in valid:
            raise QueryError(
                f"invalid aggregation {chosen!r} for {spec.kind.value} {metric}; valid: {', '.join(valid)}"
            )
        if not end > start:
            raise QueryError(f"the range is empty: start ({iso(start)}) must be before end ({iso(end)})")
        step = step or _auto_step(end - start)
        if step <= 0 or (end - start) / step > MAX_POINTS:
            raise QueryError(
                f"step {step:g}s gives {math.ceil((end - start) / step)} points over this range; "
                f"the most is {MAX_POINTS}: use a step of at least {math.ceil((end - start) / MAX_POINTS)}s"
            )
        series = self.agent.store.query(
            metric, start=start, end=end, step=step, agg=cast(Aggregation, chosen), labels=labels
        )
        return MetricHistory(
            metric=metric,
            kind=spec.kind.value,
            unit=spec.unit,
            agg=chosen,
            start=iso(start),
            end=iso(end),
            step_seconds=step,
            tiers=sorted({t for s in series for t in s.tiers}),
            series=[
                HistorySeries(labels=s.labels, points=list(zip(s.timestamps, s.values, strict=True))) for s in series
            ],
        )

    def events(
        self,
        *,
        since: float | None = None,
        kinds: list[str] | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[EventView]:
        """Recorded events, newest first.

        Raises:
            QueryError: an unknown event kind (the message lists the valid ones).
        """
        valid = [k.value for k in EventKind]
        bad = [k for k in kinds or [] if k not in valid]
        if bad:
            raise QueryError(f"unknown event kind {bad[0]!r}; valid: {', '.join(valid)}")
        if self.agent.state is None:
            return []
        stored = self.agent.state.events(
            since=since, kinds=[EventKind(k) for k in kinds or []], subject=subject, limit=limit
        )
        return [
            EventView(
                id=s.id,
                ts=iso(s.event.ts),
                kind=s.event.kind.value,
                subject=s.event.subject,
                severity=s.event.severity.value,
                message=s.event.message,
                data=dict(s.event.data),
            )
            for s in stored
        ]

    # -- alerts (the alerting engine plugs in here) ---------------------------------------------------------

    def list_alerts(self) -> list[dict[str, Any]]:
        """Active alerts; none until rules are configured by the alerting engine."""
        return []

    def acknowledge_alert(self, alert_id: str, *, by: str, note: str | None = None) -> dict[str, Any]:
        """Acknowledge an alert.

        Raises:
            NotFoundError: there is no alert with this id.
        """
        raise NotFoundError(f"no alert with id {alert_id!r}; list_alerts shows the active ones")

    # -- config ---------------------------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The config in force, secrets redacted."""
        return redacted(self.agent.config)

    async def update_config(self, patch: Mapping[str, Any]) -> ConfigUpdate:
        """Merge ``patch`` into the config in force, validate it, and apply it live.

        A redacted secret (``**********``) in the patch keeps the current value, so a fetched config can be edited
        and posted back.

        Raises:
            ConfigError: the result is invalid, or changes a setting that needs a restart.
        """
        current = self.agent.config
        new = validate_config(_merge(current.model_dump(mode="python"), _drop_redacted(patch)), "request")
        forbidden = [f"agent.{k}" for k in _LIVE_FORBIDDEN if getattr(new.agent, k) != getattr(current.agent, k)]
        if forbidden:
            raise ConfigError(f"{', '.join(forbidden)} cannot change while the agent runs; edit the file and restart")
        changed = [k for k in type(new).model_fields if getattr(new, k) != getattr(current, k)]
        await self.agent.apply_config(new)
        return ConfigUpdate(applied=True, changed=changed, config=redacted(new))

    def _collector_of(self, kind: type[_C]) -> _C | None:
        return next((c for c in self.agent.collectors.values() if isinstance(c, kind)), None)


class _Latest:
    """Index over the newest points for building snapshots."""

    def __init__(self, points: list[LatestPoint]) -> None:
        self.by_metric: dict[str, list[LatestPoint]] = defaultdict(list)
        for point in points:
            self.by_metric[point.metric].append(point)
        self.newest = max((p.ts for p in points), default=None)

    def series(self, metric: str, **labels: str) -> list[LatestPoint]:
        return [p for p in self.by_metric.get(metric, []) if all(p.labels.get(k) == v for k, v in labels.items())]

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


def _collector_status(name: str, health: CollectorHealth, detailed: bool) -> CollectorStatus:
    return CollectorStatus(
        name=name,
        ok=health.ok,
        interval_seconds=health.interval,
        runs=health.runs,
        errors_total=health.errors_total,
        last_run=iso(health.last_run) if health.last_run else None,
        last_duration_seconds=health.last_duration,
        samples_last_run=health.samples_last_run,
        last_error=health.last_error if detailed else None,
    )


def _auto_step(span: float) -> float:
    target = span / 300
    return float(next((s for s in _NICE_STEPS if s >= target), math.ceil(target / 86400) * 86400))


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _sum(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _drop_redacted(patch: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _drop_redacted(v) if isinstance(v, Mapping) else v for k, v in patch.items() if v != REDACTED}


def _merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
