"""The ``fleet:`` settings: other hosts' agents this agent's MCP server also answers for."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from crucible_monitor.configtypes import PositiveDuration, StrictModel, WebUrl, check_unique

__all__ = ["DISCOVERY_PLACEHOLDERS", "FleetConfig", "FleetDiscoveryConfig", "FleetHostConfig"]

DISCOVERY_PLACEHOLDERS = ("{instance}", "{address}")
"""What a discovered host's URL template may name: the ``instance`` label (``host:port``), or its host alone."""


class FleetHostConfig(StrictModel):
    """Another host's agent, reached over its HTTP API with its own token."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$", description="How tools name it (host=...).")
    url: WebUrl = Field(description="Its agent's base URL, e.g. http://10.0.0.5:9090.")
    token: SecretStr | None = Field(None, description="Its token (token_file: a file holding it); scope operate.")


class FleetDiscoveryConfig(StrictModel):
    """Hosts listed from a Prometheus: one per ``instance`` of the ``up{job=...}`` series (down ones included)."""

    prometheus_url: WebUrl = Field(description="Prometheus' base URL, e.g. http://prometheus:9090.")
    job: str = Field("crucible", min_length=1, description="The scrape job of the agents.")
    token: SecretStr | None = Field(
        None, description="The discovered agents' token (token_file: a file holding it); the same on every host."
    )
    url: str = Field(
        "http://{instance}",
        description="A discovered agent's URL: {instance} is the instance label (host:port), {address} its host.",
    )
    refresh: PositiveDuration = Field(timedelta(minutes=1), description="How long a listing is kept.")

    @field_validator("url")
    @classmethod
    def _template(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")) or not any(p in url for p in DISCOVERY_PLACEHOLDERS):
            raise ValueError(f"invalid URL template {url!r}: http(s):// naming {' or '.join(DISCOVERY_PLACEHOLDERS)}")
        return url


class FleetConfig(StrictModel):
    """Other hosts this agent's MCP server also answers for (a ``host`` argument on every tool)."""

    enabled: bool = Field(True, description="false: hosts and discover are ignored (as in the shipped example).")
    hosts: list[FleetHostConfig] = Field(default_factory=list)
    discover: FleetDiscoveryConfig | None = Field(None, description="Also the hosts a Prometheus scrapes.")
    timeout: PositiveDuration = Field(timedelta(seconds=5), description="How long a host may take to answer.")

    @property
    def active(self) -> bool:
        """Whether there is a fleet: enabled, with hosts listed or discovered."""
        return self.enabled and (bool(self.hosts) or self.discover is not None)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        check_unique((h.name for h in self.hosts), "fleet host names")
        return self
