"""The PHP-FPM collector against a real php-fpm8.2, over FastCGI on its socket and over HTTP through a real Caddy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import assert_contract, values
from pydantic import ValidationError
from services.caddy import run_caddy
from services.php_fpm import PhpFpm, run_php_fpm
from supervisor_fixture import free_port, wait_until

from crucible_monitor.collectors.php_fpm import (
    FastCgiError,
    PhpFpmCollector,
    PhpFpmConfig,
    fastcgi_get,
)
from crucible_monitor.models import EventKind

pytestmark = pytest.mark.anyio


def _collector(**pools: str) -> PhpFpmCollector:
    return PhpFpmCollector(
        PhpFpmConfig(pools=[{"name": name, "status_url": url} for name, url in pools.items()]), clock=lambda: 1000.0
    )


@pytest.fixture
def fpm(tmp_path: Path) -> Iterator[PhpFpm]:
    with run_php_fpm(tmp_path / "fpm", pm="static", max_children=2) as server:
        yield server


async def test_a_pools_status_is_read_over_fastcgi_from_its_socket(fpm: PhpFpm) -> None:
    collector = _collector(app=f"unix://{fpm.socket}")
    collection = await collector.collect()
    pool = (("pool", "app"),)
    assert_contract(collector, collection, complete=True)
    assert collection.events == []
    assert values(collection.samples, "php_fpm_up") == {pool: 1}
    assert values(collection.samples, "php_fpm_processes") == {
        (("pool", "app"), ("state", "active")): 1,  # the worker answering the status request
        (("pool", "app"), ("state", "idle")): 1,
    }
    assert values(collection.samples, "php_fpm_listen_queue") == {pool: 0}
    first_accepted = values(collection.samples, "php_fpm_accepted_connections_total")[pool]
    again = await collector.collect()
    assert values(again.samples, "php_fpm_accepted_connections_total")[pool] == first_accepted + 1


def _running(gate: Path) -> int:
    started = gate.with_name(f"{gate.name}.started")
    return len(started.read_text(encoding="utf-8").splitlines()) if started.exists() else 0


async def _wait(condition: Callable[[], bool], what: str) -> None:
    await asyncio.to_thread(wait_until, condition, 10, what)


async def test_a_full_pool_reports_max_children_reached(tmp_path: Path) -> None:
    with run_php_fpm(tmp_path / "fpm", pm="ondemand", max_children=2) as fpm:
        gate = tmp_path / "gate"
        log = fpm.directory / "php-fpm.log"

        def hold() -> asyncio.Task[tuple[int, bytes]]:
            return asyncio.create_task(
                fastcgi_get(f"unix://{fpm.socket}", str(fpm.docroot / "gate.php"), f"gate={gate}", timeout=15)
            )

        # One at a time, so that FPM sees each connection while the others run.
        held = [hold()]
        await _wait(lambda: _running(gate) == 1, "the first request to run")
        held.append(hold())
        await _wait(lambda: _running(gate) == 2, "the second request to run")
        held.append(hold())  # no worker left for this one
        await _wait(lambda: "reached max_children setting (2)" in log.read_text("utf-8"), "a full pool")
        gate.touch()
        answers = await asyncio.gather(*held)
        collection = await _collector(app=f"unix://{fpm.socket}").collect()
    assert answers == [(200, b"released\n")] * 3
    pool = (("pool", "app"),)
    assert values(collection.samples, "php_fpm_max_children_reached_total") == {pool: 1}


async def test_slow_requests_are_counted_while_they_run(tmp_path: Path) -> None:
    with run_php_fpm(tmp_path / "fpm", pm="static", max_children=2, slowlog_timeout="1s") as fpm:
        gate = tmp_path / "gate"
        held = asyncio.create_task(
            fastcgi_get(f"unix://{fpm.socket}", str(fpm.docroot / "gate.php"), f"gate={gate}", timeout=15)
        )
        collector = _collector(app=f"unix://{fpm.socket}")

        async def slow_requests() -> float:
            collection = await collector.collect()
            return values(collection.samples, "php_fpm_slow_requests_total")[(("pool", "app"),)]

        try:
            async with asyncio.timeout(10):
                while await slow_requests() < 1:  # FPM checks its workers once a second
                    await asyncio.sleep(0.1)
        finally:
            gate.touch()
            await held
    assert held.result() == (200, b"released\n")


async def test_a_status_page_served_by_caddy_is_read_over_http(fpm: PhpFpm, tmp_path: Path) -> None:
    body = (
        "\thandle /fpm-status {\n"
        f"\t\treverse_proxy unix/{fpm.socket} {{\n"
        "\t\t\ttransport fastcgi {\n\t\t\t\tenv SCRIPT_NAME /status\n\t\t\t\tenv SCRIPT_FILENAME /status\n\t\t\t}\n"
        "\t\t}\n"
        "\t}"
    )
    with run_caddy(tmp_path / "caddy", ["127.0.0.1"], body) as caddy:
        collector = _collector(web=caddy.url("/fpm-status"))
        try:
            collection = await collector.collect()
        finally:
            await collector.aclose()
    assert_contract(collector, collection, complete=True)
    assert collection.events == []
    assert values(collection.samples, "php_fpm_up") == {(("pool", "web"),): 1}


async def test_pools_that_cannot_be_read_are_down_with_one_event_each(fpm: PhpFpm, tmp_path: Path) -> None:
    collector = _collector(
        app=f"unix://{fpm.socket}",
        gone=f"unix://{tmp_path}/gone.sock",
        closed=f"tcp://127.0.0.1:{free_port()}",
    )
    first = await collector.collect()
    second = await collector.collect()
    assert_contract(collector, first)
    assert values(first.samples, "php_fpm_up") == {
        (("pool", "app"),): 1,
        (("pool", "gone"),): 0,
        (("pool", "closed"),): 0,
    }
    assert sorted((e.kind, e.message.split(":")[0]) for e in first.events) == [
        (EventKind.COLLECTOR_ERROR, "php-fpm"),
        (EventKind.COLLECTOR_ERROR, "php-fpm"),
    ]
    assert {e.message.split(": ", 2)[1] for e in first.events} == {"pool gone", "pool closed"}
    assert second.events == []


async def test_a_wrong_status_path_names_the_setting_to_check(fpm: PhpFpm) -> None:
    collector = PhpFpmCollector(
        PhpFpmConfig(pools=[{"name": "app", "status_url": f"unix://{fpm.socket}", "status_path": "/fpm-status"}])
    )
    collection = await collector.collect()
    (event,) = collection.events
    assert event.message == (
        "php-fpm: pool app: the status page at /fpm-status over FastCGI answered 404 (is pm.status_path set to it?)"
    )


async def test_fastcgi_errors_are_fastcgi_errors(tmp_path: Path) -> None:
    with pytest.raises(FastCgiError, match="No such file"):
        await fastcgi_get(f"unix://{tmp_path}/none.sock", "/status", "json", timeout=1)


def test_config_rejects_unknown_schemes_ports_and_repeated_names() -> None:
    with pytest.raises(ValidationError, match=r"use http\(s\)://host/path, unix:///path.sock or tcp://host:port"):
        PhpFpmConfig(pools=[{"name": "a", "status_url": "fcgi://127.0.0.1:9000"}])
    with pytest.raises(ValidationError, match="tcp:// needs a port"):
        PhpFpmConfig(pools=[{"name": "a", "status_url": "tcp://127.0.0.1"}])
    with pytest.raises(ValidationError, match="repeated: a"):
        PhpFpmConfig(pools=[{"name": "a", "status_url": "unix:///x.sock"}] * 2)
