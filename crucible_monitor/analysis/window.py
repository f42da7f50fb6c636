"""Evidence about a window of time that needs no model: what changed against the window before it, of the same length.

- Series: the host's key series (:data:`~crucible_monitor.analysis.features.KEY_SERIES`, summed over their labels)
  and every other gauge (bucket averages) and counter (per-second rates) of the catalogue, series by series. Each is
  compared by a robust z: (median in the window - median before) / spread, the spread being 1.4826 × the MAD before,
  at least the unit's smallest meaningful change (a key series' ``min_mad``) and a tenth of the level before (a
  series flat before the window is not infinitely surprised by a small step). A bucket holding the window's start
  belongs to the window.
- Restarts (``service_restart`` events), failing HTTP checks (``http_check_up``), Laravel exceptions by class
  (increases of ``laravel_exceptions_total``).
- Processes new to the top lists, or grown, between the process snapshots of the two windows (CPU: the mean over
  a window's snapshots, memory: the highest).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.features import KEY_SERIES, read_columns
from crucible_monitor.models import EventKind, MetricKind, MetricSpec, iso
from crucible_monitor.schemas import ErrorBurst, FailingCheck, MovedSeries, ProcessChange, ServiceRestarts
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import History
from crucible_monitor.units import human, human_bytes

__all__ = ["MOVED_Z", "Evidence", "gather"]

Floats = npt.NDArray[np.float64]

MOVED_Z = 3.0
"""|z| from which a series counts as moved."""
LIST_LIMIT = 5
"""Entries kept per list (processes: :data:`PROCESS_LIMIT`)."""
PROCESS_LIMIT = 3
_BUCKETS = 30  # buckets per window, each a whole number of seconds
_MAD_TO_SIGMA = 1.4826
_RELATIVE_FLOOR = 0.1
_Z_CAP = 999.0
_FLOORS = {"ratio": 0.02, "boolean": 0.1, "bytes": 1048576.0, "bytes/s": 65536.0, "seconds": 0.05, "seconds/s": 0.01}
_GAUGE_FLOOR = 1.0  # one process, one connection, one job
_RATE_FLOOR = 0.1  # per second
_CPU_GROWTH = 0.05  # cores: less is not growth
_MEMORY_GROWTH = 16 * 1048576  # bytes
_LOG_METRIC = "laravel_log_entries_total"
_EXCEPTIONS_METRIC = "laravel_exceptions_total"
_CHECK_METRIC = "http_check_up"


@dataclass(slots=True)
class Evidence:
    """What a window shows against the one before it (``before_start`` to the window's start); lists are bounded,
    ``totals`` has their full lengths."""

    before_start: float
    data_before: bool = False
    moved: list[MovedSeries] = field(default_factory=list)
    restarts: list[ServiceRestarts] = field(default_factory=list)
    failing_checks: list[FailingCheck] = field(default_factory=list)
    error_bursts: list[ErrorBurst] = field(default_factory=list)
    by_cpu: list[ProcessChange] = field(default_factory=list)
    by_memory: list[ProcessChange] = field(default_factory=list)
    snapshots: int = 0
    latest: Mapping[str, Any] | None = None
    totals: dict[str, int] = field(default_factory=dict)

    def keep(self, name: str, items: Sequence[Any], limit: int = LIST_LIMIT) -> list[Any]:
        """The first ``limit`` of ``items``; their count goes to ``totals[name]``."""
        self.totals[name] = len(items)
        return list(items[:limit])


def gather(
    store: History,
    state: StateDB,
    catalogue: Mapping[str, MetricSpec],
    snapshots: Sequence[Mapping[str, Any]],
    start: float,
    end: float,
) -> Evidence:
    """The evidence of ``[start, end)`` against the window before it; ``snapshots`` are the process snapshots of both
    windows, oldest first."""
    length = end - start
    before = start - length
    step = float(max(1, math.ceil(length / _BUCKETS)))
    evidence = Evidence(before_start=before)
    moved, evidence.data_before = _moved(store, catalogue, before, start, end, step)
    evidence.moved = evidence.keep("moved", moved)
    evidence.restarts = evidence.keep("restarts", _restarts(state, start, end))
    evidence.failing_checks = evidence.keep("failing_checks", _failing_checks(store, state, start, end, step))
    evidence.error_bursts = evidence.keep("error_bursts", _error_bursts(store, before, start, end, step))
    inside = [s for s in snapshots if s["ts"] >= start]
    earlier = [s for s in snapshots if s["ts"] < start]
    evidence.snapshots = len(inside)
    evidence.latest = inside[-1] if inside else None
    by_cpu, by_memory = _processes(inside, earlier)
    evidence.by_cpu = evidence.keep("processes_by_cpu_growth", by_cpu, PROCESS_LIMIT)
    evidence.by_memory = evidence.keep("processes_by_memory_growth", by_memory, PROCESS_LIMIT)
    return evidence


# -- series ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Move:
    key: bool
    series: MovedSeries


def _moved(
    store: History, catalogue: Mapping[str, MetricSpec], before: float, start: float, end: float, step: float
) -> tuple[list[MovedSeries], bool]:
    """Series that moved (|z| ≥ 3): key series first, then one per other metric (the rest counted in ``also``), each
    by |z|; and whether any series had data before the window."""
    moves: list[_Move] = []
    seen_before = False
    stamps, columns = read_columns(store, KEY_SERIES, start=before, end=end, step=step)
    window = stamps > start - step  # the bucket holding the window's start belongs to it
    for key in KEY_SERIES:
        column = columns.get(key.name)
        if column is None:
            continue
        seen_before |= bool(np.isfinite(column[~window]).any())
        found = _compare(key.metric, dict(key.labels), key.value_unit, column[~window], column[window], key.min_mad)
        if found is not None:
            moves.append(_Move(True, found))
    covered = {key.metric for key in KEY_SERIES}
    others: dict[str, list[MovedSeries]] = defaultdict(list)
    for spec in catalogue.values():
        if spec.name in covered:
            continue
        rate = spec.kind is MetricKind.COUNTER
        unit = f"{spec.unit}/s" if rate else spec.unit
        for series in store.query(spec.name, start=before, end=end, step=step, agg="rate" if rate else "avg"):
            ts = np.asarray(series.timestamps, dtype=np.float64)
            values = np.asarray(series.values, dtype=np.float64)
            inside = ts > start - step
            seen_before |= bool(np.isfinite(values[~inside]).any())
            found = _compare(spec.name, series.labels, unit, values[~inside], values[inside], 0.0)
            if found is not None:
                others[spec.name].append(found)
    for group in others.values():
        group.sort(key=lambda m: -abs(m.z))
        moves.append(_Move(False, group[0].model_copy(update={"also": len(group) - 1})))
    moves.sort(key=lambda m: (not m.key, -abs(m.series.z)))
    return [m.series for m in moves], seen_before


def _compare(
    metric: str, labels: dict[str, str], unit: str, before: Floats, window: Floats, min_spread: float
) -> MovedSeries | None:
    """The move of one series, or None when it did not move or one window has no data; ``min_spread`` (a key
    series' own) replaces the unit's floor."""
    before, window = before[np.isfinite(before)], window[np.isfinite(window)]
    if not len(before) or not len(window):
        return None
    level, value = float(np.median(before)), float(np.median(window))
    mad = float(np.median(np.abs(before - level)))
    floor = min_spread or _FLOORS.get(unit, _RATE_FLOOR if unit.endswith("/s") else _GAUGE_FLOOR)
    spread = max(_MAD_TO_SIGMA * mad, floor, _RELATIVE_FLOOR * abs(level))
    z = max(-_Z_CAP, min(_Z_CAP, (value - level) / spread))
    if abs(z) < MOVED_Z:
        return None
    return MovedSeries(
        metric=metric,
        labels=labels,
        unit=unit,
        before=_round(level),
        value=_round(value),
        z=round(z, 1),
        change=f"{human(level, unit)} → {human(value, unit)}",
    )


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _cores(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# -- events and application series ----------------------------------------------------------------------------------


def _restarts(state: StateDB, start: float, end: float) -> list[ServiceRestarts]:
    """Services with ``service_restart`` events in the window, most restarts first."""
    counts: dict[str, int] = defaultdict(int)
    last: dict[str, float] = {}
    for stored in state.events(since=start, until=end, kinds=[EventKind.SERVICE_RESTART], limit=10_000):
        event = stored.event
        counts[event.subject] += int(event.data.get("count", 1))
        last[event.subject] = max(last.get(event.subject, event.ts), event.ts)
    ranked = sorted(counts, key=lambda s: (-counts[s], s))
    return [ServiceRestarts(service=s, restarts=counts[s], last=iso(last[s])) for s in ranked]


def _failing_checks(store: History, state: StateDB, start: float, end: float, step: float) -> list[FailingCheck]:
    """HTTP checks that failed in some bucket of the window, the most failing first."""
    out = []
    for series in store.query(_CHECK_METRIC, start=start, end=end, step=step, agg="min"):
        values = np.asarray(series.values, dtype=np.float64)
        values = values[np.isfinite(values)]
        failing = int((values < 0.5).sum())
        if not failing:
            continue
        name = series.labels.get("check", "")
        [*latest] = state.events(until=end, kinds=[EventKind.CHECK_FAILED], subject=name, limit=1)
        out.append(
            FailingCheck(
                check=name,
                failing_ratio=round(failing / len(values), 3),
                since=iso(latest[0].event.ts) if latest else None,
                error=latest[0].event.message[:160] if latest else None,
            )
        )
    return sorted(out, key=lambda c: (-c.failing_ratio, c.check))


def _error_bursts(store: History, before: float, start: float, end: float, step: float) -> list[ErrorBurst]:
    """Exception classes a Laravel app logged in the window (and how many before), most first.

    Counted from ``laravel_exceptions_total``: the increases between its points (a reset counts from 0); a class
    first seen in a window counts from 0 when its app's collector was already running before the window."""
    running = {
        s.labels.get("app", "")
        for s in store.query(_LOG_METRIC, start=before, end=start, step=step, agg="last")
        if any(math.isfinite(v) and ts <= start - step for ts, v in zip(s.timestamps, s.values, strict=True))
    }
    out = []
    for series in store.query(_EXCEPTIONS_METRIC, start=before, end=end, step=step, agg="last"):
        app = series.labels.get("app", "")
        counts = {"before": 0, "window": 0}
        previous: float | None = None
        for ts, value in zip(series.timestamps, series.values, strict=True):
            if not math.isfinite(value):
                continue
            inside = ts > start - step
            if previous is None:
                increase = value if app in running and inside else 0.0
            else:
                increase = value - previous if value >= previous else value
            counts["window" if inside else "before"] += int(round(increase))
            previous = value
        if counts["window"] > 0:
            exception = series.labels.get("exception", "")
            out.append(ErrorBurst(app=app, exception=exception, count=counts["window"], before=counts["before"]))
    return sorted(out, key=lambda b: (-b.count, b.app, b.exception))


# -- processes ------------------------------------------------------------------------------------------------------


def _peaks(snapshots: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Per pid: its name, its mean CPU (cores) over the snapshots (0 where it is not in a top list: a sustained burn
    outweighs a one-off spike) and its highest memory (bytes)."""
    out: dict[int, dict[str, Any]] = {}
    for snapshot in snapshots:
        for p in [*snapshot.get("by_cpu", []), *snapshot.get("by_memory", [])]:
            peak = out.setdefault(p["pid"], {"name": p["name"], "cpu": {}, "memory_bytes": 0})
            if p.get("cpu_cores") is not None:
                peak["cpu"][snapshot["ts"]] = p["cpu_cores"]
            peak["memory_bytes"] = max(peak["memory_bytes"], p["memory_bytes"])
    for peak in out.values():
        peak["cpu_cores"] = sum(peak.pop("cpu").values()) / len(snapshots) if snapshots else None
    return out


def _processes(
    inside: Sequence[Mapping[str, Any]], earlier: Sequence[Mapping[str, Any]]
) -> tuple[list[ProcessChange], list[ProcessChange]]:
    """Processes new to the top lists in the window or grown since the window before: by CPU, by memory."""
    now, then = _peaks(inside), _peaks(earlier)
    changes: list[tuple[float, float, ProcessChange]] = []
    for pid, peak in now.items():
        old = then.get(pid)
        cpu_before = (old["cpu_cores"] or 0.0) if old else 0.0
        memory_before = old["memory_bytes"] if old else 0
        change = ProcessChange(
            pid=pid,
            name=peak["name"],
            change="grew" if old else "new" if earlier else "top",
            cpu_cores=_cores(peak["cpu_cores"]),
            cpu_cores_before=_cores(old["cpu_cores"]) if old else None,
            memory_bytes=peak["memory_bytes"],
            memory_bytes_before=memory_before if old else None,
            memory=human_bytes(peak["memory_bytes"]),
        )
        changes.append(((peak["cpu_cores"] or 0.0) - cpu_before, peak["memory_bytes"] - memory_before, change))
    by_cpu = [c for cpu, _, c in sorted(changes, key=lambda t: -t[0]) if cpu >= _CPU_GROWTH]
    by_memory = [c for _, mem, c in sorted(changes, key=lambda t: -t[1]) if mem >= _MEMORY_GROWTH]
    return by_cpu, by_memory
