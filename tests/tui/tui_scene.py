"""The dashboard tests' scene: a real ``crucible-monitor serve`` watching a real supervisord, and helpers to wait on
what the dashboard shows (bounded polling through the pilot, never a fixed sleep)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from agent_process import STARTUP_TIMEOUT, ServedAgent, serve_agent
from loopback_servers import Reply, serve_http
from rich.console import Console
from supervisor_fixture import Supervisord, run_supervisord, wait_until
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

WORKER = "queue-worker"
"""An allowlisted supervisor program that runs (restarts go to it)."""
BROKEN = "nightly-report"
"""A program that exits at once: its ServiceDown alert fires."""
BROKEN_SAYS = "report-failed-missing-input"
"""What the broken program writes to its log before it exits."""
UP_CHECK, DOWN_CHECK = "shop-health", "shop-orders"
"""HTTP checks against a real loopback server: one answers 200, one 503."""
FOLLOWED = "app"
"""A log file in ``logs.files`` (the scene's ``log_file``), for the live log tail."""
UI_TIMEOUT = 30.0


@dataclass
class Scene:
    """An agent and the supervisord it watches."""

    agent: ServedAgent
    supervisord: Supervisord
    log_file: Path
    """The file the agent knows as the log :data:`FOLLOWED`."""

    @property
    def token(self) -> str:
        return self.agent.token()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.agent.base_url, headers={"Authorization": f"Bearer {self.token}"})


@contextmanager
def scene(tmp: Path, extra_yaml: str = "") -> Iterator[Scene]:
    """supervisord with a running worker and a broken program; an agent watching it with the worker allowlisted,
    ready once both programs are listed and the broken one's ServiceDown alert fires; a log file to follow."""
    failing = {
        "command": f"/bin/sh -c 'echo {BROKEN_SAYS}; exit 1'",
        "autorestart": "false",
        "startsecs": "0",
        "startretries": "0",
    }
    programs = {WORKER: {"command": "/bin/sleep 1000", "startsecs": "0"}, BROKEN: failing}
    (tmp / "sv").mkdir()
    log_file = tmp / "app.log"
    log_file.write_text("started\n", encoding="utf-8")
    with run_supervisord(tmp / "sv", programs) as sv, serve_http() as web:
        web.script("/health", Reply(200, b"ok"))
        web.script("/orders", Reply(503, b"down for maintenance"))
        checks = "".join(
            f"    - name: {name}\n      url: {web.url(path)}\n      interval: 1s\n      retries: 0\n"
            for name, path in ((UP_CHECK, "/health"), (DOWN_CHECK, "/orders"))
        )
        extra = (
            f"collectors:\n  http_checks:\n{checks}  services:\n    supervisor:\n      url: {sv.url}\n"
            f"logs:\n  files:\n    {FOLLOWED}: {log_file}\n"
            "alerts:\n  service_down: immediate\n"
            f"actions:\n  restart_allowlist: [{WORKER}]\n  restart_backoff: 1s\n" + extra_yaml
        )
        with serve_agent(tmp, extra) as agent:
            ready = Scene(agent, sv, log_file)
            with ready.client() as c:
                wait_until(
                    lambda: f'"{WORKER}"' in c.get("/api/v1/metrics/services").text,
                    STARTUP_TIMEOUT,
                    "the supervisor programs listed",
                )
                wait_until(
                    lambda: "ServiceDown" in c.get("/api/v1/alerts", params={"state": "firing"}).text,
                    STARTUP_TIMEOUT,
                    f"{BROKEN}'s ServiceDown alert firing",
                )
            yield ready


def rendered(widget: Widget, width: int = 200) -> str:
    """The plain text a Static (or any widget's content) shows."""
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(widget.content if isinstance(widget, Static) else widget.render())
    return console.export_text()


async def wait_for(pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = UI_TIMEOUT) -> None:
    """Let the app run until ``condition()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)  # the poll interval of a bounded wait
