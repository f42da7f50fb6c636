"""The status summary's GPU findings: a GPU whose memory fails (uncorrected ECC errors), that NVML lost, whose
clocks are held back by heat, a power brake or a hardware slowdown, or whose memory is nearly full."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from crucible_monitor.models import iso
from crucible_monitor.schemas import Finding, GpuReading, Quantity
from crucible_monitor.units import human, human_bytes, human_ratio

__all__ = ["MEMORY_FULL_RATIO", "THROTTLE_FINDINGS", "SinceAbove", "gpu_findings"]

MEMORY_FULL_RATIO = 0.95
"""GPU memory used over total from which a GPU counts as nearly full."""

THROTTLE_FINDINGS = {
    "hw_thermal_slowdown": "too hot: the hardware halves its clocks",
    "sw_thermal_slowdown": "too hot: the driver lowers its clocks",
    "hw_power_brake_slowdown": "the power brake (an external signal: power supply or system) slows it",
    "hw_slowdown": "the hardware slows it (heat or the power brake)",
}
"""The throttle reasons that are a finding, each with what it means. ``sw_power_cap`` is not one: a busy GPU at its
power limit is working as configured; ``gpu_idle`` and the clock settings are not either."""

SinceAbove = Callable[[str, dict[str, str], float], float | None]
"""``since_above(metric, labels, threshold)``: when the series last crossed above the threshold (Unix seconds)."""


def _q(value: float, unit: str) -> Quantity:
    return Quantity(value=value, unit=unit, human=human(value, unit))


def gpu_findings(
    readings: Sequence[GpuReading],
    *,
    since_above: SinceAbove | None = None,
    memory_full_ratio: float = MEMORY_FULL_RATIO,
) -> list[Finding]:
    """The findings of the latest GPU readings, per GPU: uncorrected ECC errors and a lost GPU (critical), clocks
    throttled by heat, power brake or hardware slowdown, memory at ``memory_full_ratio`` or more (warnings).

    ``since_above`` (the status context's) tells since when, from the stored ``gpu_*`` series; without it no
    finding has a ``since``.
    """

    def since(metric: str, labels: dict[str, str], threshold: float) -> str | None:
        ts = since_above(metric, labels, threshold) if since_above is not None else None
        return iso(ts) if ts else None

    found = []
    for gpu in readings:
        labels = {"gpu": str(gpu.index), "uuid": gpu.uuid, "name": gpu.name}
        subject = f"gpu:{gpu.index}"
        where = f"labels={{'gpu': '{gpu.index}'}}"
        if gpu.lost:
            found.append(
                Finding(
                    severity="critical",
                    subject=subject,
                    problem=f"NVML lost the GPU: {gpu.error}; its work has stopped until it is reset",
                    since=None,
                    hint="get_events(kinds=['collector_error'], subject='gpu'); the kernel log (Xid errors) tells why",
                )
            )
        if gpu.ecc_uncorrected:
            corrected = f", {gpu.ecc_corrected} corrected" if gpu.ecc_corrected else ""
            found.append(
                Finding(
                    severity="critical",
                    subject=subject,
                    problem=f"{gpu.ecc_uncorrected} uncorrected ECC memory errors since the driver loaded{corrected}:"
                    " results computed on it may be wrong",
                    since=since("gpu_ecc_errors_total", {**labels, "type": "uncorrected"}, 0.5),
                    value=_q(gpu.ecc_uncorrected, "errors"),
                    hint=f"get_metrics(metric='gpu_ecc_errors_total', {where}); drain the GPU and reset it",
                )
            )
        throttled = [reason for reason in gpu.throttle_reasons or () if reason in THROTTLE_FINDINGS]
        if throttled:
            found.append(
                _throttle_finding(
                    gpu,
                    subject,
                    throttled,
                    since("gpu_throttle_reason", {**labels, "reason": throttled[0]}, 0.5),
                    where,
                )
            )
        ratio = gpu.memory_used_ratio
        if ratio is not None and ratio >= memory_full_ratio:
            found.append(
                _memory_finding(
                    gpu,
                    subject,
                    ratio,
                    memory_full_ratio,
                    since("gpu_memory_used_ratio", labels, memory_full_ratio),
                    where,
                )
            )
    return found


def _throttle_finding(gpu: GpuReading, subject: str, reasons: list[str], since: str | None, where: str) -> Finding:
    state = [
        f"{name} {human(value, unit)}"
        for name, value, unit in (
            ("temperature", gpu.temperature_celsius, "celsius"),
            ("power", gpu.power_watts, "watts"),
            ("SM clock", gpu.sm_clock_hertz, "hertz"),
        )
        if value is not None
    ]
    return Finding(
        severity="warning",
        subject=subject,
        problem="throttled: "
        + "; ".join(f"{r} ({THROTTLE_FINDINGS[r]})" for r in reasons)
        + (f"; {', '.join(state)}" if state else ""),
        since=since,
        value=_q(gpu.temperature_celsius, "celsius") if gpu.temperature_celsius is not None else None,
        hint=f"get_metrics(metric='gpu', {where}) for its temperature, power and clocks over time; check its cooling",
    )


def _memory_finding(
    gpu: GpuReading, subject: str, ratio: float, threshold: float, since: str | None, where: str
) -> Finding:
    used, total = gpu.memory_used_bytes or 0, gpu.memory_total_bytes or 0
    holders = sorted((p for p in gpu.processes if p.memory_bytes), key=lambda p: -(p.memory_bytes or 0))
    top = ", ".join(f"{p.name} (pid {p.pid}) {human_bytes(p.memory_bytes or 0)}" for p in holders[:3])
    return Finding(
        severity="warning",
        subject=subject,
        problem=f"memory {human_ratio(ratio)} used ({human_bytes(used)} of {human_bytes(total)}, threshold "
        f"{threshold * 100:g} %): a larger batch or another model will not fit" + (f"; held by {top}" if top else ""),
        since=since,
        value=_q(ratio, "ratio"),
        hint=f"get_metrics(metric='gpu_process_memory_bytes', {where}) for what holds it",
    )
