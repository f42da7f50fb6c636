"""The alert engine: one evaluation cycle turns the inputs into alert state and queued notifications.

Each :meth:`AlertEngine.evaluate`:

1. reads the inputs once (:class:`~crucible_monitor.alerts.conditions.Snapshot`) and evaluates every rule;
2. moves alerts through their lifecycle: a new instance is pending, and firing once it has held for ``for``
   (at once when ``for`` is 0); a pending alert whose condition goes away is cleared; a firing one resolves when
   its condition has been gone for ``keep_firing_for``. Threshold rules with ``clear`` keep firing until the value
   crosses it (hysteresis). A rule with no data at all leaves its alerts as they are;
3. expires acknowledgements and updates flap detection (an alert with too many transitions in the window is
   flapping: its notifications wait until it settles);
4. dispatches with Alertmanager's meaning: alerts are routed, grouped by labels, and a group is notified
   ``group_wait`` after it appears, then at most every ``group_interval`` when it changed (an alert newly firing or
   one resolved), and again every ``repeat_interval`` while it fires. Silenced, inhibited, acknowledged and
   flapping alerts are left out of notifications (a resolution of an alert that was notified is still sent).
   A firing alert that stays unacknowledged past an escalation's ``after`` is also sent to its receivers.

Steps 2 to 4 run in one ``state.db`` transaction with the outbox inserts, so a crash loses or repeats nothing: the
next run sees either the old state and no notification, or the new state and the notification in the outbox.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from crucible_monitor.alerts.conditions import AlertInputs, Hit, Outcome, Snapshot, combine, evaluate
from crucible_monitor.alerts.config import AlertingConfig
from crucible_monitor.alerts.matchers import matches_all
from crucible_monitor.alerts.notifiers import Notification, NotifiedAlert
from crucible_monitor.alerts.routing import (
    ActiveSilence,
    ResolvedRoute,
    active_silences,
    group_of,
    inhibited,
    resolve_routes,
    routes_for,
    silenced_by,
)
from crucible_monitor.alerts.rules import CompositeRule, Rule
from crucible_monitor.alerts.store import (
    ALERT_MIGRATIONS,
    AlertRow,
    AlertState,
    GroupRow,
    SilenceRow,
    TransitionKind,
    add_transition,
    enqueue,
    fingerprint,
    insert_alert,
    load_alerts,
    load_groups,
    save_alert,
    save_groups,
)
from crucible_monitor.alerts.templating import TemplateContext, render
from crucible_monitor.models import labels_key
from crucible_monitor.storage.state import StateDB

__all__ = ["AlertEngine", "CycleReport", "Muting"]

logger = logging.getLogger(__name__)


@dataclass
class CycleReport:
    """What one evaluation cycle did."""

    ts: float
    rules: int = 0
    unknown_rules: list[str] = field(default_factory=list)
    transitions: int = 0
    notifications: int = 0


@dataclass(frozen=True, slots=True)
class Muting:
    """Why a firing alert is left out of notifications now."""

    silenced_by: tuple[str, ...] = ()
    inhibited: bool = False


class AlertEngine:
    """Evaluates rules into alerts in ``state.db`` and queues their notifications in the outbox."""

    def __init__(
        self,
        config: AlertingConfig,
        state: StateDB,
        inputs: AlertInputs,
        *,
        host: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.inputs = inputs
        self.host = host
        self.clock = clock
        state.migrate("alerts", ALERT_MIGRATIONS)
        self.configure(config)

    def configure(self, config: AlertingConfig) -> None:
        """Use a new configuration from the next cycle on (alerts of removed rules resolve then)."""
        self.config = config
        rules = [r for r in config.rules if r.enabled]
        self.rules: dict[str, Rule] = {r.name: r for r in rules}
        self._plain = [r for r in rules if not isinstance(r, CompositeRule)]
        self._composite = [r for r in rules if isinstance(r, CompositeRule)]
        self.routes, self.root_route = resolve_routes(config)

    # -- the cycle ----------------------------------------------------------------------------------------------

    def evaluate(self) -> CycleReport:
        """Run one cycle: evaluate every rule, update alerts, queue notifications."""
        now = self.clock()
        report = CycleReport(ts=now, rules=len(self.rules))
        firing: dict[str, set[str]] = {}
        for rule, instance in self.state.execute("SELECT rule, instance FROM alerts WHERE state = 'firing'"):
            firing.setdefault(rule, set()).add(instance)
        snapshot = Snapshot(self.inputs, now, self.config.stale_after.total_seconds())
        outcomes: dict[str, Outcome | None] = {}
        for rule in self._plain:
            try:
                outcomes[rule.name] = evaluate(rule, snapshot, firing.get(rule.name, ()))
            except Exception:  # one broken input must not stop the other rules
                logger.exception("evaluating alert rule %s failed", rule.name)
                outcomes[rule.name] = None
        for composite in self._composite:
            outcomes[composite.name] = combine(composite, outcomes)
        report.unknown_rules = sorted(name for name, outcome in outcomes.items() if outcome is None)
        with self.state.transaction() as db:
            touched = self._lifecycle(db, outcomes, now, report)
            self._expire_acks(db, now, report)
            self._update_flapping(db, touched, now, report)
            report.notifications = self._dispatch(db, now, report)
        return report

    def _lifecycle(
        self, db: sqlite3.Connection, outcomes: Mapping[str, Outcome | None], now: float, report: CycleReport
    ) -> set[str]:
        """Apply the outcomes to the open alerts; return the fingerprints that fired or resolved."""
        by_rule: dict[str, dict[str, AlertRow]] = {}
        for row in load_alerts(db):
            by_rule.setdefault(row.rule, {})[row.instance] = row
        touched: set[str] = set()

        def move(row: AlertRow, kind: TransitionKind, note: str | None = None) -> None:
            add_transition(db, row, kind, now, note=note)
            report.transitions += 1
            if kind in (TransitionKind.FIRING, TransitionKind.RESOLVED):
                touched.add(row.fingerprint)

        for name, rows in by_rule.items():
            if name not in self.rules:
                for orphan in rows.values():
                    self._close(db, orphan, now, move, note="rule removed from the configuration")
        for name, outcome in outcomes.items():
            if outcome is None:
                continue
            rule = self.rules[name]
            rows = by_rule.get(name, {})
            hits = {labels_key(hit.labels): hit for hit in outcome.hits}
            for instance, hit in hits.items():
                found = rows.get(instance)
                if found is None:
                    self._open(db, rule, instance, hit, now, move)
                    continue
                row = found
                if row.state is AlertState.PENDING and now - row.active_since >= rule.for_.total_seconds():
                    row.state, row.fired_at = AlertState.FIRING, now
                    move(row, TransitionKind.FIRING)
                row.value, row.cleared_since, row.last_eval = hit.value, None, now
                row.annotations = self._annotations(rule, row.labels, hit)
                save_alert(db, row)
            for instance, row in rows.items():
                if instance in hits or instance in outcome.unknown:
                    continue
                keep = rule.keep_firing_for.total_seconds()
                if row.state is AlertState.FIRING and keep > 0:
                    row.cleared_since = row.cleared_since or now
                    if now - row.cleared_since < keep:
                        row.last_eval = now
                        save_alert(db, row)
                        continue
                self._close(db, row, now, move)
        return touched

    def _open(
        self,
        db: sqlite3.Connection,
        rule: Rule,
        instance: str,
        hit: Hit,
        now: float,
        move: Callable[[AlertRow, TransitionKind], None],
    ) -> None:
        labels = {"host": self.host, **hit.labels, **rule.labels, "alertname": rule.name, "severity": rule.severity}
        fp = fingerprint(labels)
        previous = db.execute(
            "SELECT flapping FROM alerts WHERE fingerprint = ? ORDER BY id DESC LIMIT 1", (fp,)
        ).fetchone()
        row = AlertRow(
            id=0,
            fingerprint=fp,
            rule=rule.name,
            instance=instance,
            labels=labels,
            annotations=self._annotations(rule, labels, hit),
            severity=rule.severity.value,
            state=AlertState.PENDING,
            value=hit.value,
            active_since=now,
            last_eval=now,
            flapping=bool(previous and previous[0]),  # flapping belongs to the fingerprint, not the episode
        )
        if previous and previous[0]:
            db.execute("UPDATE alerts SET flapping = 0 WHERE fingerprint = ?", (fp,))
        insert_alert(db, row)
        move(row, TransitionKind.PENDING)
        if rule.for_.total_seconds() == 0:
            row.state, row.fired_at = AlertState.FIRING, now
            save_alert(db, row)
            move(row, TransitionKind.FIRING)

    def _close(
        self,
        db: sqlite3.Connection,
        row: AlertRow,
        now: float,
        move: Callable[..., None],
        note: str | None = None,
    ) -> None:
        kind = TransitionKind.RESOLVED if row.state is AlertState.FIRING else TransitionKind.CLEARED
        row.state, row.resolved_at, row.last_eval = AlertState.RESOLVED, now, now
        save_alert(db, row)
        move(row, kind, note)

    def _annotations(self, rule: Rule, labels: Mapping[str, str], hit: Hit) -> dict[str, str]:
        context = TemplateContext(
            name=rule.name,
            severity=rule.severity.value,
            host=self.host,
            labels=labels,
            value=hit.value,
            threshold=hit.threshold,
        )
        texts = rule.annotations.model_dump(exclude_none=True)
        return {key: render(text, context) for key, text in texts.items()}

    def _expire_acks(self, db: sqlite3.Connection, now: float, report: CycleReport) -> None:
        for row in load_alerts(db, "ack_expires IS NOT NULL AND ack_expires <= ?", (now,)):
            db.execute(
                "UPDATE alerts SET ack_by = NULL, ack_note = NULL, ack_at = NULL, ack_expires = NULL WHERE id = ?",
                (row.id,),
            )
            add_transition(db, row, TransitionKind.ACK_EXPIRED, now, actor=row.ack_by)
            report.transitions += 1

    def _update_flapping(
        self, db: sqlite3.Connection, touched: Collection[str], now: float, report: CycleReport
    ) -> None:
        flap = self.config.flapping
        if not flap.enabled:
            return
        flagged = {fp for (fp,) in db.execute("SELECT fingerprint FROM alerts WHERE flapping = 1")}
        since = now - flap.window.total_seconds()
        for fp in sorted(set(touched) | flagged):
            (count,) = db.execute(
                "SELECT count(*) FROM alert_history "
                "WHERE fingerprint = ? AND ts >= ? AND kind IN ('firing', 'resolved')",
                (fp, since),
            ).fetchone()
            [row] = load_alerts(db, "id = (SELECT max(id) FROM alerts WHERE fingerprint = ?)", (fp,))
            flapping = count >= (flap.stop_below if row.flapping else flap.start_at)
            if flapping != row.flapping:
                row.flapping = flapping
                save_alert(db, row)
                kind = TransitionKind.FLAPPING_STARTED if flapping else TransitionKind.FLAPPING_STOPPED
                add_transition(db, row, kind, now, note=f"{count} transitions in {flap.window}")
                report.transitions += 1

    def prune(self, older_than: float) -> None:
        """Forget resolved alerts (with their history), finished notifications and ended silences before a time.

        Alerts a notification group still has to announce as resolved are kept.
        """
        with self.state.transaction() as db:
            announced = set().union(*(g.notified for g in load_groups(db).values()))
            old = load_alerts(db, "state = 'resolved' AND resolved_at < ?", (older_than,))
            ids = [(r.id,) for r in old if r.fingerprint not in announced]
            db.executemany("DELETE FROM alert_history WHERE alert_id = ?", ids)
            db.executemany("DELETE FROM alerts WHERE id = ?", ids)
            db.execute("DELETE FROM outbox WHERE status != 'pending' AND done_at < ?", (older_than,))
            db.execute("DELETE FROM silences WHERE ends_at < ? OR deleted_at < ?", (older_than, older_than))

    # -- muting and dispatch --------------------------------------------------------------------------------------

    def silences_now(self, now: float) -> list[ActiveSilence]:
        """The silences and maintenance windows in force at ``now``."""
        rows = [
            SilenceRow.from_row(r)
            for r in self.state.execute("SELECT * FROM silences WHERE deleted_at IS NULL AND ends_at > ?", (now,))
        ]
        return active_silences(rows, self.config.maintenance_windows, now)

    def muting(self, alerts: Collection[AlertRow], now: float) -> dict[str, Muting]:
        """Why each firing alert of ``alerts`` is muted (silence, inhibition); unmuted ones are left out."""
        silences = self.silences_now(now)
        firing = [(a.fingerprint, a.labels) for a in alerts if a.state is AlertState.FIRING]
        result = {}
        for alert in alerts:
            if alert.state is not AlertState.FIRING:
                continue
            muting = Muting(
                silenced_by=tuple(silenced_by(alert.labels, silences)),
                inhibited=inhibited(alert.labels, alert.fingerprint, firing, self.config.inhibit_rules),
            )
            if muting.silenced_by or muting.inhibited:
                result[alert.fingerprint] = muting
        return result

    def _dispatch(self, db: sqlite3.Connection, now: float, report: CycleReport) -> int:
        open_rows = load_alerts(db)
        open_fps = {r.fingerprint for r in open_rows}
        groups = load_groups(db)
        announced = set().union(*(g.notified for g in groups.values())) - open_fps
        resolved: dict[str, AlertRow] = {}
        if announced:
            marks = ",".join("?" * len(announced))
            for row in load_alerts(db, f"state = 'resolved' AND fingerprint IN ({marks})", sorted(announced)):
                resolved[row.fingerprint] = row  # ordered by id: the newest episode wins
        muted = self.muting(open_rows, now)
        eligible = {
            r.fingerprint: r
            for r in open_rows
            if r.state is AlertState.FIRING and not r.acknowledged and not r.flapping and r.fingerprint not in muted
        }
        members: dict[str, tuple[ResolvedRoute, dict[str, str], set[str]]] = {}
        for row in [*open_rows, *resolved.values()]:
            for route in routes_for(row.labels, self.routes, self.root_route):
                if route.receivers:
                    key, labels = group_of(route, row.labels)
                    members.setdefault(key, (route, labels, set()))[2].add(row.fingerprint)
        by_name = {r.name: r for r in [*self.routes, self.root_route]}
        queued = 0
        changed: list[GroupRow] = []
        deleted: list[str] = []
        for key in sorted(members.keys() | groups.keys()):
            group = groups.get(key)
            if key in members:
                route, labels, fps = members[key]
            elif group is not None and group.route in by_name:
                route, labels, fps = by_name[group.route], group.labels, set()
            else:
                deleted.append(key)  # its route no longer exists
                continue
            now_firing = {fp for fp in fps if fp in eligible}
            before = group.notified if group else set()
            gone = {fp for fp in before if fp not in open_fps and fp not in resolved}
            now_resolved = {fp for fp in before if fp in resolved and not resolved[fp].flapping}
            if group is None:
                if not now_firing:
                    continue
                group = GroupRow(key, route.name, labels, next_flush=now + route.group_wait)
            group.notified -= gone
            if now >= group.next_flush:
                repeat = bool(now_firing) and (
                    group.last_sent is None or now - group.last_sent >= route.repeat_interval
                )
                if now_firing - group.notified or now_resolved or repeat:
                    firing_rows = _ordered(eligible[fp] for fp in now_firing)
                    resolved_rows = _ordered(resolved[fp] for fp in now_resolved)
                    queued += self._enqueue(db, route.receivers, key, labels, firing_rows, resolved_rows, now)
                    group.notified = (group.notified - now_resolved) | now_firing
                    group.last_sent = now
                group.next_flush = now + route.group_interval
            if now_firing or group.notified:
                changed.append(group)
            else:
                deleted.append(key)
        save_groups(db, changed, deleted)
        queued += self._escalate(db, eligible.values(), now, report)
        return queued

    def _escalate(self, db: sqlite3.Connection, eligible: Collection[AlertRow], now: float, report: CycleReport) -> int:
        queued = 0
        for row in eligible:
            if row.escalated_at is not None or row.fired_at is None:
                continue
            for escalation in self.config.escalations:
                if (
                    matches_all(escalation.matchers, row.labels)
                    and now - row.fired_at >= escalation.after.total_seconds()
                ):
                    key = f"escalation:{row.fingerprint}"
                    queued += self._enqueue(
                        db, escalation.receivers, key, {"alertname": row.rule}, [row], [], now, escalation=True
                    )
                    row.escalated_at = now
                    save_alert(db, row)
                    note = f"unacknowledged after {escalation.after}; sent to {', '.join(escalation.receivers)}"
                    add_transition(db, row, TransitionKind.ESCALATED, now, note=note)
                    report.transitions += 1
                    break
        return queued

    def _enqueue(
        self,
        db: sqlite3.Connection,
        receivers: Collection[str],
        key: str,
        labels: Mapping[str, str],
        firing: list[AlertRow],
        resolved: list[AlertRow],
        now: float,
        *,
        escalation: bool = False,
    ) -> int:
        alerts = [_notified(r, "firing") for r in firing] + [_notified(r, "resolved") for r in resolved]
        for receiver in receivers:
            notification = Notification(
                id=uuid.uuid4().hex,
                receiver=receiver,
                status="firing" if firing else "resolved",
                group_key=key,
                group_labels=dict(labels),
                alerts=alerts,
                escalation=escalation,
                host=self.host,
                created_at=now,
            )
            enqueue(db, notification.id, receiver, notification.model_dump_json(), now)
        if not escalation:
            note = f"sent to {', '.join(receivers)}"
            for row in [*firing, *resolved]:
                add_transition(db, row, TransitionKind.NOTIFIED, now, note=note)
        return len(receivers)


def _ordered(rows: Iterable[AlertRow]) -> list[AlertRow]:
    return sorted(rows, key=lambda r: (r.rule, labels_key(r.labels)))


def _notified(row: AlertRow, status: Literal["firing", "resolved"]) -> NotifiedAlert:
    return NotifiedAlert(
        id=row.id,
        fingerprint=row.fingerprint,
        name=row.rule,
        status=status,
        severity=row.severity,
        labels=row.labels,
        annotations=row.annotations,
        value=row.value,
        starts_at=row.fired_at or row.active_since,
        ends_at=row.resolved_at if status == "resolved" else None,
        acknowledged_by=row.ack_by,
    )
