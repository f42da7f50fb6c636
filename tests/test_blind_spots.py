"""Blind spots against the real things: a source that is configured but cannot be read is never "All clear".

Each test configures one collector at a real target that is wrong (a MariaDB password, a supervisord socket path,
a php-fpm pool socket that refuses, an access log that does not exist), and checks what an operator sees: the
status summary (the Monitor in-process; all four at once over MCP) names ``collector:<name>`` with the config key,
the public ``/api/v1/health`` shows the collector blind without the error's text, and ``crucible-monitor status``'s
source (the authenticated collectors view) names the target. Then the target is fixed, not the config: the blind
spot clears at the next collection and a ``collector_recovered`` event says so. Findings are filtered to the
collectors under test (the host's own state does not matter); system and systemd collectors are off.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
from agent_process import STARTUP_TIMEOUT, serve_agent
from loopback_servers import Reply, serve_http
from mcp import Client
from mcp_agent import text
from services import refusing_socket, short_directory
from services.mariadb import run_mariadb
from services.php_fpm import run_php_fpm
from supervisor_fixture import run_supervisord, wait_until

from crucible_monitor.agent import Agent
from crucible_monitor.cli import main
from crucible_monitor.config import Config
from crucible_monitor.models import EventKind
from crucible_monitor.monitor import Monitor
from crucible_monitor.schemas import CollectorStatus, Finding
from crucible_monitor.server.app import build_app
from crucible_monitor.server.mcp import build_mcp_server

pytestmark = pytest.mark.anyio

TOKEN = "blind-spot-token-0123456789"
PASSWORD = "right-Pa55word"
WRONG = "wrong-Pa55word"


@dataclass
class Watched:
    """An agent (not scheduled: the test runs its collectors) with its Monitor and an anonymous HTTP client."""

    agent: Agent
    monitor: Monitor
    anonymous: httpx.AsyncClient

    async def finding(self, name: str) -> Finding | None:
        """Collect ``name`` once; the summary's finding about it (the headline is never "All clear" with one)."""
        await self.agent.run_collector(name)
        summary = await self.monitor.status_summary()
        found = [f for f in summary.findings if f.subject == f"collector:{name}"]
        if found:
            assert not summary.headline.startswith("All clear"), summary.headline
            assert summary.status != "ok"
        return found[0] if found else None

    async def public(self, name: str) -> dict[str, Any]:
        """The collector's entry in the public /api/v1/health."""
        response = await self.anonymous.get("/api/v1/health")
        assert response.status_code == 200, response.text
        health = response.json()
        (entry,) = [c for c in health["collectors"] if c["name"] == name]
        assert health["status"] == ("ok" if entry["ok"] else "degraded")
        return dict(entry)

    async def detailed(self, name: str) -> CollectorStatus:
        """The collector as the authenticated view (what ``crucible-monitor status`` prints) shows it."""
        (status,) = [c for c in await self.monitor.collectors() if c.name == name]
        return status

    def recovered(self, name: str) -> list[str]:
        """The messages of the collector's ``collector_recovered`` events."""
        events = self.agent.running.state.events(kinds=[EventKind.COLLECTOR_RECOVERED], subject=name)
        return [e.event.message for e in events]


def _config(tmp_path: Path, collectors: dict[str, Any]) -> Config:
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "blind-1", "api_token": TOKEN},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"system": {"enabled": False}, "services": {"enabled": False}, **collectors},
            "alerts": {"cpu_threshold": None, "memory_threshold": None, "disk_threshold": None},
        }
    )


@asynccontextmanager
async def watching(tmp_path: Path, **collectors: Any) -> AsyncIterator[Watched]:
    agent = Agent(_config(tmp_path, collectors))
    await agent.start(schedule=False)
    app = build_app(agent, TOKEN, manage_agent=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://agent") as anonymous:
            yield Watched(agent, Monitor(agent), anonymous)
    finally:
        await agent.stop()


def _assert_blind(finding: Finding | None, key: str, *words: str) -> None:
    assert finding is not None
    assert finding.severity == "warning"
    assert key in finding.problem, finding.problem
    for word in words:
        assert word in (finding.detail or ""), finding.detail
    assert finding.since is not None
    assert finding.hint.startswith("get_events(kinds=['collector_error'], subject=")


async def test_a_wrong_mysql_password_is_a_blind_spot_until_the_server_accepts_it(tmp_path: Path) -> None:
    with run_mariadb(tmp_path / "db") as server:
        server.execute("CREATE USER 'crucible'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
        mysql = {"enabled": True, "host": "127.0.0.1", "port": server.port, "user": "crucible", "password": WRONG}
        async with watching(tmp_path, mysql=mysql) as watched:
            finding = await watched.finding("mysql")
            _assert_blind(finding, "collectors.mysql.password", "MySQL error 1045", "Access denied")
            assert finding is not None and WRONG not in finding.problem + (finding.detail or "")
            public = await watched.public("mysql")
            assert public["ok"] is False and public["last_error"] is None
            assert [(b["config_key"], b["error"], b["target"]) for b in public["blind"]] == [
                ("collectors.mysql.password", None, None)
            ]
            detailed = await watched.detailed("mysql")
            assert [b.target for b in detailed.blind] == [f"server 127.0.0.1:{server.port}"]

            server.execute("ALTER USER 'crucible'@'127.0.0.1' IDENTIFIED BY %s", (WRONG,))  # the target is fixed
            assert await watched.finding("mysql") is None
            assert (await watched.public("mysql"))["ok"] is True
            assert watched.recovered("mysql") == [
                f"mysql: server 127.0.0.1:{server.port} answers again (collectors.mysql.password)"
            ]


async def test_a_configured_supervisor_socket_that_does_not_exist_is_a_blind_spot(tmp_path: Path) -> None:
    (tmp_path / "sv").mkdir()
    with run_supervisord(tmp_path / "sv", {"sleeper": {"command": "/bin/sleep 1000"}}) as sv, short_directory() as d:
        configured = d / "supervisor.sock"
        services = {"systemd": {"enabled": False}, "supervisor": {"url": f"unix://{configured}"}}
        async with watching(tmp_path, services=services) as watched:
            finding = await watched.finding("services")
            _assert_blind(finding, "collectors.services.supervisor.url", f"socket {configured} does not exist")
            public = await watched.public("services")
            assert [b["config_key"] for b in public["blind"]] == ["collectors.services.supervisor.url"]

            configured.symlink_to(sv.url.removeprefix("unix://"))  # supervisord now answers at the configured path
            assert await watched.finding("services") is None
            assert {s.name for s in await watched.monitor.services()} == {"sleeper"}
            assert (await watched.public("services"))["blind"] == []
            assert watched.recovered("services") == [
                "services: supervisor answers again (collectors.services.supervisor.url)"
            ]


async def test_a_php_fpm_pool_at_a_socket_that_refuses_is_a_blind_spot(tmp_path: Path) -> None:
    with run_php_fpm(tmp_path / "fpm") as fpm, refusing_socket() as refusing:
        php_fpm = {"pools": [{"name": "app", "status_url": f"unix://{refusing}"}]}
        async with watching(tmp_path, php_fpm=php_fpm) as watched:
            finding = await watched.finding("php_fpm")
            _assert_blind(finding, "collectors.php_fpm.pools[0].status_url", "pool app", "refused")
            assert (await watched.public("php_fpm"))["ok"] is False

            refusing.unlink()
            refusing.symlink_to(fpm.socket)  # the pool now listens where the config says
            assert await watched.finding("php_fpm") is None
            assert watched.recovered("php_fpm") == [
                "php_fpm: pool app answers again (collectors.php_fpm.pools[0].status_url)"
            ]


async def test_a_status_page_behind_credentials_is_blind_without_the_password_anywhere(tmp_path: Path) -> None:
    secret = "fpm-Pa55word"
    with serve_http() as web:
        web.script("/status", Reply(404, b"not here"))
        status_url = web.url("/status").replace("http://", f"http://monitor:{secret}@")
        php_fpm = {"pools": [{"name": "www", "status_url": status_url}]}
        async with watching(tmp_path, php_fpm=php_fpm) as watched:
            finding = await watched.finding("php_fpm")
            _assert_blind(finding, "collectors.php_fpm.pools[0].status_url", "answered 404", "monitor:**********@")
            seen = [
                repr(finding),
                repr(await watched.monitor.collectors()),
                repr(watched.agent.running.state.events(kinds=[EventKind.COLLECTOR_ERROR])),
            ]
    assert not [text for text in seen if secret in text]


async def test_a_missing_access_log_is_a_blind_spot_until_it_exists(tmp_path: Path) -> None:
    log = tmp_path / "caddy" / "access.log"
    async with watching(tmp_path, access_logs={"files": [{"path": str(log)}]}) as watched:
        finding = await watched.finding("access_logs")
        _assert_blind(finding, "collectors.access_logs.files[0].path", f"no file {log}")
        assert (await watched.public("access_logs"))["ok"] is False

        log.parent.mkdir()
        log.touch()
        assert await watched.finding("access_logs") is None
        assert watched.recovered("access_logs") == [
            f"access_logs: {log} answers again (collectors.access_logs.files[0].path)"
        ]


async def test_all_clear_waits_until_every_collector_has_read_its_sources(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.touch()
    async with watching(tmp_path, access_logs={"files": [{"path": str(log)}]}) as watched:
        before = await watched.monitor.status_summary()
        await watched.agent.run_collector("access_logs")
        between = await watched.monitor.status_summary()
        await watched.agent.run_collector("agent")
        await watched.agent.run_collector("push")  # the receiver of pushed metrics reports itself as a collector
        after = await watched.monitor.status_summary()
    assert before.headline.startswith("Nothing wrong seen yet, but not read yet: access_logs, agent, push ")
    assert between.headline.startswith("Nothing wrong seen yet, but not read yet: agent, push ")
    assert after.headline.startswith("All clear")


async def test_a_collector_that_fails_as_a_whole_is_a_blind_spot_until_it_runs_again(tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    with serve_http() as web:
        web.script("/", Reply(200, b"ok"))
        checks = [{"name": "shop", "url": web.url("/"), "ca_file": str(ca_file), "retries": 0}]
        async with watching(tmp_path, http_checks=checks) as watched:
            finding = await watched.finding("http_check:shop")
            _assert_blind(finding, "collectors.http_checks[0]", f"cannot load ca_file {ca_file}")
            assert finding is not None and "1 failed runs" in finding.problem
            public = await watched.public("http_check:shop")
            assert [b["config_key"] for b in public["blind"]] == ["collectors.http_checks[0]"]

            shutil.copyfile(certifi.where(), ca_file)
            assert await watched.finding("http_check:shop") is None
            assert [c.ok for c in await watched.monitor.http_checks()] == [True]
            (recovered,) = watched.recovered("http_check:shop")
            assert recovered.startswith("collector http_check:shop runs again (it failed: CollectorError: ")


_HINT = re.compile(r"get_events\((?P<args>kinds=\['collector_error'\], subject='(?P<name>[^']+)'[^)]*)\)")


async def test_over_mcp_the_four_blind_sources_of_the_issue_are_named_and_their_hints_answer(tmp_path: Path) -> None:
    with run_mariadb(tmp_path / "db") as server, refusing_socket() as refusing, short_directory() as d:
        collectors = {
            "mysql": {"enabled": True, "host": "127.0.0.1", "port": server.port, "user": "crucible", "password": WRONG},
            "services": {"systemd": {"enabled": False}, "supervisor": {"url": f"unix://{d}/supervisor.sock"}},
            "php_fpm": {"pools": [{"name": "www", "status_url": f"unix://{refusing}"}]},
            "access_logs": {"files": [{"path": str(tmp_path / "missing.log")}]},
        }
        async with watching(tmp_path, **collectors) as watched:
            for name in ("mysql", "services", "php_fpm", "access_logs"):
                await watched.agent.run_collector(name)
            async with Client(build_mcp_server(watched.monitor, read_only=True)) as client:
                status = text(await client.call_tool("get_system_status", {}))
                hints = {m["name"]: m["args"] for m in _HINT.finditer(status)}
                answers = {name: await client.call_tool("get_events", _arguments(args)) for name, args in hints.items()}
    assert "All clear" not in status
    for key in (
        "collectors.mysql.password",
        "collectors.services.supervisor.url",
        "collectors.php_fpm.pools[0].status_url",
        "collectors.access_logs.files[0].path",
    ):
        assert key in status, key
    assert set(hints) == {"mysql", "services", "php_fpm", "access_logs"}
    for name, answer in answers.items():
        assert not answer.is_error, text(answer)
        events = json.loads(text(answer))["events"]
        assert events and {(e["kind"], e["subject"]) for e in events} == {("collector_error", name)}, events


def _arguments(call: str) -> dict[str, Any]:
    """The keyword arguments of a hint's call, as literals."""
    parsed = ast.parse(f"f({call})", mode="eval").body
    assert isinstance(parsed, ast.Call)
    return {k.arg: ast.literal_eval(k.value) for k in parsed.keywords if k.arg is not None}


def test_crucible_monitor_status_prints_a_line_per_blind_collector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "missing.log"
    extra = f"collectors:\n  services:\n    enabled: false\n  access_logs:\n    files:\n      - path: {log}\n"
    monkeypatch.setenv("COLUMNS", "500")  # one line per collector, however long the path
    with serve_agent(tmp_path, extra) as served, httpx.Client(base_url=served.base_url) as client:

        def blind() -> bool:
            collectors = client.get("/api/v1/health").json()["collectors"]
            return any(c["name"] == "access_logs" and c["blind"] for c in collectors)

        wait_until(blind, STARTUP_TIMEOUT, "the access log collector to be blind")
        assert main(["status", "--config", str(served.config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("WARNING") and "collector:access_logs" in lines[0]  # the headline comes first
    assert [" ".join(line.split()) for line in lines if line.startswith("blind ")] == [
        f"blind access_logs: {log} (collectors.access_logs.files[0].path)"
    ]
