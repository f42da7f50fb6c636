"""Shared fixtures.

``state`` and ``store`` run on the ``clock`` fixture that the tests using them define (a ``manual_clock.Clock`` with
their own start time).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from manual_clock import Clock

from crucible_monitor.config import StorageConfig
from crucible_monitor.configfile import CONFIG_ENV, SEARCH_PATH_ENV
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore


@pytest.fixture(autouse=True)
def _no_host_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test (nor an agent process it starts) reads the host's /etc/crucible*/monitor.yaml or the caller's
    CRUCIBLE_MONITOR_CONFIG: config discovery searches nowhere unless a test says where."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setenv(SEARCH_PATH_ENV, "")


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


@pytest.fixture
def state(tmp_path: Path, clock: Clock) -> Iterator[StateDB]:
    """A real ``state.db`` in ``tmp_path``."""
    db = StateDB(tmp_path / "state.db", clock=clock)
    yield db
    db.close()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[MetricStore]:
    """A real metric store in ``tmp_path`` (no fsync), keeping 30 days."""
    metrics = MetricStore(tmp_path / "metrics", StorageConfig(fsync=False), retention=timedelta(days=30), clock=clock)
    metrics.open()
    yield metrics
    metrics.close()
