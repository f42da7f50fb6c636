"""``state.db``: SQLite (WAL mode) for events, and the alerts, silences, anomalies, outbox and audit of other areas.

Each area owns its tables and a list of numbered migrations, applied in order by :meth:`StateDB.migrate`; the
``schema_versions`` table records the last one applied per area, so areas evolve independently.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crucible_monitor.errors import StorageError
from crucible_monitor.models import Event, EventKind, Severity

__all__ = ["AUDIT_FIELD_CAP", "AUDIT_MIGRATIONS", "EVENT_MIGRATIONS", "AuditRecord", "StateDB", "StoredEvent"]

EVENT_MIGRATIONS: list[str] = [
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_ts ON events (ts);
    CREATE INDEX events_subject_ts ON events (subject, ts);
    """,
]


AUDIT_MIGRATIONS: list[str] = [
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        reason TEXT NOT NULL,
        dry_run INTEGER NOT NULL,
        result TEXT NOT NULL,
        detail TEXT NOT NULL,
        state_before TEXT,
        state_after TEXT
    );
    CREATE INDEX audit_target_ts ON audit (target, ts);
    """,
    "ALTER TABLE audit ADD COLUMN claimed_by TEXT",
]

AUDIT_FIELD_CAP = 500
"""Characters kept of each free-text field of an audit record (what the caller sent may be any size)."""


def _capped(text: str) -> str:
    return text if len(text) <= AUDIT_FIELD_CAP else text[: AUDIT_FIELD_CAP - 1] + "…"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One action attempted on the host: who, when, why, and what came of it."""

    id: int
    ts: float
    actor: str
    action: str
    target: str
    reason: str
    dry_run: bool
    result: str
    detail: str
    state_before: dict[str, Any] | None
    state_after: dict[str, Any] | None
    claimed_by: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as stored, with its id."""

    id: int
    event: Event


class StateDB:
    """A thread-safe handle on ``state.db``."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_versions (area TEXT PRIMARY KEY, version INTEGER)")
            self.migrate("events", EVENT_MIGRATIONS)
            self.migrate("audit", AUDIT_MIGRATIONS)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {path}: {exc}") from exc

    def migrate(self, area: str, migrations: Sequence[str]) -> None:
        """Apply the migrations of ``area`` not applied yet, each in one transaction (statements split on ``;``)."""
        with self._lock:
            row = self._db.execute("SELECT version FROM schema_versions WHERE area = ?", (area,)).fetchone()
        version = row[0] if row else 0
        for number, script in enumerate(migrations[version:], start=version + 1):
            with self.transaction():
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute(
                    "INSERT INTO schema_versions (area, version) VALUES (?, ?) "
                    "ON CONFLICT (area) DO UPDATE SET version = excluded.version",
                    (area, number),
                )

    def transaction(self) -> _Transaction:
        """``with db.transaction(): ...`` runs the block atomically (BEGIN IMMEDIATE … COMMIT/ROLLBACK)."""
        return _Transaction(self._db, self._lock)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one statement and return all rows."""
        with self._lock:
            cursor = self._db.execute(sql, params)
            cursor.row_factory = sqlite3.Row
            return cursor.fetchall()

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # -- events ---------------------------------------------------------------------------------------------

    def add_events(self, events: Iterable[Event]) -> list[int]:
        """Store events; those with ``ts == 0`` are stamped now. Returns their ids."""
        now = self.clock()
        ids = []
        with self.transaction():
            for event in events:
                cursor = self._db.execute(
                    "INSERT INTO events (ts, kind, subject, severity, message, data) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        event.ts or now,
                        event.kind.value,
                        event.subject,
                        event.severity.value,
                        event.message,
                        json.dumps(dict(event.data), default=str),
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    def events(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind] = (),
        subject: str | None = None,
        limit: int = 100,
    ) -> list[StoredEvent]:
        """Events newest first, filtered by time, kind and subject."""
        clauses: list[str] = ["1=1"]
        params: list[Any] = []
        if since is not None:
            clauses.append("ts >= ?")
            params.append(since)
        if until is not None:
            clauses.append("ts < ?")
            params.append(until)
        if kinds:
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(k.value for k in kinds)
        if subject is not None:
            clauses.append("subject = ?")
            params.append(subject)
        rows = self.execute(
            f"SELECT * FROM events WHERE {' AND '.join(clauses)} ORDER BY ts DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        return [
            StoredEvent(
                id=row["id"],
                event=Event(
                    kind=EventKind(row["kind"]),
                    subject=row["subject"],
                    message=row["message"],
                    severity=Severity(row["severity"]),
                    data=json.loads(row["data"]),
                    ts=row["ts"],
                ),
            )
            for row in rows
        ]

    def prune_events(self, older_than: float) -> int:
        """Delete events older than a timestamp; returns how many."""
        with self.transaction():
            return self._db.execute("DELETE FROM events WHERE ts < ?", (older_than,)).rowcount

    # -- audit ----------------------------------------------------------------------------------------------

    def add_audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        reason: str,
        dry_run: bool,
        result: str,
        detail: str,
        state_before: dict[str, Any] | None = None,
        state_after: dict[str, Any] | None = None,
        claimed_by: str | None = None,
    ) -> int:
        """Record an action attempt; returns its id. Free text is cut to :data:`AUDIT_FIELD_CAP` characters."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO audit (ts, actor, action, target, reason, dry_run, result, detail, state_before,"
                " state_after, claimed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.clock(),
                    _capped(actor),
                    action,
                    _capped(target),
                    _capped(reason),
                    int(dry_run),
                    result,
                    _capped(detail),
                    None if state_before is None else json.dumps(state_before),
                    None if state_after is None else json.dumps(state_after),
                    None if claimed_by is None else _capped(claimed_by),
                ),
            )
            return int(cursor.lastrowid or 0)

    def audit(
        self,
        *,
        target: str | None = None,
        action: str | None = None,
        since: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditRecord]:
        """Audit records newest first: ``limit`` of them after skipping ``offset``."""
        where, params = self._audit_filter(target, action, since)
        rows = self.execute(
            f"SELECT * FROM audit WHERE {where} ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [self._audit_record(row) for row in rows]

    def audit_count(self, *, target: str | None = None, since: float | None = None) -> int:
        """How many audit records match (for ``total``)."""
        where, params = self._audit_filter(target, None, since)
        return int(self.execute(f"SELECT COUNT(*) FROM audit WHERE {where}", params)[0][0])

    @staticmethod
    def _audit_filter(target: str | None, action: str | None, since: float | None) -> tuple[str, list[Any]]:
        clauses: list[str] = ["1=1"]
        params: list[Any] = []
        for column, value in (("target", target), ("action", action)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("ts >= ?")
            params.append(since)
        return " AND ".join(clauses), params

    @staticmethod
    def _audit_record(row: sqlite3.Row) -> AuditRecord:
        return AuditRecord(
            id=row["id"],
            ts=row["ts"],
            actor=row["actor"],
            action=row["action"],
            target=row["target"],
            reason=row["reason"],
            dry_run=bool(row["dry_run"]),
            result=row["result"],
            detail=row["detail"],
            state_before=None if row["state_before"] is None else json.loads(row["state_before"]),
            state_after=None if row["state_after"] is None else json.loads(row["state_after"]),
            claimed_by=row["claimed_by"],
        )


class _Transaction:
    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
