"""Shared fixtures."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run anyio-marked tests on asyncio, the loop the agent uses."""
    return "asyncio"


@pytest.fixture
def burn_cpu() -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Start real processes that each burn one core (``burn_cpu()``); all are killed when the test ends."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        started.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        process.wait()
