"""The dashboard's cost: its CPU at a 1 s refresh in a real terminal (tmux), the agent's extra CPU while it watches,
and the first paint (the headline on screen) after the agent answers.

    python benchmarks/bench_dashboard.py [--seconds 60]     # prints JSON

The agent runs the default collectors at a 1 s interval; CPU is read from each process's /proc/<pid>/stat, as a
share of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from bench_agent import _cpu_seconds, _stop
from daemons import free_port

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.app import build_app

__all__ = ["run"]


def _agent(tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    config = tmp / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {tmp / 'data'}\n  collect_interval: 1s\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling for the agent to answer
    token = (tmp / "data" / "api_token").read_text(encoding="utf-8").strip()
    return process, url, token


def _share(pid: int, seconds: float) -> float:
    """The share of one core ``pid`` used over the next ``seconds``."""
    before, start = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)  # the measurement window
    return (_cpu_seconds(pid) - before) / (time.monotonic() - start)


def _pane_pid(tmux: list[str]) -> int:
    out = subprocess.run([*tmux, "list-panes", "-t", "dash", "-F", "#{pane_pid}"], capture_output=True, text=True)
    return int(out.stdout.split()[0])


async def _first_paint(url: str, token: str) -> float:
    """Seconds from the app's start to the headline drawn from the agent's answer."""
    remote = RemoteMonitor(url, token)
    app = build_app(remote, url, close=remote.aclose)
    start = time.monotonic()
    async with app.run_test(size=(120, 36)) as pilot:
        while app.ctx.conn.data is None:
            await pilot.pause(0.01)
        await pilot.pause()
        return time.monotonic() - start


def run(seconds: float = 60.0) -> dict[str, float]:
    """Measure; the agent alone, then with the dashboard refreshing every second."""
    with tempfile.TemporaryDirectory() as tmp:
        agent, url, token = _agent(Path(tmp))
        tmux = ["tmux", "-L", f"bench-{uuid.uuid4().hex[:8]}", "-f", "/dev/null"]
        try:
            time.sleep(10)  # let the agent's start-up work settle before measuring it alone
            alone = _share(agent.pid, seconds)
            command = [sys.executable, "-m", "crucible_monitor.cli", "dashboard", "--url", url, "--token", token]
            command += ["--refresh", "1"]
            subprocess.run(
                [*tmux, "new-session", "-d", "-s", "dash", "-x", "160", "-y", "48", shlex.join(command)], check=True
            )
            time.sleep(5)  # start-up of the dashboard is not its steady cost
            dashboard = _pane_pid(tmux)
            before = (_cpu_seconds(agent.pid), _cpu_seconds(dashboard), time.monotonic())
            time.sleep(seconds)  # the measurement window
            elapsed = time.monotonic() - before[2]
            watched = (_cpu_seconds(agent.pid) - before[0]) / elapsed
            ui = (_cpu_seconds(dashboard) - before[1]) / elapsed
            paint = asyncio.run(_first_paint(url, token))
        finally:
            subprocess.run([*tmux, "kill-server"], capture_output=True)
            _stop(agent)
    return {
        "dashboard_cpu_percent": round(ui * 100, 2),
        "agent_cpu_percent_alone": round(alone * 100, 2),
        "agent_cpu_percent_watched": round(watched * 100, 2),
        "agent_extra_cpu_percent": round((watched - alone) * 100, 2),
        "first_paint_seconds": round(paint, 3),
        "seconds": seconds,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0)
    print(json.dumps(run(parser.parse_args().seconds), indent=2))
