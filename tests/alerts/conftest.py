"""Fixtures of the alerting tests: an injected clock, a real state.db and metric store, a real SMTP server."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from alerting_helpers import START, Inbox, SmtpFactory, free_port
from manual_clock import Clock

from crucible_monitor.config import StorageConfig
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def state(tmp_path: Path, clock: Clock) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state.db", clock=clock)
    yield db
    db.close()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[MetricStore]:
    metrics = MetricStore(tmp_path / "metrics", StorageConfig(fsync=False), retention=timedelta(days=30), clock=clock)
    metrics.open()
    yield metrics
    metrics.close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpFactory]:
    """Start real SMTP servers: ``smtp_server()`` plain, ``smtp_server(tls=ctx, mode="starttls"|"tls")``."""
    controllers: list[Controller] = []

    def start(tls: ssl.SSLContext | None = None, mode: str = "none") -> Inbox:
        inbox = Inbox(port=free_port())
        options: dict[str, Any] = {}
        if mode == "starttls":
            options = {
                "tls_context": tls,
                "require_starttls": True,
                "authenticator": inbox.authenticate,
                "auth_require_tls": True,
            }
        elif mode == "tls":
            options = {"ssl_context": tls}
        controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port, **options)
        controller.start()
        controllers.append(controller)
        return inbox

    yield start
    for controller in controllers:
        controller.stop()
