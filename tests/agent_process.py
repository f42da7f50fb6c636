"""A real `crucible-monitor serve` process for end-to-end tests: started with a config in a temporary directory,
ready when it logs "agent started", killed at the end."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from supervisor_fixture import free_port

__all__ = ["STARTUP_TIMEOUT", "ServedAgent", "serve_agent", "serve_command"]

STARTUP_TIMEOUT = 30.0


@dataclass
class ServedAgent:
    """A running agent: its process, config file, data directory, base URL and stderr lines."""

    process: subprocess.Popen[str]
    config: Path
    data_dir: Path
    base_url: str
    port: int
    lines: queue.Queue[str]

    def token(self) -> str:
        return (self.data_dir / "api_token").read_text(encoding="utf-8").strip()

    def wait_for_log(self, text: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """The first stderr line containing ``text``; raises queue.Empty after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if text in line:
                return line


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def serve_command(*args: str) -> list[str]:
    """The command line of ``crucible-monitor serve ARGS`` under this interpreter."""
    return [sys.executable, "-m", "crucible_monitor.cli", "serve", *args]


@contextmanager
def serve_agent(
    tmp_path: Path,
    extra_yaml: str = "",
    *,
    listen_flag: bool = False,
    config_from_env: bool = False,
    agent_yaml: str = "",
) -> Iterator[ServedAgent]:
    """Start an agent on a free port collecting every second; ``extra_yaml`` is appended to its config,
    ``agent_yaml`` to its ``agent`` section (indented by two spaces).

    With ``listen_flag`` the port is given as ``--listen`` (the config has no listen_addr); with
    ``config_from_env`` the config is named by ``CRUCIBLE_MONITOR_CONFIG`` instead of ``--config``.
    """
    data_dir = tmp_path / "data"
    config = tmp_path / "monitor.yaml"
    port = free_port()
    listen = "" if listen_flag else f"  listen_addr: 127.0.0.1:{port}\n"
    config.write_text(
        f"agent:\n{listen}  data_dir: {data_dir}\n  collect_interval: 1s\n{agent_yaml}storage:\n  fsync: false\n"
        + extra_yaml,
        encoding="utf-8",
    )
    args = [] if config_from_env else ["--config", str(config)]
    if listen_flag:
        args += ["--listen", f"127.0.0.1:{port}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if config_from_env:
        env["CRUCIBLE_MONITOR_CONFIG"] = str(config)
    process = subprocess.Popen(
        serve_command(*args),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: the Parquet worker and resource tracker go with it
    )
    assert process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(process.stderr, lines), daemon=True)
    pump.start()
    served = ServedAgent(process, config, data_dir, f"http://127.0.0.1:{port}", port, lines)
    try:
        served.wait_for_log("agent started")
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):  # children still holding its stderr would keep the pipe open
            os.killpg(process.pid, signal.SIGKILL)
        pump.join(timeout=10)  # the pipe reaches EOF once the process is gone
        process.stderr.close()
