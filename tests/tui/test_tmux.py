"""The real ``crucible-monitor dashboard`` in a real terminal: a detached tmux session (its own server socket) runs
it against the agent, and the captured pane shows the agent's headline and a service row; ``q`` quits it."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
from supervisor_fixture import wait_until
from tui_scene import UI_TIMEOUT, WORKER, Scene

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (.ci/run installs it)")


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    """``tmux -L <private socket>``: a server of this test's own, killed at the end."""
    base = ["tmux", "-L", f"crucible-test-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
    yield base
    subprocess.run([*base, "kill-server"], capture_output=True, check=False, timeout=10)


def _pane(tmux: list[str]) -> str:
    run = subprocess.run([*tmux, "capture-pane", "-p", "-t", "dash"], capture_output=True, text=True, timeout=10)
    return run.stdout if run.returncode == 0 else ""


@pytest.mark.parametrize(
    ("width", "height", "program"),
    [(80, 24, "crucible --config"), (200, 60, "crucible-monitor dashboard --url --token")],
)
def test_the_dashboard_in_tmux_shows_the_headline_and_a_service_row(
    watched: Scene, tmux: list[str], width: int, height: int, program: str
) -> None:
    """At 80x24 the ``crucible`` entry point finds the agent and its token through the config; at 200x60
    ``crucible-monitor dashboard`` is given both."""
    headline = httpx.get(
        f"{watched.agent.base_url}/api/v1/status", headers={"Authorization": f"Bearer {watched.token}"}
    ).json()
    if program.startswith("crucible "):
        command = [sys.executable, "-m", "crucible_monitor.tui.command", "--config", str(watched.agent.config)]
    else:
        url, token = watched.agent.base_url, watched.token
        command = [sys.executable, "-m", "crucible_monitor.cli", "dashboard", "--url", url, "--token", token]
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "dash", "-x", str(width), "-y", str(height), shlex.join(command)],
        check=True,
        timeout=10,
    )
    status = headline["status"].upper()

    def shown() -> bool:
        pane = _pane(tmux)
        rows = [line for line in pane.splitlines() if WORKER in line and "running" in line]
        return status in pane and bool(rows)

    wait_until(shown, UI_TIMEOUT, f"the headline ({status}) and a running {WORKER} row in the pane")
    pane = _pane(tmux).splitlines()
    assert pane[0].lstrip().startswith(status), pane[0]
    assert max(len(line) for line in pane) <= width
    subprocess.run([*tmux, "send-keys", "-t", "dash", "q"], check=True, timeout=10)
    wait_until(
        lambda: subprocess.run([*tmux, "has-session", "-t", "dash"], capture_output=True, timeout=10).returncode != 0,
        UI_TIMEOUT,
        "the dashboard to quit on q",
    )
