"""Findings about the host: CPU, memory, disks, load, pressure, swap, processes, and the agent's own storage."""

from __future__ import annotations

from crucible_monitor.alerts.shorthand import ResourceLevel
from crucible_monitor.findings.sources import Context, Sources, iso_or_none, quantity
from crucible_monitor.models import iso
from crucible_monitor.schemas import Finding, ProcessInfo
from crucible_monitor.units import human_bytes, human_ratio

__all__ = ["anomaly_findings", "process_findings", "resource_findings", "storage_findings"]

_PRESSURE_WARNING = 0.2
PEGGED_CORES = 0.9
"""A process using this much of a core is named, whatever the host's total CPU."""
GROWTH_BYTES = 100 * 2**20
GROWTH_FACTOR = 1.5
"""A process whose resident memory grew by both (within the hour) is named."""


def _ratio_finding(
    subject: str,
    labels: dict[str, str],
    value: float | None,
    level: ResourceLevel | None,
    context: Context,
    hint: str,
    metric: str | None = None,
) -> Finding | None:
    """A finding when ``value`` reaches the level's warning (``metric``: another series held to the same level)."""
    if value is None or level is None or value < level.warning:
        return None
    return Finding(
        severity="critical" if value >= level.critical else "warning",
        subject=subject,
        problem=f"{human_ratio(value)} (threshold {level.percent:g} %)",
        since=iso_or_none(context.since_above(metric or level.metric, labels, level.warning)),
        value=quantity(value, "ratio"),
        hint=hint,
    )


def resource_findings(sources: Sources) -> list[Finding]:
    """CPU, memory and each filesystem against the shorthand levels; load, pressure stalls and swap."""
    system, context = sources.system, sources.context
    levels = context.levels
    candidates = [
        _ratio_finding(
            "cpu",
            {"cpu": "total"},
            system.cpu.usage_ratio,
            levels.cpu,
            context,
            "get_metrics(metric='cpu', since='1h'); get_system_status() lists the top processes",
        ),
        _ratio_finding(
            "memory",
            {},
            system.memory.used_ratio,
            levels.memory,
            context,
            "get_metrics(metric='memory', since='1h'); get_system_status() lists the top processes",
        ),
    ]
    for fs in system.filesystems:
        labels = {"mountpoint": fs.mountpoint, "device": fs.device or "", "fstype": fs.fstype or ""}
        candidates.append(
            _ratio_finding(
                f"filesystem:{fs.mountpoint}",
                labels,
                fs.used_ratio,
                levels.disk,
                context,
                f"get_metrics(metric='filesystem_used_bytes', labels={{'mountpoint': '{fs.mountpoint}'}}, since='7d')",
            )
        )
        candidates.append(
            _ratio_finding(
                f"inodes:{fs.mountpoint}",
                labels,
                fs.inodes_used_ratio,
                levels.disk,
                context,
                f"get_metrics(metric='filesystem_inodes_used_ratio', labels={{'mountpoint': '{fs.mountpoint}'}})",
                metric="filesystem_inodes_used_ratio",
            )
        )
    found = [c for c in candidates if c is not None]
    cores = system.cpu.count or 1
    load5 = system.load.get("5m")
    if load5 is not None and load5 > 2 * cores:
        found.append(
            Finding(
                severity="warning",
                subject="load",
                problem=f"5-minute load {load5:.2f} on {cores} cores",
                value=quantity(load5, ""),
                hint="get_metrics(metric='pressure_stall_ratio') tells CPU from I/O waiting",
            )
        )
    for key, ratio in sorted(system.pressure.items()):
        if ratio >= _PRESSURE_WARNING and not key.startswith("cpu_full"):
            found.append(
                Finding(
                    severity="warning",
                    subject=f"pressure:{key}",
                    problem=f"tasks stalled {human_ratio(ratio)} of the last 10 s",
                    value=quantity(ratio, "ratio"),
                    hint="get_metrics(metric='pressure_stall_ratio', since='1h')",
                )
            )
    if system.memory.swap_used_ratio is not None and system.memory.swap_used_ratio >= 0.5:
        found.append(
            Finding(
                severity="warning",
                subject="swap",
                problem=f"{human_ratio(system.memory.swap_used_ratio)} of swap used",
                value=quantity(system.memory.swap_used_ratio, "ratio"),
                hint="get_metrics(metric='swap_in_bytes_total', since='1h'): sustained swap-in means memory is short",
            )
        )
    return found


def process_subject(process: ProcessInfo) -> str:
    """``process:<name>``: the kernel's name of the process (its pid is in the problem)."""
    return f"process:{process.name}"


def process_findings(sources: Sources) -> list[Finding]:
    """A process pegging a core, or whose memory grew fast, is named even below the host's thresholds."""
    snapshot = sources.system.top_processes
    if snapshot is None:
        return []
    found: dict[int, Finding] = {}
    for p in snapshot.by_memory:
        earlier, at = p.memory_earlier_bytes, p.memory_earlier_at
        if earlier is None or at is None:
            continue
        if p.memory_bytes - earlier >= GROWTH_BYTES and p.memory_bytes >= GROWTH_FACTOR * earlier:
            found[p.pid] = Finding(
                severity="warning",
                subject=process_subject(p),
                problem=f"pid {p.pid} ({p.user}) grew from {human_bytes(earlier)} to {human_bytes(p.memory_bytes)} "
                f"resident since {iso(at)}",
                since=iso(at),
                value=quantity(p.memory_bytes, "bytes"),
                hint="get_metrics(metric='memory', since='1h'); its command line is in get_system_status()",
            )
    for p in snapshot.by_cpu:
        if p.cpu_cores is None or p.cpu_cores < PEGGED_CORES:
            continue
        uses = f"uses {p.cpu_cores:.2f} cores"
        if p.pid in found:
            found[p.pid] = found[p.pid].model_copy(update={"problem": f"{found[p.pid].problem}; {uses}"})
            continue
        found[p.pid] = Finding(
            severity="warning",
            subject=process_subject(p),
            problem=f"pid {p.pid} ({p.user}) {uses}",
            since=iso_or_none(p.started_at),
            value=quantity(round(p.cpu_cores, 2), "cores"),
            hint="get_metrics(metric='cpu_mode_ratio', since='1h'); its command line is in get_system_status()",
        )
    return list(found.values())


def storage_findings(sources: Sources) -> list[Finding]:
    """Critical while the disk is full: collection goes on into memory, nothing of it is durable yet."""
    context = sources.context
    if not context.held_samples:
        return []
    given_up = f", {context.dropped_samples} given up" if context.dropped_samples else ""
    return [
        Finding(
            severity="critical",
            subject="storage",
            problem=f"disk full: collecting to memory, {context.held_samples} samples pending{given_up}",
            since=iso_or_none(context.held_since),
            hint="get_metrics(metric='filesystem_used_ratio') to find the full filesystem, then free space on it",
        )
    ]


def anomaly_findings(sources: Sources) -> list[Finding]:
    """Each ongoing anomaly: what moved, its score against its threshold, since when."""
    return [
        Finding(
            severity="warning",
            subject=f"anomaly:{a.id}",
            problem=f"{a.summary} (score {a.score:.2f}, threshold {a.threshold:.2f}; "
            f"series: {', '.join(a.series[:3])})",
            since=a.start,
            hint=f"explain_anomaly(anomaly_id={a.id})",
        )
        for a in sources.context.anomalies
        if a.ongoing
    ]
