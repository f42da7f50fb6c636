"""What the collectors and ``state.db`` produce and the layers above read: check results, process snapshots,
service statuses, GPU readings, event references.

Defined here, below their producers, so that alerting, analysis and the interfaces need no collector module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, field_validator

from crucible_monitor.config import Category
from crucible_monitor.models import iso
from crucible_monitor.untrusted import mask_secrets

if TYPE_CHECKING:
    from crucible_monitor.storage.state import StoredEvent

__all__ = [
    "CheckResult",
    "EventRef",
    "FailureKind",
    "GpuProcess",
    "GpuReading",
    "Manager",
    "ProcessInfo",
    "ProcessSnapshot",
    "ServiceStatus",
]

FailureKind = Literal["dns", "connect", "tls", "timeout", "status", "keyword"]
"""Why an HTTP check failed."""

Manager = Literal["systemd", "supervisor"]
"""The service manager a service runs under."""


class CheckResult(BaseModel):
    """The outcome of one HTTP check (after its retries)."""

    model_config = ConfigDict(frozen=True)

    name: str
    url: str
    ok: bool
    status_code: int | None
    duration_seconds: float | None
    failure: FailureKind | None
    error: str | None
    attempts: int
    checked_at: float
    consecutive_failures: int
    tls_expires_at: float | None = None
    tls_days_left: float | None = None
    tls_issuer: str | None = None
    tls_subject: str | None = None


class ProcessInfo(BaseModel):
    """One process of a snapshot."""

    pid: int
    name: str
    cmdline: str
    user: str
    state: str
    cpu_cores: float | None
    memory_bytes: int
    started_at: float | None
    memory_earlier_bytes: int | None = None
    """Its resident memory when first seen in the last hour (with ``memory_earlier_at``): how much it grew."""
    memory_earlier_at: float | None = None

    @field_validator("cmdline")
    @classmethod
    def _masked(cls, cmdline: str) -> str:
        """Secrets in a command line are masked as it is read: no store, API or tool shows them."""
        return mask_secrets(cmdline)


class ProcessSnapshot(BaseModel):
    """The top processes at one time: ``total`` processes were read, the top few are kept by CPU and by memory."""

    ts: float
    total: int
    by_cpu: list[ProcessInfo]
    by_memory: list[ProcessInfo]


class GpuProcess(BaseModel):
    """A process holding memory on a GPU, named by its pid in procfs."""

    model_config = ConfigDict(frozen=True)

    pid: int
    name: str
    """``comm`` of the process (as the top-processes snapshot names it); ``(unknown)`` when procfs cannot tell."""
    memory_bytes: int | None
    """GPU memory it holds; None where the driver does not say (some virtualised setups)."""


class GpuReading(BaseModel):
    """One NVIDIA GPU at one collection, in base units; a field is None where the device does not support it.

    ``error`` is set when NVML failed on the device this cycle: the fields read before the failure are kept.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    uuid: str
    name: str
    ts: float
    utilization_ratio: float | None = None
    memory_utilization_ratio: float | None = None
    """The share of time the memory controller was busy (not how full the memory is)."""
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None
    sm_clock_hertz: float | None = None
    memory_clock_hertz: float | None = None
    ecc_corrected: int | None = None
    """Corrected ECC errors since the driver loaded (volatile)."""
    ecc_uncorrected: int | None = None
    """Uncorrected ECC errors since the driver loaded (volatile)."""
    throttle_reasons: tuple[str, ...] | None = None
    """The clock event (throttle) reasons active now, by name (``gpu_idle``, ``hw_thermal_slowdown``...)."""
    pcie_tx_bytes_per_second: float | None = None
    pcie_rx_bytes_per_second: float | None = None
    processes: tuple[GpuProcess, ...] = ()
    error: str | None = None
    lost: bool = False
    """NVML says the GPU is lost or needs a reset (``error`` says which): no work runs on it."""

    @property
    def memory_used_ratio(self) -> float | None:
        """Used over total memory, when both are known."""
        if self.memory_used_bytes is None or not self.memory_total_bytes:
            return None
        return self.memory_used_bytes / self.memory_total_bytes


UNSETTLED_STATES = frozenset({"unknown", "starting", "activating", "reloading", "deactivating", "stopping"})
"""States in which a service is neither up nor down yet: its manager does not answer, or it is on its way."""


class ServiceStatus(BaseModel):
    """The last known state of one watched service."""

    model_config = ConfigDict(frozen=True)

    name: str
    manager: Manager
    category: Category
    up: bool
    state: str
    """systemd ActiveState or supervisor statename, lower case; ``unknown`` while its manager does not answer."""
    sub_state: str | None = None
    description: str | None = None
    pid: int | None = None
    since: float | None = None
    """Unix time the service entered its current state (became active, failed, stopped), when known."""
    restarts: int = 0
    memory_bytes: int | None = None
    exit_status: int | None = None
    last_seen: float
    """Unix time of the last poll that read this service."""

    @property
    def settled(self) -> bool:
        """Whether the state tells up from down: not ``unknown`` and not on its way (starting, activating...)."""
        return self.state not in UNSETTLED_STATES


class EventRef(BaseModel):
    """An event in or just before an anomaly's window."""

    id: int
    ts: str
    kind: str
    subject: str
    severity: str
    message: str

    @classmethod
    def of(cls, stored: StoredEvent) -> Self:
        """The view of an event as ``state.db`` holds it."""
        event = stored.event
        return cls(
            id=stored.id,
            ts=iso(event.ts),
            kind=event.kind.value,
            subject=event.subject,
            severity=event.severity.value,
            message=event.message,
        )
