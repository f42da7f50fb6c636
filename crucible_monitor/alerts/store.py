"""The alerting area of ``state.db``: alerts and their history, groups, silences and the notification outbox.

One row of ``alerts`` is one episode of one alert (pending → firing → resolved); the same labels firing again later
is a new episode with a new id, and both share a ``fingerprint``. ``alert_groups`` remembers, per notification
group, which alerts were last notified as firing and when, which is what keeps notifications from repeating or
going missing across restarts. State changes and the notifications they cause are written in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from crucible_monitor.models import EventKind, labels_key
from crucible_monitor.schemas.alerts import AlertState, TransitionKind

__all__ = [
    "ALERT_MIGRATIONS",
    "AlertRow",
    "AlertState",
    "GroupRow",
    "OutboxRow",
    "SilenceRow",
    "TransitionKind",
    "TransitionRow",
    "add_transition",
    "enqueue",
    "fingerprint",
    "insert_alert",
    "load_alerts",
    "load_groups",
    "save_alert",
]

ALERT_MIGRATIONS: list[str] = [
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        fingerprint TEXT NOT NULL,
        rule TEXT NOT NULL,
        instance TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        value REAL,
        active_since REAL NOT NULL,
        fired_at REAL,
        resolved_at REAL,
        cleared_since REAL,
        last_eval REAL NOT NULL,
        ack_by TEXT,
        ack_note TEXT,
        ack_at REAL,
        ack_expires REAL,
        flapping INTEGER NOT NULL DEFAULT 0,
        escalated_at REAL
    );
    CREATE UNIQUE INDEX alerts_open ON alerts (fingerprint) WHERE state != 'resolved';
    CREATE INDEX alerts_state ON alerts (state);
    CREATE INDEX alerts_fingerprint ON alerts (fingerprint, id);
    CREATE TABLE alert_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id INTEGER NOT NULL,
        fingerprint TEXT NOT NULL,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        note TEXT,
        value REAL
    );
    CREATE INDEX alert_history_alert ON alert_history (alert_id, id);
    CREATE INDEX alert_history_fingerprint ON alert_history (fingerprint, ts);
    CREATE INDEX alert_history_ts ON alert_history (ts);
    CREATE TABLE alert_groups (
        key TEXT PRIMARY KEY,
        route TEXT NOT NULL,
        labels TEXT NOT NULL,
        next_flush REAL NOT NULL,
        last_sent REAL,
        notified TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE silences (
        id TEXT PRIMARY KEY,
        matchers TEXT NOT NULL,
        starts_at REAL NOT NULL,
        ends_at REAL NOT NULL,
        recurrence TEXT,
        author TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at REAL NOT NULL,
        deleted_at REAL,
        deleted_by TEXT
    );
    CREATE INDEX silences_ends ON silences (ends_at);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        receiver TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at REAL NOT NULL,
        next_attempt REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'pending',
        last_error TEXT,
        done_at REAL
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt)
    """,
]


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable identity of an alert's label set (16 hex digits)."""
    return hashlib.sha256(labels_key(labels).encode()).hexdigest()[:16]


@dataclass(slots=True)
class AlertRow:
    """One episode of an alert as stored."""

    id: int
    fingerprint: str
    rule: str
    instance: str
    labels: dict[str, str]
    annotations: dict[str, str]
    severity: str
    state: AlertState
    value: float | None
    active_since: float
    fired_at: float | None = None
    resolved_at: float | None = None
    cleared_since: float | None = None
    last_eval: float = 0.0
    ack_by: str | None = None
    ack_note: str | None = None
    ack_at: float | None = None
    ack_expires: float | None = None
    flapping: bool = False
    escalated_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        """Whether someone acknowledged this episode (and the acknowledgement has not expired)."""
        return self.ack_by is not None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> AlertRow:
        """Build from a ``SELECT * FROM alerts`` row."""
        data = dict(row)
        data["labels"] = json.loads(data["labels"])
        data["annotations"] = json.loads(data["annotations"])
        data["state"] = AlertState(data["state"])
        data["flapping"] = bool(data["flapping"])
        return cls(**data)


_LIFECYCLE = (
    "annotations",
    "state",
    "value",
    "fired_at",
    "resolved_at",
    "cleared_since",
    "last_eval",
    "flapping",
    "escalated_at",
)


def _column(row: AlertRow, name: str) -> Any:
    value = getattr(row, name)
    if name in ("labels", "annotations"):
        return json.dumps(value, separators=(",", ":"))
    if name == "flapping":
        return int(value)
    return value


def insert_alert(db: sqlite3.Connection, row: AlertRow) -> int:
    """Store a new episode (``row.id`` is ignored); returns its id."""
    names = [n for n in AlertRow.__slots__ if n != "id"]
    cursor = db.execute(
        f"INSERT INTO alerts ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [_column(row, n) for n in names],
    )
    row.id = int(cursor.lastrowid or 0)
    return row.id


def save_alert(db: sqlite3.Connection, row: AlertRow) -> None:
    """Write the lifecycle columns of an episode (acknowledgements are written only by their own statements)."""
    db.execute(
        f"UPDATE alerts SET {', '.join(f'{n} = ?' for n in _LIFECYCLE)} WHERE id = ?",
        [*(_column(row, n) for n in _LIFECYCLE), row.id],
    )


def load_alerts(
    db: sqlite3.Connection, where: str = "state != 'resolved'", params: Sequence[Any] = ()
) -> list[AlertRow]:
    """Episodes matching a SQL condition, oldest first."""
    cursor = db.execute(f"SELECT * FROM alerts WHERE {where} ORDER BY id", params)
    cursor.row_factory = sqlite3.Row
    return [AlertRow.from_row(r) for r in cursor.fetchall()]


def add_transition(
    db: sqlite3.Connection,
    alert: AlertRow,
    kind: TransitionKind,
    ts: float,
    *,
    actor: str | None = None,
    note: str | None = None,
) -> None:
    """Append an entry to an alert's history, and record it as an event (explanations correlate events)."""
    db.execute(
        "INSERT INTO alert_history (alert_id, fingerprint, ts, kind, actor, note, value) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (alert.id, alert.fingerprint, ts, kind.value, actor, note, alert.value),
    )
    db.execute(
        "INSERT INTO events (ts, kind, subject, severity, message, data) VALUES (?, ?, ?, ?, ?, ?)",
        (
            ts,
            EventKind.ALERT.value,
            alert.rule,
            alert.severity,
            f"alert {alert.rule} {kind.value}" + (f" by {actor}" if actor else "") + (f": {note}" if note else ""),
            json.dumps({"alert_id": alert.id, "labels": alert.labels, "value": alert.value, "transition": kind.value}),
        ),
    )


@dataclass(frozen=True, slots=True)
class TransitionRow:
    """An entry of an alert's history."""

    id: int
    alert_id: int
    fingerprint: str
    ts: float
    kind: TransitionKind
    actor: str | None
    note: str | None
    value: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> TransitionRow:
        """Build from a ``SELECT * FROM alert_history`` row."""
        data = dict(row)
        data["kind"] = TransitionKind(data["kind"])
        return cls(**data)


@dataclass(slots=True)
class GroupRow:
    """A notification group: when it is next looked at, when it was last sent, and what it said was firing."""

    key: str
    route: str
    labels: dict[str, str]
    next_flush: float
    last_sent: float | None = None
    notified: set[str] = field(default_factory=set)


def load_groups(db: sqlite3.Connection) -> dict[str, GroupRow]:
    """Every notification group by key."""
    return {
        key: GroupRow(key, route, json.loads(labels), next_flush, last_sent, set(json.loads(notified)))
        for key, route, labels, next_flush, last_sent, notified in db.execute(
            "SELECT key, route, labels, next_flush, last_sent, notified FROM alert_groups"
        )
    }


def save_groups(db: sqlite3.Connection, groups: Iterable[GroupRow], deleted: Iterable[str]) -> None:
    """Write changed groups and delete empty ones."""
    db.executemany(
        "INSERT INTO alert_groups (key, route, labels, next_flush, last_sent, notified) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET next_flush = excluded.next_flush, last_sent = excluded.last_sent, "
        "notified = excluded.notified",
        [
            (g.key, g.route, labels_key(g.labels), g.next_flush, g.last_sent, json.dumps(sorted(g.notified)))
            for g in groups
        ],
    )
    db.executemany("DELETE FROM alert_groups WHERE key = ?", [(key,) for key in deleted])


@dataclass(frozen=True, slots=True)
class SilenceRow:
    """A silence created through the API or MCP (recurring when ``recurrence`` is set, as JSON)."""

    id: str
    matchers: list[str]
    starts_at: float
    ends_at: float
    recurrence: str | None
    author: str
    reason: str
    created_at: float
    deleted_at: float | None
    deleted_by: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SilenceRow:
        """Build from a ``SELECT * FROM silences`` row."""
        data = dict(row)
        data["matchers"] = json.loads(data["matchers"])
        return cls(**data)


def enqueue(db: sqlite3.Connection, uid: str, receiver: str, payload: str, now: float) -> None:
    """Queue a notification for delivery to ``receiver`` (due at once)."""
    db.execute(
        "INSERT INTO outbox (uid, receiver, payload, created_at, next_attempt) VALUES (?, ?, ?, ?, ?)",
        (uid, receiver, payload, now, now),
    )


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A notification waiting for (or done with) delivery to one receiver."""

    id: int
    uid: str
    receiver: str
    payload: str
    created_at: float
    next_attempt: float
    attempts: int
    status: str
    last_error: str | None
    done_at: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> OutboxRow:
        """Build from a ``SELECT * FROM outbox`` row."""
        return cls(**dict(row))
