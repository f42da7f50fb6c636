"""The fleet: other hosts' agents, reached over their HTTP API with their own tokens (``fleet.hosts``), and the hosts
a Prometheus scrapes (``fleet.discover``: one per ``instance`` of ``up{job=...}``).

This agent's MCP server answers for them too: a tool called with ``host=<name>`` runs the same operation on that
host's agent through :class:`~crucible_monitor.remote.RemoteMonitor` (so the other agent checks its own token's
scope and audits its own actions), and :meth:`Fleet.status` ranks every host by its worst incident. A host that does
not answer is a host in state ``unreachable`` with the reason, not an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from crucible_monitor.errors import CrucibleError, NotFoundError
from crucible_monitor.fleetconfig import FleetConfig, FleetDiscoveryConfig
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.schemas import FleetStatus, HostStatus, StatusSummary

__all__ = ["LOCAL", "Fleet", "FleetHost", "discover_hosts"]

logger = logging.getLogger(__name__)

LOCAL = "local"
"""How the fleet names this agent's own host when it lists it."""
_RANK = {"critical": 0, "unreachable": 1, "warning": 2, "ok": 3}


@dataclass(frozen=True)
class FleetHost:
    """A host of the fleet: how tools name it, its agent's URL and the token for it."""

    name: str
    url: str
    token: str | None
    discovered: bool = False


class Fleet:
    """The configured and discovered hosts, each with one client kept open; :meth:`aclose` closes them.

    Args:
        config: the ``fleet:`` settings.
        own_url: this agent's URL: a discovered instance at it is this host, not another.
        clock: seconds, for how long a discovered listing is kept.
    """

    def __init__(
        self, config: FleetConfig, *, own_url: str | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._own = own_url.rstrip("/") if own_url else None
        self._clock = clock
        self._configured = [
            FleetHost(h.name, h.url.rstrip("/"), h.token.get_secret_value() if h.token else None) for h in config.hosts
        ]
        self._discovered: list[FleetHost] = []
        self._listed_at: float | None = None
        self.discovery_error: str | None = None
        """Why the last listing from Prometheus failed (the hosts of the one before are kept), or None."""
        self._clients: dict[str, RemoteMonitor] = {}

    @property
    def hosts(self) -> list[FleetHost]:
        """The configured hosts, then the discovered ones (as last listed)."""
        return [*self._configured, *self._discovered]

    @property
    def names(self) -> list[str]:
        """The host names (configured, then discovered)."""
        return [h.name for h in self.hosts]

    async def refresh(self) -> None:
        """List the hosts from Prometheus again when discovery is configured and the listing is older than its
        ``refresh``; a failed listing keeps the last one and says why in :attr:`discovery_error`."""
        discover = self.config.discover
        now = self._clock()
        if discover is None or (
            self._listed_at is not None and now - self._listed_at < discover.refresh.total_seconds()
        ):
            return
        self._listed_at = now
        try:
            found = await discover_hosts(discover, timeout=self.config.timeout.total_seconds())
        except CrucibleError as exc:
            self.discovery_error = str(exc)
            logger.warning("fleet discovery failed: %s", exc)
            return
        self.discovery_error = None
        taken = {h.name for h in self._configured}
        urls = {h.url for h in self._configured} | ({self._own} if self._own else set())
        self._discovered = [h for h in found if h.name not in taken and h.url not in urls]

    def _host(self, name: str) -> FleetHost:
        for host in self.hosts:
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
            client = RemoteMonitor(host.url, host.token, timeout=self.config.timeout.total_seconds())
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

    async def statuses(self, local: StatusSummary | None = None) -> list[HostStatus]:
        """Every host's headline, this one first as ``local`` when given, then in the order of :attr:`names`."""
        await self.refresh()
        hosts = list(await asyncio.gather(*(self.host_status(n) for n in self.names)))
        return [summarised(LOCAL, "", local), *hosts] if local is not None else hosts

    async def status(self, local: StatusSummary | None = None, *, limit: int = 50) -> FleetStatus:
        """Every host (this one as ``local`` when given), worst first."""
        ranking = ranked(await self.statuses(local), limit)
        if self.discovery_error:
            ranking.discovery = f"listing from Prometheus failed (the last listing is used): {self.discovery_error}"
        return ranking

    async def aclose(self) -> None:
        """Close every client."""
        await asyncio.gather(*(c.aclose() for c in self._clients.values()))
        self._clients.clear()


async def discover_hosts(config: FleetDiscoveryConfig, *, timeout: float) -> list[FleetHost]:
    """One host per ``instance`` of Prometheus' ``up{job=...}`` series (targets down included), sorted by name.

    Raises:
        CrucibleError: Prometheus does not answer, or not with a vector.
    """
    job = config.job.replace("\\", "\\\\").replace('"', '\\"')
    token = config.token.get_secret_value() if config.token else None
    try:
        async with httpx.AsyncClient(base_url=config.prometheus_url.rstrip("/"), timeout=timeout) as client:
            response = await client.get("/api/v1/query", params={"query": f'up{{job="{job}"}}'})
        response.raise_for_status()
        result = response.json()["data"]["result"]
        instances = sorted({str(series["metric"]["instance"]) for series in result})
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise CrucibleError(f"Prometheus at {config.prometheus_url}: {type(exc).__name__}: {exc}") from None
    hosts = []
    for instance in instances:
        address = instance.rpartition(":")[0] if instance.rpartition(":")[2].isdigit() else instance
        url = config.url.replace("{instance}", instance).replace("{address}", address).rstrip("/")
        hosts.append(FleetHost(instance, url, token, discovered=True))
    return hosts


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
