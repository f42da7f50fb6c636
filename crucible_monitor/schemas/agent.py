"""What the Monitor reports about the agent itself: collectors, storage, health, config changes, audit records."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, Field

from crucible_monitor.models import iso

if TYPE_CHECKING:
    from crucible_monitor.storage.state import AuditRecord

__all__ = ["AuditView", "BlindSpotView", "CollectorStatus", "ConfigUpdate", "Health", "StorageView"]


class BlindSpotView(BaseModel):
    """A configured source the collector could not read at its last run (or all of them, when the run failed)."""

    config_key: str = Field(
        description="The config key that configures it, e.g. collectors.php_fpm.pools[0].status_url."
    )
    target: str | None = Field(None, description="What it is (a pool, a file); only on authenticated endpoints.")
    error: str | None = Field(None, description="What went wrong, secrets masked; only on authenticated endpoints.")
    since: str | None = Field(None, description="ISO 8601: blind since.")


class CollectorStatus(BaseModel):
    """How one collector has been doing since the agent started."""

    name: str
    ok: bool = Field(description="False when the last run failed or could not read a configured source (see blind).")
    interval_seconds: float
    runs: int
    errors_total: int
    last_run: str | None = Field(None, description="ISO 8601")
    last_success: str | None = Field(None, description="ISO 8601; null until a run has completed.")
    last_duration_seconds: float | None = None
    samples_last_run: int = 0
    last_error: str | None = Field(None, description="Only on authenticated endpoints.")
    blind: list[BlindSpotView] = Field(default_factory=list, description="What it could not read: empty when ok.")


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


class ConfigUpdate(BaseModel):
    """The outcome of applying a config change live."""

    applied: bool
    changed: list[str] = Field(description="Top-level sections that changed.")
    config: dict[str, Any] = Field(description="The config now in force, secrets redacted.")
    persisted: bool = Field(False, description="Live changes are not written back to the config file.")


class AuditView(BaseModel):
    """An audit record of an action attempted on the host."""

    id: int
    ts: str
    actor: str = Field(description="Who acted: the name of the caller's token (over MCP stdio: mcp-stdio).")
    claimed_by: str | None = Field(None, description="Who the caller said it was (the client's own claim).")
    action: str
    target: str
    reason: str
    dry_run: bool
    result: str
    detail: str
    state_before: dict[str, Any] | None
    state_after: dict[str, Any] | None

    @classmethod
    def of(cls, record: AuditRecord) -> Self:
        """The view of an audit record as ``state.db`` holds it (its time as ISO 8601)."""
        return cls.model_validate({**asdict(record), "ts": iso(record.ts)})
