"""Fixtures of the alerting tests: the injected clock (tests/conftest.py's ``state`` and ``store`` run on it), a
real SMTP server.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from alerting_helpers import START, Inbox, SmtpFactory, free_port
from manual_clock import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def smtp_server() -> Iterator[SmtpFactory]:
    """Start real SMTP servers: ``smtp_server()`` plain, ``smtp_server(tls=ctx, mode="starttls"|"tls")``;
    ``refuse_first=N`` answers the first N messages with a 451."""
    controllers: list[Controller] = []

    def start(tls: ssl.SSLContext | None = None, mode: str = "none", refuse_first: int = 0) -> Inbox:
        inbox = Inbox(port=free_port(), refuse_first=refuse_first)
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
