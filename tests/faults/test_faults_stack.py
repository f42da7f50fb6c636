"""Real faults in the web stack: a crash-looping supervisor program, php-fpm killed behind a real Caddy, a burst of
500s and of slow responses on a Caddy vhost, a certificate expiring in 3 days.

Each names its culprit in the first incident (the symptoms follow it, tied to it), and, once the fault is undone,
names it in "recently recovered" and no longer as a problem.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_harness import Watched, accepts, access_lines, config, first_incident, get, recovered, symptoms, watching
from loopback_servers import Reply, make_tls_files, serve_https
from services import stop
from services.caddy import Caddy
from services.php_fpm import PhpFpm
from supervisor_fixture import run_supervisord, wait_until

pytestmark = pytest.mark.anyio

DEADLINE = 30.0


async def _collect_until(watched: Watched, prefix: str, done: Callable[[], bool]) -> None:
    """Run the ``prefix`` collectors until ``done()`` holds (bounded)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        await watched.collect(prefix)
        if done():
            return
        assert time.monotonic() < deadline, f"{prefix}: not within {DEADLINE} s"
        await asyncio.sleep(0.2)  # poll interval of a bounded wait


async def test_a_crash_looping_program_leads_and_shows_recovered_once_it_stays_up(tmp_path: Path) -> None:
    healthy = tmp_path / "healthy"
    looping = {
        "command": f"/bin/sh -c 'test -f {healthy} && exec /bin/sleep 1000; /bin/sleep 0.2; exit 3'",
        "autorestart": "true",
        "startsecs": "0",
        "startretries": "1000",
    }
    offset = [0.0]
    (tmp_path / "sv").mkdir()
    with run_supervisord(tmp_path / "sv", {"crasher": looping}) as sv:
        services = {"systemd": {"enabled": False}, "supervisor": {"url": sv.url}}
        async with watching(config(tmp_path, services=services), clock=lambda: time.time() + offset[0]) as watched:
            statuses = watched.agent.statuses
            await _collect_until(watched, "services", lambda: statuses()[0].restarts >= 3)
            summary = await watched.summary()
            lead = first_incident(summary)
            assert lead.subject == "service:crasher", summary.headline
            assert "restarts in the last 15 min" in lead.problem or "crash loop" in lead.problem
            healthy.touch()
            await _collect_until(watched, "services", lambda: statuses()[0].state == "running")
            offset[0] = 61.0  # a minute later, still up: stable again
            await watched.collect("services")
            summary = await watched.summary()
            assert "service:crasher" not in [f.subject for f in summary.findings], summary.headline
            assert "service:crasher" in recovered(summary)


async def test_php_fpm_killed_behind_caddy_leads_with_the_pool_and_its_failing_check_follows(
    stack: tuple[PhpFpm, Caddy], tmp_path: Path
) -> None:
    fpm, caddy = stack
    settings = config(
        tmp_path,
        php_fpm={"pools": [{"name": "app", "status_url": f"unix://{fpm.socket}"}]},
        http_checks=[{"name": "shop", "url": caddy.url("/ok.php"), "headers": {"Host": f"shop.test:{caddy.port}"}}],
    )
    async with watching(settings) as watched:
        await watched.collect("php_fpm", "http_check")
        assert not (await watched.summary()).findings
        stop(fpm.process)
        await watched.collect("php_fpm", "http_check")
        summary = await watched.summary()
        lead = first_incident(summary)
        assert lead.subject == "collector:php_fpm", summary.headline
        assert lead.severity == "critical" and ("refused" in str(lead.detail) or "No such file" in str(lead.detail))
        assert [f.subject for f in symptoms(summary, "collector:php_fpm")] == ["check:shop"]
        assert summary.headline.startswith("1 incident: collector:php_fpm"), summary.headline
        again = subprocess.Popen(fpm.process.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: accepts(fpm.socket), DEADLINE, "php-fpm to answer again")
            await watched.collect("php_fpm", "http_check")
            summary = await watched.summary()
            assert not summary.findings, summary.headline
            assert {"collector:php_fpm", "check:shop"} <= set(recovered(summary))
        finally:
            stop(again)


async def test_a_burst_of_500s_and_slow_responses_on_a_vhost_lead_and_recover(
    stack: tuple[PhpFpm, Caddy], tmp_path: Path
) -> None:
    _, caddy = stack
    get(caddy, "/ok.php")
    wait_until(lambda: access_lines(caddy) == 1, DEADLINE, "Caddy's first access-log line")
    settings = config(tmp_path, access_logs={"files": [{"path": str(caddy.access_log)}]})
    async with watching(settings) as watched:
        await watched.collect("access_logs")
        assert get(caddy, "/checkout", 16) == [500] * 16 and get(caddy, "/ok.php", 4) == [200] * 4
        wait_until(lambda: access_lines(caddy) == 21, DEADLINE, "the burst in the access log")
        await watched.collect("access_logs")
        summary = await watched.summary()
        lead = first_incident(summary)
        assert lead.subject == "vhost:shop.test", summary.headline
        assert lead.severity == "critical" and "80.0 % of requests answered 5xx" in lead.problem
        assert lead.hint == "top_endpoints(vhost='shop.test', by='errors')"
        assert get(caddy, "/slow.php", 4) == [200] * 4
        wait_until(lambda: access_lines(caddy) == 25, DEADLINE, "the slow requests in the access log")
        await watched.collect("access_logs")
        summary = await watched.summary()
        lead = first_incident(summary)
        assert lead.subject == "vhost:shop.test" and "p95 latency" in lead.problem, summary.headline
        get(caddy, "/ok.php", 10)
        wait_until(lambda: access_lines(caddy) == 35, DEADLINE, "the good requests in the access log")
        await watched.collect("access_logs")
        summary = await watched.summary()
        assert "vhost:shop.test" not in [f.subject for f in summary.findings], summary.headline
        assert "vhost:shop.test" in recovered(summary)


async def test_a_certificate_expiring_in_3_days_is_a_critical_incident(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    tls = make_tls_files(tmp_path / "tls", valid_for=dt.timedelta(days=3))
    with serve_https(tls) as server:
        server.script("/", Reply(200))
        check = {"name": "secure", "url": server.url("/"), "ca_file": str(tls.ca_file)}
        async with watching(config(tmp_path, http_checks=[check])) as watched:
            await watched.collect("http_check")
            summary = await watched.summary()
    lead = first_incident(summary)
    assert lead.subject == "cert:secure", summary.headline
    assert lead.severity == "critical" and "expires in 3.0 days" in lead.problem
