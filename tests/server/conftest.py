"""Fixtures shared by the server tests: one real `crucible-monitor serve` process for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from agent_process import ServedAgent, serve_agent

NO_SUPERVISOR = "collectors:\n  services:\n    supervisor:\n      enabled: false\n"


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAgent]:
    """A real agent on loopback (systemd units as the host has them, no supervisord)."""
    tmp_path = tmp_path_factory.mktemp("served")
    with serve_agent(tmp_path, NO_SUPERVISOR) as agent:
        yield agent
