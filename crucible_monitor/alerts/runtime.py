"""The alerting runtime the agent runs: the engine, the outbox, their notifiers and the operations, wired once."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from crucible_monitor.alerts.conditions import AlertInputs
from crucible_monitor.alerts.config import AlertingConfig
from crucible_monitor.alerts.engine import AlertEngine, CycleReport
from crucible_monitor.alerts.notifiers import build_notifiers
from crucible_monitor.alerts.operations import AlertOperations
from crucible_monitor.alerts.outbox import DeliveryReport, Outbox
from crucible_monitor.alerts.upstream import UpstreamSilences
from crucible_monitor.storage.state import StateDB

__all__ = ["Alerting"]


class Alerting:
    """Build with the effective config (:func:`~crucible_monitor.alerts.config.effective_alerting`), then run
    :meth:`evaluate` every evaluation interval and :meth:`deliver` every few seconds; :meth:`aclose` at the end.
    """

    def __init__(
        self,
        config: AlertingConfig,
        state: StateDB,
        inputs: AlertInputs,
        *,
        host: str,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.clock = clock
        self.client = httpx.AsyncClient(transport=transport)
        self.engine = AlertEngine(config, state, inputs, host=host, clock=clock)
        self.outbox = Outbox(state, build_notifiers(config.receivers, self.client, clock), config.delivery, clock=clock)
        self.upstream = UpstreamSilences()
        self.operations = AlertOperations(self.engine, self.upstream)

    def configure(self, config: AlertingConfig) -> None:
        """Apply a new effective config live (rules, routes and receivers; state and the outbox are kept)."""
        self.engine.configure(config)
        self.outbox.notifiers = build_notifiers(config.receivers, self.client, self.clock)
        self.outbox.delivery = config.delivery

    def evaluate(self) -> CycleReport:
        """One evaluation cycle (see :class:`AlertEngine`)."""
        return self.engine.evaluate()

    async def deliver(self) -> DeliveryReport:
        """Send the notifications that are due; read Alertmanager's silences when that is due too."""
        report = await self.outbox.deliver()
        firing = [(a.fingerprint, a.rule, a.labels) for a in self.operations.firing_rows()]
        await self.upstream.refresh(self.client, self.engine.config.receivers, firing, self.clock())
        return report

    def prune(self, older_than: float) -> None:
        """Forget resolved alerts, their history and finished notifications from before ``older_than``."""
        self.engine.prune(older_than)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
