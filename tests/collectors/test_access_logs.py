"""The access-log collector: a real Caddy's JSON log, recorded Caddy lines with exact timings, combined format."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import assert_contract, values
from loopback_servers import Reply, serve_http
from manual_clock import Clock
from pydantic import ValidationError
from services.caddy import Caddy, run_caddy
from supervisor_fixture import wait_until

from crucible_monitor.collectors.access_logs import (
    AccessLogsCollector,
    AccessLogsConfig,
    normalise_path,
    parse_caddy_line,
    parse_combined_line,
)
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.models import EventKind

pytestmark = pytest.mark.anyio

RECORDED = Path(__file__).parent.parent / "fixtures" / "apps" / "caddy" / "access-2.6.2.log"
NOW = 1_795_853_400.0


def _caddy_line(ts: float, host: str, uri: str, status: int, duration: float, method: str = "GET") -> str:
    """A line as Caddy 2.6.2 writes it (the recorded 200), with these fields changed."""
    entry = json.loads(RECORDED.read_text(encoding="utf-8").splitlines()[0])
    entry["ts"], entry["status"], entry["duration"] = ts, status, duration
    entry["request"].update(host=host, uri=uri, method=method)
    return json.dumps(entry)


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(f"{line}\n" for line in lines)


def _line_count(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


@pytest.fixture
def caddy(tmp_path: Path) -> Iterator[Caddy]:
    with serve_http() as upstream:
        upstream.script("/api/boom", [Reply(500, b"boom")] * 10)
        body = (
            f"\thandle /api/* {{\n\t\treverse_proxy {upstream.url('/').removeprefix('http://').rstrip('/')}\n\t}}\n"
            '\thandle /ok {\n\t\trespond "ok" 200\n\t}\n'
            '\thandle {\n\t\trespond "not found" 404\n\t}'
        )
        with run_caddy(tmp_path / "caddy", ["shop.test", "api.test"], body) as server:
            yield server


def _request(caddy: Caddy, host: str, path: str, times: int = 1) -> None:
    with httpx.Client() as client:
        for _ in range(times):
            client.get(caddy.url(path), headers={"Host": f"{host}:{caddy.port}"})


async def test_a_real_caddys_requests_are_counted_per_vhost_and_status_class(caddy: Caddy, tmp_path: Path) -> None:
    _request(caddy, "shop.test", "/ok")  # Caddy creates its log with the first entry
    wait_until(lambda: _line_count(caddy.access_log) == 1, 10, "the first access-log line")
    collector = AccessLogsCollector(
        AccessLogsConfig(files=[{"path": str(caddy.access_log)}]), state_dir=tmp_path / "state"
    )
    first = await collector.collect()
    assert values(first.samples, "http_requests_total") == {}  # the log is read from its end at the first run
    assert first.events == []

    _request(caddy, "shop.test", "/ok", 3)
    _request(caddy, "shop.test", "/missing/42", 2)
    _request(caddy, "api.test", "/api/boom?id=7", 2)
    wait_until(lambda: _line_count(caddy.access_log) == 8, 10, "Caddy to log 7 more requests")
    collection = await collector.collect()

    assert_contract(collector, first)
    assert_contract(collector, collection, complete=True)
    assert values(collection.samples, "http_requests_total") == {
        (("status_class", "2xx"), ("vhost", "shop.test")): 3,
        (("status_class", "4xx"), ("vhost", "shop.test")): 2,
        (("status_class", "5xx"), ("vhost", "api.test")): 2,
    }
    assert values(collection.samples, "http_server_error_ratio") == {
        (("vhost", "api.test"),): 1.0,
        (("vhost", "shop.test"),): 0.0,
    }
    assert values(collection.samples, "http_client_error_ratio")[(("vhost", "shop.test"),)] == 0.4
    quantiles = values(collection.samples, "http_request_duration_seconds")
    assert set(quantiles) == {
        (("quantile", q), ("vhost", v)) for q in ("0.5", "0.95", "0.99") for v in ("shop.test", "api.test")
    }
    assert all(value > 0 for value in quantiles.values())
    failing = collector.top_endpoints("api.test", "errors")
    assert [(e.method, e.path, e.requests, e.server_errors) for e in failing.endpoints] == [("GET", "/api/boom", 2, 2)]
    shop = collector.top_endpoints("shop.test", "errors")
    assert [(e.path, e.client_errors) for e in shop.endpoints] == [("/missing/{id}", 2)]
    assert shop.requests == 5


async def test_copytruncate_of_a_real_caddys_log_loses_no_request(caddy: Caddy, tmp_path: Path) -> None:
    _request(caddy, "shop.test", "/ok")
    wait_until(lambda: _line_count(caddy.access_log) == 1, 10, "the first access-log line")
    collector = AccessLogsCollector(
        AccessLogsConfig(files=[{"path": str(caddy.access_log)}]), state_dir=tmp_path / "state"
    )
    await collector.collect()
    _request(caddy, "shop.test", "/ok", 4)
    wait_until(lambda: _line_count(caddy.access_log) == 5, 10, "Caddy to log 4 more requests")
    await collector.collect()
    shutil.copyfile(caddy.access_log, caddy.access_log.with_name("access.log.1"))
    os.truncate(caddy.access_log, 0)
    _request(caddy, "shop.test", "/ok", 2)
    wait_until(lambda: _line_count(caddy.access_log) == 2, 10, "Caddy to log into the truncated file")
    collection = await collector.collect()
    assert values(collection.samples, "http_requests_total") == {(("status_class", "2xx"), ("vhost", "shop.test")): 6}


@pytest.fixture
def recorded_log(tmp_path: Path) -> Path:
    path = tmp_path / "logs" / "access.log"
    path.parent.mkdir()
    path.write_text("", encoding="utf-8")
    return path


async def test_top_endpoints_ranks_normalised_paths_by_latency_and_by_errors(
    recorded_log: Path, tmp_path: Path
) -> None:
    clock = Clock(NOW)
    config = AccessLogsConfig(files=[{"path": str(recorded_log)}])
    collector = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=clock)
    await collector.collect()
    _append(
        recorded_log,
        _caddy_line(NOW - 50, "shop.test", "/orders/123?page=2", 200, 0.8),
        _caddy_line(NOW - 40, "shop.test", "/orders/456", 500, 1.2),
        _caddy_line(NOW - 30, "shop.test", "/", 200, 0.01),
        _caddy_line(NOW - 20, "shop.test", "/", 200, 0.02),
        _caddy_line(NOW - 10, "shop.test", "/cart", 404, 0.05, method="POST"),
        _caddy_line(NOW - 5, "api.test:8443", "/v1/items/0b9e7c4e-1f2a-4c3b-9d8e-7f6a5b4c3d2e", 503, 3.0),
    )
    collection = await collector.collect()

    latency = collector.top_endpoints("shop.test", "latency", limit=2)
    assert [(e.method, e.path, e.requests, e.max_seconds) for e in latency.endpoints] == [
        ("GET", "/orders/{id}", 2, 1.2),
        ("POST", "/cart", 1, 0.05),
    ]
    slowest = latency.endpoints[0]
    assert slowest.avg_seconds == 1.0
    assert slowest.p95_seconds is not None and 1.2 <= slowest.p95_seconds <= 1.2 * 2**0.25
    errors = collector.top_endpoints(None, "errors")
    assert [(e.vhost, e.path, e.server_errors, e.client_errors) for e in errors.endpoints] == [
        ("api.test", "/v1/items/{id}", 1, 0),
        ("shop.test", "/orders/{id}", 1, 0),
        ("shop.test", "/cart", 0, 1),
    ]
    assert errors.requests == 6
    quantiles = values(collection.samples, "http_request_duration_seconds")
    assert quantiles[(("quantile", "0.5"), ("vhost", "shop.test"))] == 0.05
    assert quantiles[(("quantile", "0.99"), ("vhost", "shop.test"))] == 1.2


async def test_top_endpoints_keeps_only_the_window_and_names_the_known_hosts(
    recorded_log: Path, tmp_path: Path
) -> None:
    clock = Clock(NOW)
    config = AccessLogsConfig(files=[{"path": str(recorded_log)}], window="10m")
    collector = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=clock)
    await collector.collect()
    _append(
        recorded_log,
        _caddy_line(NOW - 1200, "shop.test", "/old", 500, 0.1),
        _caddy_line(NOW - 300, "shop.test", "/recent", 500, 0.1),
        _caddy_line(NOW - 30, "shop.test", "/newest", 500, 0.1),
    )
    await collector.collect()
    assert [e.path for e in collector.top_endpoints("shop.test", "errors").endpoints] == ["/recent", "/newest"]
    recent = collector.top_endpoints("shop.test", "errors", since=NOW - 60)
    assert [e.path for e in recent.endpoints] == ["/newest"]
    clock.now = NOW + 500
    await collector.collect()
    assert [e.path for e in collector.top_endpoints("shop.test", "errors").endpoints] == ["/newest"]
    with pytest.raises(NotFoundError, match=r"'api\.test'.*hosts: shop\.test"):
        collector.top_endpoints("api.test")
    with pytest.raises(QueryError, match="valid: latency, errors"):
        collector.top_endpoints("shop.test", "slowness")  # type: ignore[arg-type]


async def test_endpoints_beyond_max_paths_are_counted_as_other(recorded_log: Path, tmp_path: Path) -> None:
    config = AccessLogsConfig(files=[{"path": str(recorded_log)}], max_paths=10)
    collector = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=Clock(NOW))
    await collector.collect()
    _append(recorded_log, *(_caddy_line(NOW - 5, "shop.test", f"/page-{i}", 500, 0.1) for i in range(15)))
    await collector.collect()
    ranked = collector.top_endpoints("shop.test", "errors", limit=20)
    assert len(ranked.endpoints) == 11
    assert ("*", "(other)", 5) in [(e.method, e.path, e.requests) for e in ranked.endpoints]


async def test_a_restarted_collector_counts_only_what_was_logged_since_it_saved(
    recorded_log: Path, tmp_path: Path
) -> None:
    config = AccessLogsConfig(files=[{"path": str(recorded_log)}])
    first = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=Clock(NOW))
    await first.collect()
    _append(recorded_log, _caddy_line(NOW, "shop.test", "/", 200, 0.1))
    await first.collect()
    _append(recorded_log, *[_caddy_line(NOW + 1, "shop.test", "/", 200, 0.1)] * 3)
    second = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=Clock(NOW + 10))
    collection = await second.collect()
    assert values(collection.samples, "http_requests_total") == {(("status_class", "2xx"), ("vhost", "shop.test")): 3}


async def test_lines_that_do_not_parse_are_counted_and_skipped(recorded_log: Path, tmp_path: Path) -> None:
    config = AccessLogsConfig(files=[{"path": str(recorded_log)}])
    collector = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=Clock(NOW))
    await collector.collect()
    _append(
        recorded_log,
        "not json at all",
        '{"level":"info","ts":1795853298.7,"logger":"tls","msg":"finished cleaning storage units"}',
        '{"ts":1795853298.7,"request":{"host":"shop.test","uri":5},"status":200}',
        _caddy_line(NOW, "shop.test", "/", 200, 0.1),
    )
    collection = await collector.collect()
    assert_contract(collector, collection)
    log = (("log", str(recorded_log)),)
    assert values(collection.samples, "access_log_lines_total") == {log: 4}
    assert values(collection.samples, "access_log_unparsed_lines_total") == {log: 3}
    assert values(collection.samples, "http_requests_total") == {(("status_class", "2xx"), ("vhost", "shop.test")): 1}


async def test_a_log_that_is_missing_is_one_event_until_it_appears(tmp_path: Path) -> None:
    missing = tmp_path / "logs" / "access.log"
    config = AccessLogsConfig(files=[{"path": str(missing)}])
    collector = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=Clock(NOW))
    first = await collector.collect()
    assert [(e.kind, e.subject, e.message) for e in first.events] == [
        (EventKind.COLLECTOR_ERROR, "access_logs", f"access logs: no file {missing}")
    ]
    assert (await collector.collect()).events == []
    missing.parent.mkdir()
    missing.write_text(_caddy_line(NOW, "shop.test", "/", 200, 0.1) + "\n", encoding="utf-8")
    appeared = await collector.collect()
    assert appeared.events == []
    assert values(appeared.samples, "http_requests_total") == {(("status_class", "2xx"), ("vhost", "shop.test")): 1}


def test_caddy_lines_give_the_request_host_without_port_unless_the_file_names_one() -> None:
    lines = RECORDED.read_bytes().splitlines()
    first = parse_caddy_line(lines[0])
    assert first is not None
    assert (first.ts, first.vhost, first.method, first.path, first.status) == (
        1795853298.7048976,
        "127.0.0.1",
        "GET",
        "/",
        200,
    )
    assert first.duration == 0.004098287
    third = parse_caddy_line(lines[2], host="shop.example.com")
    assert third is not None
    assert (third.vhost, third.path, third.status) == ("shop.example.com", "/api/x", 502)
    iso = json.loads(lines[1])
    iso["ts"] = "2026-11-28T08:08:18.714Z"
    parsed = parse_caddy_line(json.dumps(iso).encode())
    assert parsed is not None and parsed.ts == 1795853298.714
    assert parse_caddy_line(b'{"ts":1,"msg":"no request"}') is None


def test_combined_lines_with_and_without_request_time() -> None:
    nginx = (
        b'203.0.113.9 - - [28/Nov/2026:10:00:00 +0000] "GET /orders/42?x=1 HTTP/1.1" 502 157 '
        b'"https://shop.example.com/" "Mozilla/5.0 (X11; Linux x86_64)" 0.250'
    )
    apache = b'::1 - alice [28/Nov/2026:11:00:00 +0100] "POST /login HTTP/1.1" 302 - "-" "curl/8.5.0"'
    common = b'10.0.0.1 - - [28/Nov/2026:10:00:01 +0000] "GET / HTTP/1.0" 200 512'
    record = parse_combined_line(nginx, "shop.example.com")
    assert record is not None
    assert record == (1795860000.0, "shop.example.com", "GET", "/orders/{id}", 502, 0.25)
    login = parse_combined_line(apache, "shop.example.com")
    assert login is not None and (login.ts, login.method, login.status, login.duration) == (
        1795860000.0,
        "POST",
        302,
        None,
    )
    assert parse_combined_line(common, "h") is not None
    assert parse_combined_line(b'- - - [28/Nov/2026:10:00:00 +0000] "\\x16\\x03\\x01" 400 0 "-" "-"', "h") is not None
    assert parse_combined_line(b"garbage", "h") is None
    assert parse_combined_line(b'1 - - [not a time] "GET / HTTP/1.1" 200 1', "h") is None


async def test_the_combined_format_is_read_with_the_configured_host(recorded_log: Path, tmp_path: Path) -> None:
    config = AccessLogsConfig(files=[{"path": str(recorded_log), "format": "combined", "host": "shop.example.com"}])
    collector = AccessLogsCollector(config, state_dir=tmp_path / "state", clock=Clock(NOW))
    await collector.collect()
    _append(
        recorded_log,
        '1.2.3.4 - - [28/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 10 "-" "ua" 0.010',
        '1.2.3.4 - - [28/Nov/2026:10:00:01 +0000] "GET /x HTTP/1.1" 503 10 "-" "ua" 0.500',
    )
    collection = await collector.collect()
    assert_contract(collector, collection)
    assert values(collection.samples, "http_requests_total") == {
        (("status_class", "2xx"), ("vhost", "shop.example.com")): 1,
        (("status_class", "5xx"), ("vhost", "shop.example.com")): 1,
    }


def test_paths_lose_queries_and_ids() -> None:
    assert normalise_path("/users/123/orders/9?sort=asc") == "/users/{id}/orders/{id}"
    assert normalise_path("/files/8f14e45fceea167a5a36dedd4bea2543") == "/files/{id}"
    assert normalise_path("/v2/api") == "/v2/api"
    assert normalise_path("?q=1") == "/"


def test_config_requires_absolute_paths_and_a_host_for_the_combined_format() -> None:
    with pytest.raises(ValidationError, match="must be absolute"):
        AccessLogsConfig(files=[{"path": "logs/access.log"}])
    with pytest.raises(ValidationError, match="set host"):
        AccessLogsConfig(files=[{"path": "/var/log/nginx/access.log", "format": "combined"}])
    with pytest.raises(ValidationError, match="'caddy' or 'combined'"):
        AccessLogsConfig(files=[{"path": "/var/log/x.log", "format": "json"}])
