"""Helpers shared by the alerting tests: an injected clock, an engine from a config dict, the outbox."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from crucible_monitor.alerts.conditions import AlertInputs
from crucible_monitor.alerts.config import AlertingConfig
from crucible_monitor.alerts.engine import AlertEngine
from crucible_monitor.alerts.notifiers import Notification
from crucible_monitor.models import Sample
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z, a multiple of 10 s


HOST = "web1"
HOOK = {"type": "webhook", "url": "http://127.0.0.1:9/hook"}  # never called: engine tests read the outbox


def alerting(rules: list[dict[str, Any]], **extra: Any) -> AlertingConfig:
    """An alerting config with one webhook receiver and immediate groups; ``extra`` adds or overrides."""
    route = {"group_wait": "0s", "group_interval": "1m", "repeat_interval": "1h", **extra.pop("route", {})}
    data: dict[str, Any] = {"rules": rules, "receivers": {"hook": HOOK}, "route": route, **extra}
    return AlertingConfig.model_validate(data)


def cpu_rule(**overrides: Any) -> dict[str, Any]:
    """A CPU threshold rule: > 0.9 for 1 minute."""
    return {
        "name": "HighCpu",
        "kind": "threshold",
        "metric": "cpu_usage_ratio",
        "match": {"cpu": "total"},
        "value": 0.9,
        "for": "1m",
        "annotations": {"summary": "CPU {{ value:.0% }} on {{ host }}"},
        **overrides,
    }


def engine(config: AlertingConfig, state: StateDB, store: MetricStore, clock: Any, **inputs: Any) -> AlertEngine:
    return AlertEngine(config, state, AlertInputs(samples=store, **inputs), host=HOST, clock=clock)


def put(store: MetricStore, clock: Any, metric: str, value: float, **labels: str) -> None:
    """Store one sample stamped now."""
    store.append([Sample(metric, value, labels, clock())])


def outbox(state: StateDB) -> list[Notification]:
    """Every queued notification, oldest first."""
    return [
        Notification.model_validate_json(r["payload"]) for r in state.execute("SELECT payload FROM outbox ORDER BY id")
    ]


def summary(notifications: list[Notification]) -> list[tuple[str, list[tuple[str, str]]]]:
    """``(receiver, [(alert status, alert instance)...])`` per notification, for compact assertions."""
    return [(n.receiver, [(a.status, _instance(a.labels)) for a in n.alerts]) for n in notifications]


def _instance(labels: Mapping[str, str]) -> str:
    for key in ("mountpoint", "service", "check", "cpu", "series"):
        if key in labels:
            return f"{labels['alertname']}:{labels[key]}"
    return labels["alertname"]


@dataclass(frozen=True)
class SmtpAttempt:
    """One message a client tried to hand over: when, its Message-ID, and whether the server took it."""

    at: float
    message_id: str
    accepted: bool


@dataclass
class Inbox:
    """What a real SMTP server (aiosmtpd) on 127.0.0.1 received; the first ``refuse_first`` messages get a 451
    (try again later) and are only recorded in ``attempts``."""

    port: int = 0
    refuse_first: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    attempts: list[SmtpAttempt] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        accepted = len(self.attempts) >= self.refuse_first
        with self._arrived:
            self.attempts.append(SmtpAttempt(time.time(), str(message["Message-ID"]), accepted))
            if not accepted:
                return "451 4.3.0 try again later"
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._arrived.notify_all()
        return "250 OK"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"alerts", b"s3cret")
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok, handled=False)

    def about(self, alertname: str) -> list[EmailMessage]:
        """The messages whose subject names ``alertname``."""
        return [m for m in self.messages if alertname in str(m["Subject"])]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)


SmtpFactory = Callable[..., Inbox]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
