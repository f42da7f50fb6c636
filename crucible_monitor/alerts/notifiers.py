"""Notifiers: SMTP email, a signed JSON webhook, Slack, the Resend API and Alertmanager's v2 API.

A notifier sends one :class:`Notification` (a group's firing and resolved alerts) or raises
:class:`DeliveryError`, which says whether trying again can help: 5xx answers, timeouts and connection failures
can (``retryable``), a 429 says when (``retry_after``), other 4xx answers cannot. The outbox turns that into
retries with backoff. HTTP notifiers share one injected ``httpx.AsyncClient``.

Secrets (SMTP password, webhook secret, Slack URL, API keys) go only where the protocol needs them: never into
logs or error messages.

Webhook signature: with a secret, each request carries ``X-Crucible-Timestamp: <unix seconds>`` and
``X-Crucible-Signature: sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<body>`` keyed with the secret; receivers
should recompute it and reject old timestamps. ``X-Crucible-Delivery`` carries the notification id, the same on
every retry, so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import html
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel

from crucible_monitor.alerts.receivers import (
    AlertmanagerReceiver,
    EmailReceiver,
    Receiver,
    ResendReceiver,
    SlackReceiver,
    WebhookReceiver,
)
from crucible_monitor.errors import CrucibleError
from crucible_monitor.models import iso

__all__ = [
    "AlertmanagerNotifier",
    "DeliveryError",
    "EmailNotifier",
    "Notification",
    "NotifiedAlert",
    "Notifier",
    "ResendNotifier",
    "SlackNotifier",
    "WebhookNotifier",
    "build_notifiers",
    "render_text",
    "sign",
    "subject",
]

logger = logging.getLogger(__name__)

_COLOURS = {"critical": "#c62828", "warning": "#ef6c00", "info": "#1565c0", "resolved": "#2e7d32"}
_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


class DeliveryError(CrucibleError):
    """A notification could not be delivered; ``retryable`` says whether a later attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class NotifiedAlert(BaseModel):
    """One alert as a notification reports it."""

    id: int
    fingerprint: str
    name: str
    status: Literal["firing", "resolved"]
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    starts_at: float
    ends_at: float | None = None
    acknowledged_by: str | None = None


class Notification(BaseModel):
    """What one receiver is told: a group's firing and resolved alerts, or one escalated alert."""

    id: str
    receiver: str
    status: Literal["firing", "resolved"]
    group_key: str
    group_labels: dict[str, str]
    alerts: list[NotifiedAlert]
    escalation: bool = False
    host: str
    created_at: float

    @property
    def firing(self) -> list[NotifiedAlert]:
        """The firing alerts."""
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[NotifiedAlert]:
        """The resolved alerts."""
        return [a for a in self.alerts if a.status == "resolved"]


class Notifier(Protocol):
    """Sends notifications to one receiver."""

    async def send(self, notification: Notification) -> None:
        """Deliver once.

        Raises:
            DeliveryError: not delivered; ``retryable`` and ``retry_after`` tell the outbox what to do.
        """
        ...


def subject(notification: Notification) -> str:
    """``[FIRING:2] HighCpuUsage on web1 (critical)``, ``[RESOLVED] ...``, ``[ESCALATED] ...``."""
    firing, resolved = notification.firing, notification.resolved
    names = sorted({a.name for a in notification.alerts})
    worst = _worst(firing or resolved)
    tag = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    if notification.escalation:
        tag = f"ESCALATED {tag}"
    return f"[{tag}] {', '.join(names)} on {notification.host} ({worst})"


def _worst(alerts: list[NotifiedAlert]) -> str:
    order = ["critical", "warning", "info"]
    return min((a.severity for a in alerts), key=lambda s: order.index(s) if s in order else len(order), default="info")


def _line(alert: NotifiedAlert) -> str:
    summary = alert.annotations.get("summary") or alert.name
    since = iso(alert.ends_at if alert.status == "resolved" and alert.ends_at else alert.starts_at)
    verb = "resolved" if alert.status == "resolved" else "since"
    return f"[{alert.severity}] {summary} ({verb} {since})"


def render_text(notification: Notification) -> str:
    """The plain-text body shared by email and chat fallbacks."""
    parts = []
    for title, alerts in (("Firing", notification.firing), ("Resolved", notification.resolved)):
        if not alerts:
            continue
        parts.append(f"{title}:")
        for alert in alerts:
            parts.append(f"- {_line(alert)}")
            if alert.annotations.get("description"):
                parts.append(f"  {alert.annotations['description']}")
            if alert.annotations.get("runbook_url"):
                parts.append(f"  Runbook: {alert.annotations['runbook_url']}")
            labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
            parts.append(f"  Labels: {labels}")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _render_html(notification: Notification) -> str:
    rows = []
    for alert in notification.alerts:
        colour = _COLOURS["resolved"] if alert.status == "resolved" else _COLOURS.get(alert.severity, "#555555")
        description = html.escape(alert.annotations.get("description", ""))
        runbook = alert.annotations.get("runbook_url")
        link = f' <a href="{html.escape(runbook, quote=True)}">runbook</a>' if runbook else ""
        rows.append(
            f'<tr><td style="border-left:6px solid {colour};padding:6px 10px">'
            f'<strong style="color:{colour}">{html.escape(alert.status.upper())} · {html.escape(alert.severity)}'
            f"</strong><br>{html.escape(_line(alert))}<br><small>{description}{link}</small></td></tr>"
        )
    return (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h2>{html.escape(subject(notification))}</h2>"
        f'<table style="border-collapse:collapse">{"".join(rows)}</table>'
        f"<p><small>crucible-monitor on {html.escape(notification.host)}</small></p></body></html>"
    )


class EmailNotifier:
    """SMTP with STARTTLS, implicit TLS or none; a text and an HTML part."""

    def __init__(self, receiver: EmailReceiver) -> None:
        self.receiver = receiver

    async def send(self, notification: Notification) -> None:
        """Send one email (smtplib in a worker thread).

        Raises:
            DeliveryError: connection problems and 4xx SMTP replies are retryable; 5xx replies are not.
        """
        message = EmailMessage()
        message["Subject"] = subject(notification)
        message["From"] = self.receiver.from_addr
        message["To"] = ", ".join(self.receiver.to)
        message["Date"] = email.utils.formatdate(notification.created_at, usegmt=True)
        message["Message-ID"] = f"<{notification.id}@crucible-monitor>"
        message.set_content(render_text(notification))
        message.add_alternative(_render_html(notification), subtype="html")
        try:
            await asyncio.to_thread(self._deliver, message)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP server {self.receiver.host} answered {exc.smtp_code}", retryable=400 <= exc.smtp_code < 500
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"SMTP server {self.receiver.host} refused the recipients ({codes})",
                retryable=all(400 <= c < 500 for c in codes),
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                f"cannot send through {self.receiver.host}:{self.receiver.port}: {type(exc).__name__}", retryable=True
            ) from None

    def _deliver(self, message: EmailMessage) -> None:
        receiver = self.receiver
        timeout = receiver.timeout.total_seconds()
        context = ssl.create_default_context(cafile=str(receiver.ca_file) if receiver.ca_file else None)
        smtp: smtplib.SMTP
        if receiver.security == "tls":
            smtp = smtplib.SMTP_SSL(receiver.host, receiver.port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(receiver.host, receiver.port, timeout=timeout)
        with smtp:
            if receiver.security == "starttls":
                smtp.starttls(context=context)
            if receiver.username and receiver.password is not None:
                smtp.login(receiver.username, receiver.password.get_secret_value())
            smtp.send_message(message)


class _HttpNotifier:
    def __init__(
        self, client: httpx.AsyncClient, timeout: float, what: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.what = what
        self.clock = clock

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        """POST and classify the outcome (the URL never appears in errors: it may hold a token)."""
        try:
            response = await self.client.post(
                url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=self.timeout
            )
        except httpx.TimeoutException:
            raise DeliveryError(f"{self.what}: timed out after {self.timeout:g} s", retryable=True) from None
        except httpx.TransportError as exc:
            raise DeliveryError(f"{self.what}: {type(exc).__name__}", retryable=True) from None
        status = response.status_code
        if status < 300:
            return response
        if status == 429:
            raise DeliveryError(
                f"{self.what}: 429 too many requests",
                retryable=True,
                retry_after=_retry_after(response.headers.get("Retry-After"), self.clock()),
            )
        raise DeliveryError(f"{self.what}: HTTP {status}", retryable=status >= 500)


def _retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The webhook signature header value: ``sha256=`` + HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def _payload(notification: Notification) -> dict[str, Any]:
    data = notification.model_dump(mode="json")
    data["version"] = "1"
    data["created_at"] = iso(notification.created_at)
    for alert in data["alerts"]:
        alert["starts_at"] = iso(alert["starts_at"])
        alert["ends_at"] = iso(alert["ends_at"]) if alert["ends_at"] else None
    return data


class WebhookNotifier(_HttpNotifier):
    """JSON POST of the notification, HMAC-signed when a secret is set."""

    def __init__(
        self, receiver: WebhookReceiver, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, receiver.timeout.total_seconds(), "webhook", clock)
        self.receiver = receiver

    async def send(self, notification: Notification) -> None:
        """POST the notification as JSON.

        Raises:
            DeliveryError: see the module docstring.
        """
        body = json.dumps(_payload(notification), separators=(",", ":")).encode()
        headers = {"X-Crucible-Delivery": notification.id}
        if self.receiver.secret is not None:
            timestamp = str(int(self.clock()))
            headers["X-Crucible-Timestamp"] = timestamp
            headers["X-Crucible-Signature"] = sign(self.receiver.secret.get_secret_value(), timestamp, body)
        await self._post(self.receiver.url, body, headers)


class SlackNotifier(_HttpNotifier):
    """A Slack incoming webhook message with Block Kit blocks and a text fallback."""

    def __init__(
        self, receiver: SlackReceiver, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, receiver.timeout.total_seconds(), "slack", clock)
        self.receiver = receiver

    async def send(self, notification: Notification) -> None:
        """POST the message to the webhook URL.

        Raises:
            DeliveryError: see the module docstring.
        """
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": subject(notification)[:150]}}
        ]
        for alert in notification.alerts[:20]:  # Slack allows 50 blocks; keep messages readable
            mark = ":white_check_mark:" if alert.status == "resolved" else _EMOJI.get(alert.severity, ":bell:")
            text = f"{mark} *{alert.name}* ({alert.severity}, {alert.status})\n{_line(alert)}"
            if alert.annotations.get("description"):
                text += f"\n{alert.annotations['description']}"
            if alert.annotations.get("runbook_url"):
                text += f"\n<{alert.annotations['runbook_url']}|Runbook>"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"crucible-monitor on {notification.host}"}]}
        )
        body = json.dumps({"text": subject(notification), "blocks": blocks}).encode()
        await self._post(self.receiver.webhook_url.get_secret_value(), body, {})


class ResendNotifier(_HttpNotifier):
    """Email through Resend's ``POST /emails``, idempotent per notification."""

    def __init__(
        self, receiver: ResendReceiver, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, receiver.timeout.total_seconds(), "resend", clock)
        self.receiver = receiver

    async def send(self, notification: Notification) -> None:
        """POST one email; the ``Idempotency-Key`` makes retries safe.

        Raises:
            DeliveryError: see the module docstring.
        """
        body = json.dumps(
            {
                "from": self.receiver.from_addr,
                "to": self.receiver.to,
                "subject": subject(notification),
                "html": _render_html(notification),
                "text": render_text(notification),
            }
        ).encode()
        headers = {
            "Authorization": f"Bearer {self.receiver.api_key.get_secret_value()}",
            "Idempotency-Key": notification.id,
        }
        await self._post(f"{self.receiver.base_url}/emails", body, headers)


class AlertmanagerNotifier(_HttpNotifier):
    """``POST /api/v2/alerts``: firing alerts with endsAt = now + ttl, resolved ones with their end; labelled as
    Alertmanager users expect: ``alertname``, ``severity``, ``instance`` and ``job`` beside the rule's own."""

    def __init__(
        self, receiver: AlertmanagerReceiver, client: httpx.AsyncClient, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(client, receiver.timeout.total_seconds(), "alertmanager", clock)
        self.receiver = receiver

    async def send(self, notification: Notification) -> None:
        """POST the alerts.

        Raises:
            DeliveryError: see the module docstring.
        """
        until = _rfc3339(self.clock() + self.receiver.ttl.total_seconds())
        alerts = [
            {
                "labels": {
                    "job": self.receiver.job,
                    "instance": self.receiver.instance or alert.labels.get("host", ""),
                    **alert.labels,
                    "alertname": alert.name,
                },
                "annotations": alert.annotations,
                "startsAt": _rfc3339(alert.starts_at),
                "endsAt": _rfc3339(alert.ends_at) if alert.status == "resolved" and alert.ends_at else until,
            }
            for alert in notification.alerts
        ]
        headers = {}
        if self.receiver.bearer_token is not None:
            headers["Authorization"] = f"Bearer {self.receiver.bearer_token.get_secret_value()}"
        await self._post(f"{self.receiver.url}/api/v2/alerts", json.dumps(alerts).encode(), headers)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_notifiers(
    receivers: Mapping[str, Receiver], client: httpx.AsyncClient, clock: Callable[[], float] = time.time
) -> dict[str, Notifier]:
    """One notifier per configured receiver, HTTP ones sharing ``client``."""
    notifiers: dict[str, Notifier] = {}
    for name, receiver in receivers.items():
        if isinstance(receiver, EmailReceiver):
            notifiers[name] = EmailNotifier(receiver)
        elif isinstance(receiver, WebhookReceiver):
            notifiers[name] = WebhookNotifier(receiver, client, clock)
        elif isinstance(receiver, SlackReceiver):
            notifiers[name] = SlackNotifier(receiver, client, clock)
        elif isinstance(receiver, ResendReceiver):
            notifiers[name] = ResendNotifier(receiver, client, clock)
        else:
            notifiers[name] = AlertmanagerNotifier(receiver, client, clock)
    return notifiers
