"""The fleet: other hosts' agents, reached over their HTTP API with their own tokens (``fleet.hosts``).

This agent's MCP server answers for them too: a tool called with ``host=<name>`` runs the same operation on that
host's agent through :class:`~crucible_monitor.remote.RemoteMonitor` (so the other agent checks its own token's
scope and audits its own actions), and :meth:`Fleet.status` ranks every host by its worst incident. A host that does
not answer is a host in state ``unreachable`` with the reason, not an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from crucible_monitor.errors import CrucibleError, NotFoundError
from crucible_monitor.fleetconfig import FleetConfig, FleetHostConfig
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.schemas import FleetStatus, HostStatus, StatusSummary

__all__ = ["LOCAL", "Fleet"]

LOCAL = "local"
"""How the fleet names this agent's own host when it lists it."""
_RANK = {"critical": 0, "unreachable": 1, "warning": 2, "ok": 3}


class Fleet:
    """The configured hosts, each with one client kept open; :meth:`aclose` closes them."""

    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self._clients: dict[str, RemoteMonitor] = {}

    @property
    def names(self) -> list[str]:
        """The configured host names."""
        return [h.name for h in self.config.hosts]

    def _host(self, name: str) -> FleetHostConfig:
        for host in self.config.hosts:
            if host.name == name:
                return host
        raise NotFoundError(f"unknown host {name!r}; valid: {', '.join([LOCAL, *self.names])}")

    def remote(self, name: str) -> RemoteMonitor:
        """The client of host ``name``.

        Raises:
            NotFoundError: no host has this name (the message lists them).
        """
        host = self._host(name)
        client = self._clients.get(name)
        if client is None:
            token = host.token.get_secret_value() if host.token else None
            client = RemoteMonitor(host.url, token, timeout=self.config.timeout.total_seconds())
            self._clients[name] = client
        return client

    async def host_status(self, name: str) -> HostStatus:
        """Host ``name``'s status headline, or ``unreachable`` with why."""
        url = self._host(name).url
        try:
            summary = await asyncio.wait_for(self.remote(name).status_summary(), self.config.timeout.total_seconds())
        except (CrucibleError, TimeoutError) as exc:
            reason = str(exc) or "no answer within the timeout"
            return HostStatus(name=name, url=url, status="unreachable", headline=f"unreachable: {reason}")
        return summarised(name, url, summary)

    async def status(self, local: StatusSummary | None = None, *, limit: int = 50) -> FleetStatus:
        """Every host (this one first as ``local`` when given), worst first."""
        hosts = list(await asyncio.gather(*(self.host_status(n) for n in self.names)))
        if local is not None:
            hosts.append(summarised(LOCAL, "", local))
        return ranked(hosts, limit)

    async def aclose(self) -> None:
        """Close every client."""
        await asyncio.gather(*(c.aclose() for c in self._clients.values()))
        self._clients.clear()


def summarised(name: str, url: str, summary: StatusSummary) -> HostStatus:
    """A host's summary cut to its headline and its first incident."""
    first = next((f for f in summary.findings if f.caused_by is None), None)
    return HostStatus(
        name=name, url=url, status=summary.status, headline=summary.headline, incidents=summary.incidents, worst=first
    )


def ranked(hosts: Sequence[HostStatus], limit: int) -> FleetStatus:
    """The hosts worst first, with a headline that counts them by state."""
    order = sorted(hosts, key=lambda h: (_RANK[h.status], -h.incidents, h.name))
    counts = {state: sum(1 for h in hosts if h.status == state) for state in _RANK}
    said = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    worst = order[0] if order and order[0].status != "ok" else None
    lead = f"; worst: {worst.name}: {worst.headline}" if worst else ""
    return FleetStatus(
        headline=f"{len(hosts)} hosts: {said or 'none'}{lead}",
        hosts=order[:limit],
        total=len(hosts),
        limit=limit,
        truncated=len(hosts) > limit,
    )
