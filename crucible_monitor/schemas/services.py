"""Services and their surroundings: events, log tails, service details and restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, Field

from crucible_monitor.schemas.readings import EventRef, ServiceStatus

if TYPE_CHECKING:
    from crucible_monitor.storage.state import StoredEvent

__all__ = ["EventView", "LogTail", "RestartBody", "RestartResult", "ServiceDetail", "ServiceState"]


ServiceState = Literal["all", "up", "down"]
"""Which watched services to list: all of them, the running ones, or the others."""


class EventView(EventRef):
    """A stored event, with its data."""

    data: dict[str, Any]

    @classmethod
    def of(cls, stored: StoredEvent) -> Self:
        """The view of an event as ``state.db`` holds it."""
        return cls.model_validate({**EventRef.of(stored).model_dump(), "data": dict(stored.event.data)})


class LogTail(BaseModel):
    """The last lines of a service's log or of a configured log file."""

    source: str
    kind: Literal["journal", "supervisor", "file"]
    lines: list[str]
    filter: str | None = None
    truncated: bool = Field(description="True when more lines matched than were returned.")


class ServiceDetail(BaseModel):
    """One service: its state, recent state changes and restarts, and its last log lines."""

    service: ServiceStatus
    recent_events: list[EventView]
    log: LogTail | None
    log_error: str | None = None
    hint: str


class RestartResult(BaseModel):
    """What a restart request did."""

    service: str
    manager: str
    result: Literal["restarted", "dry_run", "declined", "failed"]
    message: str
    before: ServiceStatus | None = None
    after: ServiceStatus | None = None
    audit_id: int
    restarts_left: int = Field(description="Restarts left in the budget window after this one.")


class RestartBody(BaseModel):
    """A restart request."""

    reason: str = Field(description="Why: it goes into the audit record.")
    confirm: bool = Field(False, description="Must be true to restart (false records a declined attempt).")
    dry_run: bool = Field(False, description="Check the guard rails and say what would run, without running it.")
    actor: str | None = Field(None, description="Who asks, for the audit record (e.g. the MCP client's name).")
