"""Silences set in Alertmanager, seen by the agent: an alert silenced upstream is handled, not a problem.

Every ``silences_check`` each Alertmanager receiver's ``GET /api/v2/alerts`` (silenced ones only) tells which of the
alerts the agent forwarded Alertmanager silences, and by which silences: an alert there with the agent's
``alertname`` and every label of one of its firing alerts. The status summary lists those under *handled*
("silenced upstream"). An Alertmanager that does not answer counts as silencing nothing (logged once until it
answers again).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from crucible_monitor.alerts.receivers import AlertmanagerReceiver, Receiver

__all__ = ["UpstreamSilences"]

logger = logging.getLogger(__name__)


class UpstreamSilences:
    """Which firing alerts (by fingerprint) Alertmanager silences, refreshed at most every ``silences_check``."""

    def __init__(self) -> None:
        self.silenced: dict[str, list[str]] = {}
        """Alert fingerprint → the ids of the Alertmanager silences muting it."""
        self._checked = float("-inf")
        self._failing: set[str] = set()

    def get(self, fingerprint: str) -> list[str]:
        """The Alertmanager silences muting this alert (empty: none known)."""
        return self.silenced.get(fingerprint, [])

    async def refresh(
        self,
        client: httpx.AsyncClient,
        receivers: Mapping[str, Receiver],
        firing: Sequence[tuple[str, str, Mapping[str, str]]],
        now: float,
    ) -> None:
        """Ask every Alertmanager once the shortest ``silences_check`` has passed; ``firing`` is (fingerprint,
        alertname, labels) of the agent's firing alerts."""
        asked = {
            name: r
            for name, r in receivers.items()
            if isinstance(r, AlertmanagerReceiver) and r.silences_check is not None
        }
        if not asked:
            self.silenced = {}
            return
        every = min(r.silences_check.total_seconds() for r in asked.values() if r.silences_check is not None)
        if now - self._checked < every:
            return
        self._checked = now
        found: dict[str, list[str]] = {}
        for name, receiver in asked.items():
            for fingerprint, ids in _matches(await self._silenced_alerts(client, name, receiver), firing):
                found.setdefault(fingerprint, []).extend(ids)
        self.silenced = {k: sorted(set(v)) for k, v in found.items()}

    async def _silenced_alerts(
        self, client: httpx.AsyncClient, name: str, receiver: AlertmanagerReceiver
    ) -> list[dict[str, Any]]:
        params = {"active": "false", "silenced": "true", "inhibited": "false", "unprocessed": "false"}
        headers = {}
        if receiver.bearer_token is not None:
            headers["Authorization"] = f"Bearer {receiver.bearer_token.get_secret_value()}"
        try:
            response = await client.get(
                f"{receiver.url}/api/v2/alerts",
                params=params,
                headers=headers,
                timeout=receiver.timeout.total_seconds(),
            )
            response.raise_for_status()
            alerts: list[dict[str, Any]] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            if name not in self._failing:
                logger.warning("alertmanager %s: cannot read its silences: %s", name, type(exc).__name__)
                self._failing.add(name)
            return []
        self._failing.discard(name)
        return alerts


def _matches(
    alerts: Iterable[dict[str, Any]], firing: Sequence[tuple[str, str, Mapping[str, str]]]
) -> Iterable[tuple[str, list[str]]]:
    for upstream in alerts:
        labels = upstream.get("labels") or {}
        ids = list((upstream.get("status") or {}).get("silencedBy") or [])
        if not ids:
            continue
        for fingerprint, alertname, ours in firing:
            if labels.get("alertname") == alertname and all(labels.get(k) == v for k, v in ours.items()):
                yield fingerprint, ids
