"""The alerting operations every interface offers (through the Monitor): list, inspect, acknowledge, silence.

Results are pydantic models with ISO 8601 times; bad input raises :class:`~crucible_monitor.errors.QueryError`
with the valid choices, an unknown id :class:`~crucible_monitor.errors.NotFoundError`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import timedelta

from crucible_monitor.alerts.engine import AlertEngine, Muting
from crucible_monitor.alerts.matchers import parse_matcher
from crucible_monitor.alerts.routing import recurrence_active
from crucible_monitor.alerts.store import AlertRow, SilenceRow, TransitionKind, TransitionRow, add_transition
from crucible_monitor.alerts.upstream import UpstreamSilences
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.models import Severity, iso
from crucible_monitor.schemas.alerts import (
    Acknowledgement,
    AlertDetail,
    AlertFilter,
    AlertState,
    AlertView,
    Recurrence,
    SilenceView,
    TransitionView,
)

__all__ = ["MAX_SILENCE", "AlertOperations"]

MAX_SILENCE = timedelta(days=366)
_FILTERS: dict[str, str] = {
    "active": "state != 'resolved'",
    "pending": "state = 'pending'",
    "firing": "state = 'firing'",
    "resolved": "state = 'resolved'",
    "acknowledged": "state != 'resolved' AND ack_by IS NOT NULL",
    "all": "1 = 1",
}


class AlertOperations:
    """List, inspect, acknowledge and silence alerts of an :class:`AlertEngine`."""

    def __init__(self, engine: AlertEngine, upstream: UpstreamSilences | None = None) -> None:
        self.engine = engine
        self.state = engine.state
        self.upstream = upstream or UpstreamSilences()

    def firing_rows(self) -> list[AlertRow]:
        """The firing alerts as stored."""
        return self._load("state = 'firing'", [])

    # -- alerts ------------------------------------------------------------------------------------------------

    def list_alerts(
        self, *, state: AlertFilter = "active", severity: Severity | None = None, limit: int = 100
    ) -> list[AlertView]:
        """Alerts newest first, filtered by state and severity.

        Raises:
            QueryError: an unknown state or severity (the message lists the valid ones).
        """
        if state not in _FILTERS:
            raise QueryError(f"unknown alert state {state!r}; valid: {', '.join(_FILTERS)}")
        where, params = _FILTERS[state], []
        if severity is not None:
            if severity not in set(Severity):
                raise QueryError(f"unknown severity {severity!r}; valid: {', '.join(Severity)}")
            where += " AND severity = ?"
            params.append(str(severity))
        return self._views(self._load(f"{where} ORDER BY id DESC LIMIT ?", [*params, limit]))

    def get_alert(self, alert_id: int) -> AlertDetail:
        """One alert with its history.

        Raises:
            NotFoundError: no alert has this id.
        """
        row = self._one(alert_id)
        history = [
            TransitionRow.from_row(r)
            for r in self.state.execute("SELECT * FROM alert_history WHERE alert_id = ? ORDER BY id", (alert_id,))
        ]
        [view] = self._views([row])
        return AlertDetail(**view.model_dump(), history=[_transition(t) for t in history])

    def acknowledge_alert(
        self, alert_id: int, *, by: str, note: str | None = None, expires: timedelta | None = None
    ) -> AlertView:
        """Acknowledge a pending or firing alert: it is not notified again until it resolves or ``expires`` passes.

        Raises:
            NotFoundError: no alert has this id.
            QueryError: the alert is resolved, or ``by`` is empty, or ``expires`` is not positive.
        """
        if not by.strip():
            raise QueryError("say who acknowledges (by), e.g. your name")
        if expires is not None and expires <= timedelta(0):
            raise QueryError("expires must be a positive duration, e.g. 2h")
        now = self.engine.clock()
        with self.state.transaction() as db:
            row = self._one(alert_id)
            if row.state is AlertState.RESOLVED:
                raise QueryError(
                    f"alert {alert_id} is resolved; only pending or firing alerts can be acknowledged "
                    "(list_alerts shows the active ones)"
                )
            until = now + expires.total_seconds() if expires is not None else None
            db.execute(
                "UPDATE alerts SET ack_by = ?, ack_note = ?, ack_at = ?, ack_expires = ? WHERE id = ?",
                (by, note, now, until, alert_id),
            )
            add_transition(db, row, TransitionKind.ACKNOWLEDGED, now, actor=by, note=note)
        [view] = self._views([self._one(alert_id)])
        return view

    def alert_history(self, *, since: float | None = None, limit: int = 100) -> list[TransitionView]:
        """Transitions of every alert, newest first."""
        rows = self.state.execute(
            "SELECT * FROM alert_history WHERE ts >= ? ORDER BY ts DESC, id DESC LIMIT ?",
            (since if since is not None else 0.0, limit),
        )
        return [_transition(TransitionRow.from_row(r)) for r in rows]

    # -- silences ----------------------------------------------------------------------------------------------

    def silence_alerts(
        self,
        matchers: Sequence[str],
        *,
        duration: timedelta,
        reason: str,
        author: str,
        starts_at: float | None = None,
        recurrence: Recurrence | None = None,
    ) -> SilenceView:
        """Mute notifications of the alerts matching every matcher, from ``starts_at`` (now) for ``duration``.

        With ``recurrence`` the silence applies only inside its windows (e.g. Sundays 02:00 for 2 h) during that
        period.

        Raises:
            QueryError: no matcher, a malformed one, matchers that would match every alert, an empty reason or
                author, or a duration that is not positive or longer than a year.
        """
        try:
            parsed = [parse_matcher(m) for m in matchers]
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        if not parsed or all(m.matches({}) for m in parsed):
            raise QueryError(
                "give at least one matcher that selects something, e.g. alertname=HighCpuUsage or service=mysql "
                "(forms: name=value, name!=value, name=~regex, name!~regex)"
            )
        if not reason.strip() or not author.strip():
            raise QueryError("a silence needs a reason and an author")
        if not timedelta(0) < duration <= MAX_SILENCE:
            raise QueryError(f"duration must be positive and at most {MAX_SILENCE.days} days, e.g. 2h or 7d")
        now = self.engine.clock()
        start = now if starts_at is None else starts_at
        row = SilenceRow(
            id=uuid.uuid4().hex,
            matchers=[str(m) for m in parsed],
            starts_at=start,
            ends_at=start + duration.total_seconds(),
            recurrence=recurrence.model_dump_json() if recurrence is not None else None,
            author=author,
            reason=reason,
            created_at=now,
            deleted_at=None,
            deleted_by=None,
        )
        self.state.execute(
            "INSERT INTO silences (id, matchers, starts_at, ends_at, recurrence, author, reason, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.id,
                json.dumps(row.matchers),
                row.starts_at,
                row.ends_at,
                row.recurrence,
                author,
                reason,
                now,
            ),
        )
        return self._silence_view(row, now)

    def list_silences(self, *, include_expired: bool = False) -> list[SilenceView]:
        """Silences (newest first) and the config's maintenance windows; expired and deleted ones on request."""
        now = self.engine.clock()
        where = "1 = 1" if include_expired else "deleted_at IS NULL AND ends_at > ?"
        rows = self.state.execute(
            f"SELECT * FROM silences WHERE {where} ORDER BY created_at DESC", () if include_expired else (now,)
        )
        views = [self._silence_view(SilenceRow.from_row(r), now) for r in rows]
        views.extend(
            SilenceView(
                id=f"window:{w.name}",
                source="config",
                matchers=[str(m) for m in w.matchers],
                starts_at=None,
                ends_at=None,
                recurrence=w.schedule,
                author=None,
                reason=w.reason,
                created_at=None,
                active=recurrence_active(w.schedule, now),
            )
            for w in self.engine.config.maintenance_windows
        )
        return views

    def delete_silence(self, silence_id: str, *, by: str) -> SilenceView:
        """End a silence now.

        Raises:
            NotFoundError: no silence has this id.
            QueryError: it is a maintenance window from the config file (edit the file instead).
        """
        if silence_id.startswith("window:"):
            raise QueryError(f"{silence_id} is a maintenance window from the config file; remove it there")
        now = self.engine.clock()
        self.state.execute(
            "UPDATE silences SET deleted_at = ?, deleted_by = ? WHERE id = ? AND deleted_at IS NULL",
            (now, by, silence_id),
        )
        rows = self.state.execute("SELECT * FROM silences WHERE id = ?", (silence_id,))
        if not rows:
            raise NotFoundError(f"no silence with id {silence_id!r}; list_silences shows them")
        return self._silence_view(SilenceRow.from_row(rows[0]), now)

    # -- helpers -----------------------------------------------------------------------------------------------

    def _load(self, where: str, params: Sequence[object]) -> list[AlertRow]:
        return [AlertRow.from_row(r) for r in self.state.execute(f"SELECT * FROM alerts WHERE {where}", params)]

    def _views(self, rows: list[AlertRow]) -> list[AlertView]:
        """Views of ``rows``, with muting judged against every firing alert (inhibition sources)."""
        firing = self._load("state = 'firing'", [])
        muting = self.engine.muting([*firing, *rows], self.engine.clock())
        return [
            _view(
                r, muting.get(r.fingerprint) if r.state is AlertState.FIRING else None, self.upstream.get(r.fingerprint)
            )
            for r in rows
        ]

    def _one(self, alert_id: int) -> AlertRow:
        rows = self._load("id = ?", [alert_id])
        if not rows:
            raise NotFoundError(f"no alert with id {alert_id}; list_alerts shows the alerts and their ids")
        return rows[0]

    def _silence_view(self, row: SilenceRow, now: float) -> SilenceView:
        recurrence = Recurrence.model_validate_json(row.recurrence) if row.recurrence else None
        active = row.deleted_at is None and row.starts_at <= now < row.ends_at
        if active and recurrence is not None:
            active = recurrence_active(recurrence, now)
        return SilenceView(
            id=row.id,
            source="api",
            matchers=row.matchers,
            starts_at=iso(row.starts_at),
            ends_at=iso(row.ends_at),
            recurrence=recurrence,
            author=row.author,
            reason=row.reason,
            created_at=iso(row.created_at),
            active=active,
            deleted_at=iso(row.deleted_at) if row.deleted_at is not None else None,
            deleted_by=row.deleted_by,
        )


def _optional_iso(ts: float | None) -> str | None:
    return iso(ts) if ts is not None else None


def _view(row: AlertRow, muting: Muting | None, upstream: list[str]) -> AlertView:
    ack = None
    if row.ack_by is not None and row.ack_at is not None:
        ack = Acknowledgement(
            by=row.ack_by, note=row.ack_note, at=iso(row.ack_at), expires_at=_optional_iso(row.ack_expires)
        )
    return AlertView(
        id=row.id,
        name=row.rule,
        state=row.state,
        severity=Severity(row.severity),
        labels=row.labels,
        annotations=row.annotations,
        value=row.value,
        active_since=iso(row.active_since),
        fired_at=_optional_iso(row.fired_at),
        resolved_at=_optional_iso(row.resolved_at),
        acknowledgement=ack,
        silenced_by=list(muting.silenced_by) if muting else [],
        inhibited=muting.inhibited if muting else False,
        silenced_upstream=upstream if row.state is AlertState.FIRING else [],
        flapping=row.flapping,
        escalated_at=_optional_iso(row.escalated_at),
        fingerprint=row.fingerprint,
    )


def _transition(row: TransitionRow) -> TransitionView:
    return TransitionView(
        id=row.id, alert_id=row.alert_id, ts=iso(row.ts), kind=row.kind, actor=row.actor, note=row.note, value=row.value
    )
