"""Three faults at once over MCP: the summary stays within its budget, and every next call it hints at answers.

php-fpm is killed behind a real Caddy (its check fails), the vhost answers a burst of 500s, and a process burns a
core. The first incident is the pool (the check follows it); every hint of every finding is called as written,
with its arguments, against the same MCP server, and none is an error.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fault_harness import BURNER, access_lines, burn, config, first_incident, get, symptoms, watching
from mcp import Client
from mcp_agent import text
from services import stop
from services.caddy import Caddy
from services.php_fpm import PhpFpm
from supervisor_fixture import wait_until

from crucible_monitor.server.mcp import build_mcp_server

pytestmark = pytest.mark.anyio

INCIDENT_STATUS_BUDGET = 6_000
_CALL = re.compile(r"\b(?P<tool>[a-z_]+)\((?P<args>[^()]*)\)")


def _calls(hint: str) -> list[tuple[str, dict[str, Any]]]:
    """Each ``tool(arg=literal, ...)`` of a hint, with its arguments as literals."""
    out = []
    for match in _CALL.finditer(hint):
        parsed = ast.parse(f"f({match['args']})", mode="eval").body
        assert isinstance(parsed, ast.Call) and not parsed.args, hint
        out.append((match["tool"], {k.arg: ast.literal_eval(k.value) for k in parsed.keywords if k.arg}))
    assert out, f"a hint without a call: {hint}"
    return out


async def test_three_faults_fit_the_budget_and_every_hint_answers(stack: tuple[PhpFpm, Caddy], tmp_path: Path) -> None:
    fpm, caddy = stack
    get(caddy, "/ok.php")
    wait_until(lambda: access_lines(caddy) == 1, 30, "Caddy's first access-log line")
    settings = config(
        tmp_path,
        system=True,
        php_fpm={"pools": [{"name": "app", "status_url": f"unix://{fpm.socket}"}]},
        http_checks=[{"name": "shop", "url": caddy.url("/ok.php"), "headers": {"Host": f"shop.test:{caddy.port}"}}],
        access_logs={"files": [{"path": str(caddy.access_log)}]},
    )
    async with watching(settings) as watched:
        await watched.collect("access_logs", "processes")
        stop(fpm.process)
        assert set(get(caddy, "/checkout", 8) + get(caddy, "/ok.php", 2)) == {500, 502}
        wait_until(lambda: access_lines(caddy) == 11, 30, "the failing requests in the access log")
        with subprocess.Popen([sys.executable, "-c", BURNER], stdout=subprocess.PIPE, text=True) as burner:
            try:
                assert burner.stdout is not None and burner.stdout.readline() == "ready\n"
                await burn(watched, burner.pid)
                await watched.collect("php_fpm", "http_check", "access_logs")
                async with Client(build_mcp_server(watched.monitor, read_only=True)) as client:
                    status = text(await client.call_tool("get_system_status", {}))
                    summary = await watched.summary()
                    hints = {call for f in summary.findings for call in map(repr, _calls(f.hint))}
                    answers = {}
                    for hint in sorted(hints):
                        tool, arguments = ast.literal_eval(hint)
                        answers[hint] = await client.call_tool(tool, arguments)
            finally:
                burner.kill()
    assert len(status) <= INCIDENT_STATUS_BUDGET, len(status)
    assert first_incident(summary).subject == "collector:php_fpm", summary.headline
    assert {"check:shop", "vhost:shop.test"} <= {f.subject for f in symptoms(summary, "collector:php_fpm")}
    assert "process:cpu-burner" in [f.subject for f in summary.findings if f.caused_by is None]
    assert len(answers) >= 4
    for hint, answer in answers.items():
        assert not answer.is_error, f"{hint}: {text(answer)}"
