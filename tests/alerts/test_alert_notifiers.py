"""Notifiers and the outbox against real receivers: loopback HTTP servers that fail in scripted ways, and SMTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from alerting_helpers import SmtpFactory
from loopback_servers import Reply, make_tls_files, refused_port, serve_http
from manual_clock import Clock
from pydantic import TypeAdapter

from crucible_monitor.alerts.config import DeliveryConfig
from crucible_monitor.alerts.notifiers import (
    DeliveryError,
    EmailNotifier,
    Notification,
    NotifiedAlert,
    build_notifiers,
)
from crucible_monitor.alerts.outbox import Outbox
from crucible_monitor.alerts.receivers import EmailReceiver, Receiver
from crucible_monitor.alerts.store import OutboxRow, enqueue
from crucible_monitor.storage.state import StateDB

pytestmark = pytest.mark.anyio

_RECEIVER: TypeAdapter[Receiver] = TypeAdapter(Receiver)
_SLACK_TOKEN = "T000/B000/XXXXsecretXXXX"


def _notification(
    receiver: str = "hook", uid: str = "n1", status: Literal["firing", "resolved"] = "firing"
) -> Notification:
    alert = NotifiedAlert(
        id=7,
        fingerprint="0123456789abcdef",
        name="DiskSpaceCritical",
        status=status,
        severity="critical",
        labels={"alertname": "DiskSpaceCritical", "severity": "critical", "host": "web1", "mountpoint": "/var"},
        annotations={"summary": "/var is 97% full on web1", "runbook_url": "https://wiki.example/disk"},
        value=0.97,
        starts_at=1_800_000_000.0,
        ends_at=1_800_000_600.0 if status == "resolved" else None,
    )
    return Notification(
        id=uid,
        receiver=receiver,
        status=status,
        group_key="root:{}",
        group_labels={"alertname": "DiskSpaceCritical"},
        alerts=[alert],
        host="web1",
        created_at=1_800_000_000.0,
    )


def _queue(state: StateDB, clock: Clock, *notifications: Notification) -> None:
    with state.transaction() as db:
        for n in notifications:
            enqueue(db, n.id, n.receiver, n.model_dump_json(), clock())


def _rows(state: StateDB) -> list[OutboxRow]:
    return [OutboxRow.from_row(r) for r in state.execute("SELECT * FROM outbox ORDER BY id")]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


def _outbox(state: StateDB, clock: Clock, client: httpx.AsyncClient, receivers: dict[str, Any]) -> Outbox:
    parsed = {name: _RECEIVER.validate_python(data) for name, data in receivers.items()}
    return Outbox(state, build_notifiers(parsed, client, clock), DeliveryConfig(), clock=clock)


async def test_a_webhook_is_signed_with_hmac_and_names_its_delivery(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/hook", Reply(204, b""))
        hook = {"type": "webhook", "url": server.url("/hook"), "secret": "shh"}
        outbox = _outbox(state, clock, client, {"hook": hook})
        _queue(state, clock, _notification())
        report = await outbox.deliver()
        [request] = server.requests_to("/hook")
    assert report.sent == [1]
    timestamp = request.headers["X-Crucible-Timestamp"]
    expected = hmac.new(b"shh", timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Crucible-Signature"] == f"sha256={expected}"
    assert timestamp == str(int(clock()))
    assert request.headers["X-Crucible-Delivery"] == "n1"
    body = json.loads(request.body)
    assert body["status"] == "firing" and body["host"] == "web1"
    assert body["alerts"][0]["labels"]["mountpoint"] == "/var"
    assert body["alerts"][0]["starts_at"] == "2027-01-15T08:00:00+00:00"


async def test_a_webhook_is_posted_to_its_url_as_written(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/hooks/crucible/", Reply(204, b""))  # endpoints such as Django's want the slash
        outbox = _outbox(state, clock, client, {"hook": {"type": "webhook", "url": server.url("/hooks/crucible/")}})
        _queue(state, clock, _notification())
        report = await outbox.deliver()
        assert server.count("/hooks/crucible/") == 1
    assert report.sent == [1]


async def test_slack_gets_blocks_with_a_text_fallback(state: StateDB, clock: Clock, client: httpx.AsyncClient) -> None:
    with serve_http() as server:
        server.script(f"/services/{_SLACK_TOKEN}", Reply(200, b"ok"))
        slack = {"type": "slack", "webhook_url": server.url(f"/services/{_SLACK_TOKEN}")}
        outbox = _outbox(state, clock, client, {"chat": slack})
        _queue(state, clock, _notification("chat"))
        await outbox.deliver()
        [request] = server.requests_to(f"/services/{_SLACK_TOKEN}")
    body = json.loads(request.body)
    assert body["text"] == "[FIRING:1] DiskSpaceCritical on web1 (critical)"
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]
    section = body["blocks"][1]["text"]["text"]
    assert ":red_circle: *DiskSpaceCritical*" in section and "<https://wiki.example/disk|Runbook>" in section


async def test_resend_gets_the_api_key_an_idempotency_key_and_both_bodies(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/emails", Reply(200, b'{"id": "re_1"}'))
        resend = {
            "type": "resend",
            "api_key": "re_secret",
            "from_addr": "alerts@example.com",
            "to": ["ops@example.com"],
            "base_url": server.url(""),
        }
        outbox = _outbox(state, clock, client, {"resend": resend})
        _queue(state, clock, _notification("resend", status="resolved"))
        await outbox.deliver()
        [request] = server.requests_to("/emails")
    assert request.headers["Authorization"] == "Bearer re_secret"
    assert request.headers["Idempotency-Key"] == "n1"
    body = json.loads(request.body)
    assert body["subject"] == "[RESOLVED] DiskSpaceCritical on web1 (critical)"
    assert (body["from"], body["to"]) == ("alerts@example.com", ["ops@example.com"])
    assert "RESOLVED" in body["html"] and "Resolved:" in body["text"]


async def test_5xx_is_retried_with_exponential_backoff_until_it_succeeds(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/hook", [Reply(500), Reply(502), Reply(200)])
        outbox = _outbox(state, clock, client, {"hook": {"type": "webhook", "url": server.url("/hook")}})
        _queue(state, clock, _notification())
        start = clock()
        assert (await outbox.deliver()).retrying == [1]
        assert _rows(state)[0].next_attempt == start + 10
        clock.advance(5)
        await outbox.deliver()  # not due yet
        assert server.count("/hook") == 1
        clock.advance(5)
        assert (await outbox.deliver()).retrying == [1]
        assert _rows(state)[0].next_attempt == start + 30, "the second wait doubles"
        clock.advance(20)
        assert (await outbox.deliver()).sent == [1]
    [row] = _rows(state)
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)


async def test_a_receiver_that_hangs_times_out_and_is_retried(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/hook", [Reply(hang=True), Reply(200)])
        hook = {"type": "webhook", "url": server.url("/hook"), "timeout": "300ms"}
        outbox = _outbox(state, clock, client, {"hook": hook})
        _queue(state, clock, _notification())
        assert (await outbox.deliver()).retrying == [1]
        assert _rows(state)[0].last_error == "webhook: timed out after 0.3 s"
        clock.advance(10)
        assert (await outbox.deliver()).sent == [1]


async def test_a_429_is_retried_after_its_retry_after(state: StateDB, clock: Clock, client: httpx.AsyncClient) -> None:
    with serve_http() as server:
        server.script("/hook", [Reply(429, headers={"Retry-After": "120"}), Reply(200)])
        outbox = _outbox(state, clock, client, {"hook": {"type": "webhook", "url": server.url("/hook")}})
        _queue(state, clock, _notification())
        await outbox.deliver()
        assert _rows(state)[0].next_attempt == clock() + 120
        clock.advance(60)
        await outbox.deliver()
        assert server.count("/hook") == 1
        clock.advance(60)
        assert (await outbox.deliver()).sent == [1]


async def test_other_4xx_fail_at_once_and_the_next_notification_goes(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/hook", [Reply(400, b"bad payload"), Reply(200)])
        outbox = _outbox(state, clock, client, {"hook": {"type": "webhook", "url": server.url("/hook")}})
        _queue(state, clock, _notification(uid="a"), _notification(uid="b"))
        report = await outbox.deliver()
    assert (report.failed, report.sent) == ([1], [2])
    assert [(r.status, r.attempts, r.last_error) for r in _rows(state)] == [
        ("failed", 1, "webhook: HTTP 400"),
        ("sent", 1, None),
    ]


async def test_a_failing_notification_holds_back_later_ones_to_the_same_receiver_only(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/down", Reply(503))
        server.script("/up", Reply(200))
        receivers = {
            "down": {"type": "webhook", "url": server.url("/down")},
            "up": {"type": "webhook", "url": server.url("/up")},
        }
        outbox = _outbox(state, clock, client, receivers)
        _queue(state, clock, _notification("down", "d1"), _notification("down", "d2"), _notification("up", "u1"))
        report = await outbox.deliver()
        assert (report.retrying, report.sent) == ([1], [3])
        assert server.count("/down") == 1, "d2 waits behind d1: a resolution never overtakes its firing"


async def test_a_notification_undelivered_past_give_up_after_fails(
    state: StateDB, clock: Clock, client: httpx.AsyncClient
) -> None:
    with serve_http() as server:
        server.script("/hook", Reply(500))
        outbox = _outbox(state, clock, client, {"hook": {"type": "webhook", "url": server.url("/hook")}})
        outbox.delivery = DeliveryConfig(initial_backoff="1h", max_backoff="8h", give_up_after="6h")
        _queue(state, clock, _notification())
        for _ in range(4):  # waits of 1 h, 2 h, then 4 h would pass the 6 h limit
            await outbox.deliver()
            clock.advance(3 * 3600)
    [row] = _rows(state)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "webhook: HTTP 500; gave up after 3 attempts"


async def test_secrets_stay_out_of_logs_and_recorded_errors(
    state: StateDB, clock: Clock, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = refused_port()
    slack = {"type": "slack", "webhook_url": f"http://127.0.0.1:{port}/services/{_SLACK_TOKEN}"}
    outbox = _outbox(state, clock, client, {"chat": slack})
    _queue(state, clock, _notification("chat"))
    assert (await outbox.deliver()).retrying == [1]
    assert _rows(state)[0].last_error == "slack: ConnectError"
    assert caplog.records and not [r for r in caplog.records if _SLACK_TOKEN in r.getMessage()]


# -- email -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
async def test_email_arrives_with_text_and_html_parts(smtp_server: SmtpFactory, tmp_path: Path, security: str) -> None:
    tls = make_tls_files(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    inbox = smtp_server(context, security)
    receiver: dict[str, Any] = {
        "type": "email",
        "host": "127.0.0.1",
        "port": inbox.port,
        "security": security,
        "from_addr": "monitor@web1.example",
        "to": ["ops@example.com", "oncall@example.com"],
        "ca_file": str(tls.ca_file),
    }
    if security == "starttls":
        receiver |= {"username": "alerts", "password": "s3cret"}
    notifier = EmailNotifier(EmailReceiver.model_validate(receiver))
    await notifier.send(_notification("mail"))
    assert inbox.wait_for(1)
    [message] = inbox.messages
    assert message["Subject"] == "[FIRING:1] DiskSpaceCritical on web1 (critical)"
    assert inbox.envelopes == [("monitor@web1.example", ["ops@example.com", "oncall@example.com"])]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and "/var is 97% full on web1" in text.get_content()
    assert html is not None and "#c62828" in html.get_content(), "critical is styled red"
    assert inbox.logins == (["alerts"] if security == "starttls" else [])


async def test_email_with_a_wrong_password_fails_without_retry(smtp_server: SmtpFactory, tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    inbox = smtp_server(context, "starttls")
    receiver = {
        "type": "email",
        "host": "127.0.0.1",
        "port": inbox.port,
        "username": "alerts",
        "password": "wrong",
        "to": ["ops@example.com"],
        "ca_file": str(tls.ca_file),
    }
    notifier = EmailNotifier(EmailReceiver.model_validate(receiver))
    with pytest.raises(DeliveryError) as failure:
        await notifier.send(_notification("mail"))
    assert not failure.value.retryable and "535" in str(failure.value) and "wrong" not in str(failure.value)


async def test_email_to_a_server_that_is_down_is_retryable() -> None:
    receiver = {"type": "email", "host": "127.0.0.1", "port": refused_port(), "to": ["ops@example.com"]}
    notifier = EmailNotifier(EmailReceiver.model_validate(receiver))
    with pytest.raises(DeliveryError) as failure:
        await notifier.send(_notification("mail"))
    assert failure.value.retryable
