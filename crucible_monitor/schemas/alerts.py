"""What the alerting operations take and return: alert, transition and silence views, and request bodies.

Times are ISO 8601 strings. The lifecycle enums and :class:`Recurrence` live here too: the views carry them.
"""

from __future__ import annotations

import re
import zoneinfo
from enum import StrEnum
from typing import Literal, Self

from croniter import croniter
from pydantic import BaseModel, Field, model_validator

from crucible_monitor.configtypes import Duration, PositiveDuration, StrictModel
from crucible_monitor.models import Severity

__all__ = [
    "AcknowledgeRequest",
    "Acknowledgement",
    "AlertDetail",
    "AlertFilter",
    "AlertState",
    "AlertView",
    "Recurrence",
    "SilenceRequest",
    "SilenceView",
    "TransitionKind",
    "TransitionView",
    "Weekday",
]

AlertFilter = Literal["active", "pending", "firing", "resolved", "acknowledged", "all"]
"""``active``: pending or firing; ``acknowledged``: active and acknowledged."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class AlertState(StrEnum):
    """Where an alert is in its lifecycle."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class TransitionKind(StrEnum):
    """What an entry of an alert's history records."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"
    CLEARED = "cleared"
    """A pending alert whose condition went away before it fired."""
    ACKNOWLEDGED = "acknowledged"
    ACK_EXPIRED = "ack_expired"
    FLAPPING_STARTED = "flapping_started"
    FLAPPING_STOPPED = "flapping_stopped"
    ESCALATED = "escalated"
    NOTIFIED = "notified"


class Recurrence(StrictModel):
    """A recurring window: a cron expression, or weekdays and a start time; each occurrence lasts ``duration``."""

    cron: str | None = Field(None, description='Five-field cron, e.g. "0 2 * * sun" (Sundays 02:00).')
    days: list[Weekday] | None = Field(None, description="Weekly: days of the week (mon..sun).")
    start: str | None = Field(None, description="Weekly: start time HH:MM.")
    duration: PositiveDuration
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.cron is None) == (self.days is None):
            raise ValueError("give either cron or days (with start), not both")
        if self.days is not None and (self.start is None or not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", self.start)):
            raise ValueError("days needs start as HH:MM (e.g. 02:00)")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"invalid cron expression {self.cron!r}: use five fields, e.g. '0 2 * * sun'")
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}: use an IANA name such as Europe/Paris") from None
        return self

    @property
    def expression(self) -> str:
        """The cron expression of this recurrence."""
        if self.cron is not None:
            return self.cron
        if self.days is None or self.start is None:
            raise ValueError("a recurrence needs either cron or days with start")
        hour, minute = self.start.split(":")
        return f"{int(minute)} {int(hour)} * * {','.join(self.days)}"


class Acknowledgement(BaseModel):
    """Who acknowledged an alert, why, and until when."""

    by: str
    note: str | None
    at: str
    expires_at: str | None


class AlertView(BaseModel):
    """An alert episode: its state, labels, text and why it is or is not notified."""

    id: int
    name: str
    state: AlertState
    severity: Severity
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    active_since: str
    fired_at: str | None
    resolved_at: str | None
    acknowledgement: Acknowledgement | None
    silenced_by: list[str] = Field(description="Ids of the silences or maintenance windows muting it now.")
    inhibited: bool = Field(description="Muted by a firing alert of an inhibit rule's source.")
    silenced_upstream: list[str] = Field(
        default_factory=list, description="Ids of the Alertmanager silences muting it there."
    )
    flapping: bool = Field(description="Too many transitions lately: notifications wait until it settles.")
    escalated_at: str | None
    fingerprint: str = Field(description="Identity of the label set, shared by every episode of the alert.")


class TransitionView(BaseModel):
    """One entry of an alert's history."""

    id: int
    alert_id: int
    ts: str
    kind: TransitionKind
    actor: str | None
    note: str | None
    value: float | None


class AlertDetail(AlertView):
    """An alert with its history, oldest first."""

    history: list[TransitionView]


class SilenceView(BaseModel):
    """A silence (from the API or MCP) or a maintenance window (from the config file)."""

    id: str
    source: Literal["api", "config"]
    matchers: list[str]
    starts_at: str | None
    ends_at: str | None
    recurrence: Recurrence | None
    author: str | None
    reason: str
    created_at: str | None
    active: bool = Field(description="In force right now.")
    deleted_at: str | None = None
    deleted_by: str | None = None


class AcknowledgeRequest(BaseModel):
    """The body of ``POST /api/v1/alerts/{id}/acknowledge``."""

    by: str = Field("api", min_length=1, description="Who acknowledges; default: the caller (api).")
    note: str | None = None
    expires: Duration | None = Field(None, description="e.g. 2h; unset: until the alert resolves.")


class SilenceRequest(BaseModel):
    """The body of ``POST /api/v1/silences``."""

    matchers: list[str] = Field(min_length=1, examples=[["alertname=DiskSpaceLow", "mountpoint=/var"]])
    duration: Duration = Field(description="How long from starts_at, e.g. 2h; with recurrence, how long it recurs.")
    reason: str = Field(min_length=1)
    author: str = Field(min_length=1)
    starts_at: float | None = Field(None, description="Unix time; default now.")
    recurrence: Recurrence | None = Field(
        None, description="Only inside these windows, e.g. every Sunday 02:00 for 2h."
    )
