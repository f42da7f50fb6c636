"""Delivery of the notifications the engine queued in ``state.db``: at least once, in order per receiver.

Each receiver's queue is worked oldest first; the first notification that fails holds back the ones behind it (a
"resolved" never overtakes its "firing"). A failure that may pass (5xx, timeout, connection error) is retried with
exponential backoff from ``delivery.initial_backoff`` up to ``delivery.max_backoff``, or after the ``Retry-After``
of a 429; one that will not (another 4xx, a rejected recipient) fails at once, and so does a notification still
undelivered ``delivery.give_up_after`` after it was queued. A notification is marked sent only after its receiver
accepted it, so a crash in between sends it again on restart (the one in flight, at most, per receiver).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from crucible_monitor.alerts.config import DeliveryConfig
from crucible_monitor.alerts.notifiers import DeliveryError, Notification, Notifier
from crucible_monitor.alerts.store import ALERT_MIGRATIONS, OutboxRow
from crucible_monitor.config import format_duration
from crucible_monitor.storage.state import StateDB

__all__ = ["DeliveryReport", "Outbox"]

logger = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one delivery round did, by outbox id."""

    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


class Outbox:
    """Works the outbox: call :meth:`deliver` periodically (every few seconds)."""

    def __init__(
        self,
        state: StateDB,
        notifiers: Mapping[str, Notifier],
        delivery: DeliveryConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.notifiers = notifiers
        self.delivery = delivery
        self.clock = clock
        self._lock = asyncio.Lock()
        state.migrate("alerts", ALERT_MIGRATIONS)

    def pending(self) -> list[OutboxRow]:
        """Notifications not delivered yet, oldest first."""
        return [OutboxRow.from_row(r) for r in self.state.execute("SELECT * FROM outbox WHERE status = 'pending'")]

    async def deliver(self) -> DeliveryReport:
        """Send what is due, receivers concurrently, each receiver's queue in order."""
        async with self._lock:
            queues: dict[str, list[OutboxRow]] = {}
            for row in self.pending():
                queues.setdefault(row.receiver, []).append(row)
            report = DeliveryReport()
            await asyncio.gather(*(self._work(rows, report) for rows in queues.values()))
            return report

    async def _work(self, rows: list[OutboxRow], report: DeliveryReport) -> None:
        for row in sorted(rows, key=lambda r: r.id):
            now = self.clock()
            if row.next_attempt > now:
                return
            notifier = self.notifiers.get(row.receiver)
            if notifier is None:
                self._fail(row, f"receiver {row.receiver!r} is no longer configured", report)
                continue
            try:
                await notifier.send(Notification.model_validate_json(row.payload))
            except DeliveryError as exc:
                if not self._retry(row, exc, report):
                    continue
                return
            self.state.execute(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, done_at = ?, last_error = NULL "
                "WHERE id = ?",
                (self.clock(), row.id),
            )
            report.sent.append(row.id)

    def _retry(self, row: OutboxRow, error: DeliveryError, report: DeliveryReport) -> bool:
        """Schedule the next attempt; False (and failed) when it must not or cannot be retried."""
        attempts = row.attempts + 1
        if not error.retryable:
            self._fail(row, str(error), report)
            return False
        now = self.clock()
        initial = self.delivery.initial_backoff.total_seconds()
        delay = min(initial * 2 ** (attempts - 1), self.delivery.max_backoff.total_seconds())
        if error.retry_after is not None:
            delay = max(error.retry_after, 0.0)
        if now + delay > row.created_at + self.delivery.give_up_after.total_seconds():
            self._fail(row, f"{error}; gave up after {attempts} attempts", report)
            return False
        logger.warning(
            "notification %d to %s failed (%s); attempt %d, retrying in %s",
            row.id,
            row.receiver,
            error,
            attempts,
            format_duration(timedelta(seconds=delay)),
        )
        self.state.execute(
            "UPDATE outbox SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
            (attempts, now + delay, str(error), row.id),
        )
        report.retrying.append(row.id)
        return True

    def _fail(self, row: OutboxRow, reason: str, report: DeliveryReport) -> None:
        logger.error("notification %d to %s failed for good: %s", row.id, row.receiver, reason)
        self.state.execute(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?, done_at = ? WHERE id = ?",
            (reason, self.clock(), row.id),
        )
        report.failed.append(row.id)
