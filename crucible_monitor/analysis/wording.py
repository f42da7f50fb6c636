"""The words of a window's explanation: what it rests on (``method``) and the model-free evidence in a few sentences."""

from __future__ import annotations

from crucible_monitor.analysis.window import Evidence
from crucible_monitor.models import iso
from crucible_monitor.schemas import MovedSeries, ProcessChange

__all__ = ["evidence_summary", "method"]

_CPU = frozenset({"cpu_usage_ratio", "cpu_mode_ratio", "load1", "load5", "load15", "processes_running"})
_MEMORY = frozenset({"memory_used_ratio", "memory_used_bytes", "swap_used_ratio", "swap_used_bytes"})
_NAMED = 3  # entries of each list named in the summary


def method(evidence: Evidence, start: float, model_id: int | None, fitted: bool) -> str:
    """What the explanation rests on, e.g. ``no model yet: compared with the previous window (…)``."""
    previous = f"the previous window ({iso(evidence.before_start)} – {iso(start)})"
    if model_id is not None:
        text = f"host model {model_id}: attribution against its baselines; also compared with {previous}"
    elif fitted:
        text = f"compared with {previous}; the host model had no bucket of this window to score"
    else:
        text = f"no model yet: compared with {previous}"
    return text if evidence.data_before else f"{text}, which holds no data: series are not compared"


def evidence_summary(evidence: Evidence, start: float, end: float, *, modelled: bool) -> str:
    """The model-free evidence in a few sentences; names the top process of a CPU or memory rise."""
    parts = []
    if evidence.moved:
        moves = "; ".join(_move(m) for m in evidence.moved[:_NAMED])
        lead = (
            "Against the previous window" if modelled else f"From {iso(start)} to {iso(end)}, against the window before"
        )
        parts.append(f"{lead}: {moves}.")
    elif not modelled:
        parts.append(
            "Nothing moved against the previous window."
            if evidence.data_before
            else "No data before the window to compare with."
        )
    rising = {m.metric for m in evidence.moved if m.z > 0}
    if evidence.by_cpu and (not modelled or not rising.isdisjoint(_CPU)):
        parts.append(f"Top process by CPU growth: {_process(evidence.by_cpu[0], cpu=True)}.")
    if evidence.by_memory and not rising.isdisjoint(_MEMORY):
        parts.append(f"Top process by memory growth: {_process(evidence.by_memory[0], cpu=False)}.")
    if evidence.restarts:
        named = ", ".join(f"{r.service} {r.restarts} time{'s' if r.restarts != 1 else ''}" for r in evidence.restarts)
        parts.append(f"Restarted in the window: {named}.")
    if evidence.failing_checks:
        named = ", ".join(f"{c.check} ({c.failing_ratio:.0%} of the window)" for c in evidence.failing_checks[:_NAMED])
        parts.append(f"HTTP checks failing: {named}.")
    if evidence.error_bursts:
        named = ", ".join(
            f"{b.count} × {b.exception} ({b.app}; {b.before} before)" for b in evidence.error_bursts[:_NAMED]
        )
        parts.append(f"Logged: {named}.")
    return " ".join(parts)


def _move(moved: MovedSeries) -> str:
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(moved.labels.items()))
    series = f"{moved.metric}{{{labels}}}" if labels else moved.metric
    direction = "rose" if moved.z > 0 else "fell"
    return f"{series} {direction} {moved.change} (z {moved.z:+.0f})"


def _process(process: ProcessChange, *, cpu: bool) -> str:
    amount = process.memory
    if cpu:
        amount = f"{process.cpu_cores:.2f} cores" if process.cpu_cores is not None else "CPU"
    return f"{process.name} (pid {process.pid}, {process.change}, {amount})"
