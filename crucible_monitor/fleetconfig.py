"""The ``fleet:`` settings: other hosts' agents this agent's MCP server also answers for."""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import Field, SecretStr, model_validator

from crucible_monitor.configtypes import PositiveDuration, StrictModel, WebUrl, check_unique

__all__ = ["FleetConfig", "FleetHostConfig"]


class FleetHostConfig(StrictModel):
    """Another host's agent, reached over its HTTP API with its own token."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$", description="How tools name it (host=...).")
    url: WebUrl = Field(description="Its agent's base URL, e.g. http://10.0.0.5:9090.")
    token: SecretStr | None = Field(None, description="Its token (token_file: a file holding it); scope operate.")


class FleetConfig(StrictModel):
    """Other hosts this agent's MCP server also answers for (a ``host`` argument on every tool)."""

    hosts: list[FleetHostConfig] = Field(default_factory=list)
    timeout: PositiveDuration = Field(timedelta(seconds=5), description="How long a host may take to answer.")

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        check_unique((h.name for h in self.hosts), "fleet host names")
        return self
