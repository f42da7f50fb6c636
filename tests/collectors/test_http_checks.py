"""The HTTP check collector against real HTTP and HTTPS servers on loopback."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from helpers import assert_contract
from loopback_servers import (
    LoopbackServer,
    Reply,
    TlsFiles,
    fail_then_succeed,
    make_tls_files,
    refused_port,
    serve_http,
    serve_https,
)

from crucible_monitor.collectors.base import Collection
from crucible_monitor.collectors.http_checks import CATALOGUE, MAX_BODY_BYTES, HttpCheckCollector
from crucible_monitor.config import HttpCheckConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import EventKind, MetricKind, Severity

pytestmark = pytest.mark.anyio

NOW = 1_750_000_000.0


def make_check(url: str, **overrides: Any) -> HttpCheckConfig:
    """A check with small timeouts and backoff, so failing tests finish quickly."""
    fields: dict[str, Any] = {"name": "web", "url": url, "timeout": "2s", "retries": 0, "retry_backoff": "1ms"}
    return HttpCheckConfig.model_validate(fields | overrides)


@asynccontextmanager
async def collector_for(check: HttpCheckConfig, clock: Any = None) -> AsyncIterator[HttpCheckCollector]:
    collector = HttpCheckCollector(check, clock=clock) if clock else HttpCheckCollector(check)
    try:
        yield collector
    finally:
        await collector.aclose()


def values(collection: Collection) -> dict[str, float]:
    return {s.metric: s.value for s in collection.samples}


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve_http() as srv:
        yield srv


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path, valid_for=dt.timedelta(days=10))


@pytest.fixture
def https_server(tls: TlsFiles) -> Iterator[LoopbackServer]:
    with serve_https(tls) as srv:
        yield srv


async def test_healthy_endpoint_is_up_with_latency_and_status_code(server: LoopbackServer) -> None:
    server.script("/health", Reply(200, b"fine"))
    async with collector_for(make_check(server.url("/health")), clock=lambda: NOW) as collector:
        collection = await collector.collect()

    got = values(collection)
    assert got["http_check_up"] == 1
    assert got["http_check_status_code"] == 200
    assert got["http_check_duration_seconds"] > 0
    assert got["http_check_attempts"] == 1
    assert got["http_check_failures_total"] == 0
    assert "http_check_cert_expiry_seconds" not in got
    assert all(s.ts == NOW and s.labels == {"check": "web"} for s in collection.samples)
    assert collection.events == []
    result = collector.result
    assert result is not None
    assert (result.ok, result.failure, result.error, result.status_code) == (True, None, None, 200)
    assert result.checked_at == NOW
    assert collector.name == "http_check:web"


async def test_unexpected_status_fails_as_status_and_is_retried(server: LoopbackServer) -> None:
    server.script("/", Reply(500, b"boom"))
    async with collector_for(make_check(server.url("/"), retries=2)) as collector:
        collection = await collector.collect()

    assert server.count("/") == 3
    assert collector.result is not None
    assert collector.result.failure == "status"
    assert collector.result.attempts == 3
    got = values(collection)
    assert got["http_check_up"] == 0
    assert got["http_check_status_code"] == 500
    assert got["http_check_attempts"] == 3


async def test_status_listed_as_expected_counts_as_up(server: LoopbackServer) -> None:
    server.script("/", Reply(401, b"login"))
    async with collector_for(make_check(server.url("/"), expected_status=[200, 401])) as collector:
        await collector.collect()

    assert collector.result is not None
    assert collector.result.ok


async def test_keyword_found_in_body_passes(server: LoopbackServer) -> None:
    server.script("/", Reply(200, "<h1>Welcome, café</h1>".encode(), {"Content-Type": "text/html; charset=utf-8"}))
    async with collector_for(make_check(server.url("/"), keyword="Welcome, café")) as collector:
        await collector.collect()

    assert collector.result is not None
    assert collector.result.ok


async def test_missing_keyword_fails_as_keyword(server: LoopbackServer) -> None:
    server.script("/", Reply(200, b"<h1>Maintenance</h1>"))
    async with collector_for(make_check(server.url("/"), keyword="Welcome")) as collector:
        collection = await collector.collect()

    assert collector.result is not None
    assert collector.result.failure == "keyword"
    assert values(collection)["http_check_status_code"] == 200


async def test_keyword_beyond_the_first_mebibyte_is_not_found(server: LoopbackServer) -> None:
    server.script("/", Reply(200, b"x" * MAX_BODY_BYTES + b"Welcome"))
    async with collector_for(make_check(server.url("/"), keyword="Welcome")) as collector:
        await collector.collect()

    assert collector.result is not None
    assert collector.result.failure == "keyword"


async def test_server_that_never_answers_fails_as_timeout(server: LoopbackServer) -> None:
    server.script("/", Reply(hang=True))
    async with collector_for(make_check(server.url("/"), timeout="300ms")) as collector:
        collection = await collector.collect()

    result = collector.result
    assert result is not None
    assert (result.failure, result.status_code, result.duration_seconds) == ("timeout", None, None)
    assert "http_check_duration_seconds" not in values(collection)
    assert "http_check_status_code" not in values(collection)


async def test_slow_response_within_the_timeout_passes(server: LoopbackServer) -> None:
    gate = threading.Event()
    server.script("/slow", Reply(200, b"late", gate=gate))
    async with (
        collector_for(make_check(server.url("/slow"), timeout="5s")) as collector,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(collector.collect)
        assert await anyio.to_thread.run_sync(server.wait_for_requests, "/slow", 1)
        assert collector.result is None
        gate.set()

    assert collector.result is not None
    assert collector.result.ok


async def test_refused_connection_fails_as_connect() -> None:
    async with collector_for(make_check(f"http://127.0.0.1:{refused_port()}/")) as collector:
        await collector.collect()

    assert collector.result is not None
    assert collector.result.failure == "connect"
    assert collector.result.error


async def test_unresolvable_host_fails_as_dns() -> None:
    async with collector_for(make_check("http://nonexistent.invalid/")) as collector:
        await collector.collect()

    assert collector.result is not None
    assert collector.result.failure == "dns"


async def test_https_with_ca_file_passes_and_reads_the_certificate(tls: TlsFiles, https_server: LoopbackServer) -> None:
    https_server.script("/", Reply(200))
    async with collector_for(make_check(https_server.url("/"), ca_file=str(tls.ca_file))) as collector:
        collection = await collector.collect()

    result = collector.result
    assert result is not None
    assert result.ok
    assert result.tls_days_left == pytest.approx(10, abs=1)
    assert result.tls_expires_at == tls.not_valid_after.timestamp()
    assert (result.tls_issuer, result.tls_subject) == ("Crucible Test CA", "localhost")
    assert values(collection)["http_check_cert_expiry_seconds"] == pytest.approx(10 * 86400, abs=86400)


async def test_https_with_an_untrusted_certificate_fails_as_tls(https_server: LoopbackServer) -> None:
    https_server.script("/", Reply(200))
    async with collector_for(make_check(https_server.url("/"))) as collector:
        collection = await collector.collect()

    assert collector.result is not None
    assert collector.result.failure == "tls"
    assert https_server.count("/") == 0
    assert "http_check_cert_expiry_seconds" not in values(collection)


async def test_https_with_an_expired_certificate_fails_as_tls(tmp_path: Path) -> None:
    expired = make_tls_files(tmp_path, valid_for=-dt.timedelta(days=2))
    with serve_https(expired) as srv:
        srv.script("/", Reply(200))
        async with collector_for(make_check(srv.url("/"), ca_file=str(expired.ca_file))) as collector:
            await collector.collect()

    assert collector.result is not None
    assert collector.result.failure == "tls"


async def test_https_without_verification_passes_and_still_reads_the_expiry(
    tls: TlsFiles, https_server: LoopbackServer
) -> None:
    https_server.script("/", Reply(200))
    async with collector_for(make_check(https_server.url("/"), verify_tls=False)) as collector:
        collection = await collector.collect()

    assert collector.result is not None
    assert collector.result.ok
    assert collector.result.tls_days_left == pytest.approx(10, abs=1)
    assert collector.result.tls_issuer == "Crucible Test CA"
    assert "http_check_cert_expiry_seconds" in values(collection)


async def test_unreadable_ca_file_raises_collector_error(tmp_path: Path) -> None:
    check = make_check("https://127.0.0.1/", ca_file=str(tmp_path / "missing.pem"))
    async with collector_for(check) as collector:
        with pytest.raises(CollectorError):
            await collector.collect()


async def test_flaky_endpoint_passes_after_retries(server: LoopbackServer) -> None:
    server.script("/", fail_then_succeed(2))
    async with collector_for(make_check(server.url("/"), retries=2)) as collector:
        collection = await collector.collect()

    assert collector.result is not None
    assert (collector.result.ok, collector.result.attempts) == (True, 3)
    assert server.count("/") == 3
    assert values(collection)["http_check_failures_total"] == 0


async def test_redirects_are_followed(server: LoopbackServer) -> None:
    server.script("/old", Reply(301, b"", {"Location": "/new"}))
    server.script("/new", Reply(200, b"arrived"))
    async with collector_for(make_check(server.url("/old"), keyword="arrived")) as collector:
        await collector.collect()

    assert collector.result is not None
    assert (collector.result.ok, collector.result.status_code) == (True, 200)


async def test_events_are_recorded_on_state_changes_only(server: LoopbackServer) -> None:
    server.script("/", fail_then_succeed(2))
    async with collector_for(make_check(server.url("/"))) as collector:
        first = await collector.collect()
        second = await collector.collect()
        third = await collector.collect()
        fourth = await collector.collect()

    [failed] = first.events
    assert (failed.kind, failed.severity, failed.subject) == (EventKind.CHECK_FAILED, Severity.WARNING, "web")
    assert failed.data["failure"] == "status"
    assert failed.data["status_code"] == 503
    assert second.events == []
    [recovered] = third.events
    assert recovered.kind == EventKind.CHECK_RECOVERED
    assert fourth.events == []
    failures = [values(c)["http_check_failures_total"] for c in (first, second, third, fourth)]
    assert failures == [1, 2, 2, 2]
    assert collector.result is not None
    assert collector.result.consecutive_failures == 0


async def test_consecutive_failures_count_failed_checks_in_a_row(server: LoopbackServer) -> None:
    server.script("/", Reply(503))
    async with collector_for(make_check(server.url("/"), retries=1)) as collector:
        await collector.collect()
        await collector.collect()

    assert collector.result is not None
    assert collector.result.consecutive_failures == 2


async def test_request_headers_are_sent_but_never_reported(
    server: LoopbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = "Bearer s3cr3t-token"
    server.script("/", Reply(403, b"denied"))
    caplog.set_level(logging.DEBUG, logger="crucible_monitor")
    check = make_check(server.url("/"), headers={"Authorization": token}, retries=1)
    async with collector_for(check) as collector:
        collection = await collector.collect()

    assert server.requests_to("/")[0].headers["Authorization"] == token
    assert collector.result is not None
    assert token not in collector.result.model_dump_json()
    assert all(token not in repr(e) for e in collection.events)
    assert "s3cr3t" not in caplog.text


async def test_password_in_the_url_is_masked_in_the_result(server: LoopbackServer) -> None:
    server.script("/", Reply(200))
    url = server.url("/").replace("://", "://admin:hunter2@")
    async with collector_for(make_check(url)) as collector:
        await collector.collect()

    assert collector.result is not None
    assert "hunter2" not in collector.result.url


async def test_emitted_metrics_match_the_catalogue(tls: TlsFiles, https_server: LoopbackServer) -> None:
    https_server.script("/", Reply(200))
    declared = {spec.name: spec for spec in CATALOGUE}
    async with collector_for(make_check(https_server.url("/"), ca_file=str(tls.ca_file))) as collector:
        collection = await collector.collect()

    assert_contract(collector, collection, complete=True)
    assert list(collector.catalogue) == list(CATALOGUE)
    assert {n for n, s in declared.items() if s.kind is MetricKind.COUNTER} == {
        n for n in declared if n.endswith("_total")
    }
