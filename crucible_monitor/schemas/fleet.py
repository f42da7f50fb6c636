"""Results of the fleet operations: each host's headline, the hosts ranked by their worst incident."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from crucible_monitor.schemas.system import Finding

__all__ = ["FleetStatus", "HostList", "HostStatus"]

HostState = Literal["ok", "warning", "critical", "unreachable"]


class HostStatus(BaseModel):
    """One host of the fleet as its own agent sees itself."""

    name: str
    url: str
    status: HostState
    headline: str
    incidents: int = 0
    worst: Finding | None = Field(None, description="Its first incident: what to look at there first.")


class FleetStatus(BaseModel):
    """The hosts, worst first: critical, unreachable, warning, ok; within each, the most incidents first."""

    headline: str
    hosts: list[HostStatus]
    total: int
    limit: int
    truncated: bool
    discovery: str | None = Field(None, description="Why listing the hosts from Prometheus failed, if it did.")
    hint: str = "a host's worst.hint is a call on that host: add host=<its name>"


class HostList(BaseModel):
    """The hosts tools take as ``host=``, each with its status headline (``local`` is this one)."""

    hosts: list[HostStatus]
    total: int
    limit: int
    truncated: bool
