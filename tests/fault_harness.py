"""The fault-injection suite's harness: an agent whose collectors the test runs, and the summary's first incident.

The agent does not schedule: a test runs the collectors itself, so "within two collection intervals" is two runs.
The host's own state must not decide a test: the shorthand thresholds are off, and :func:`first_incident` passes
over what the host may show by itself (its load, pressure, swap, its own filesystems and other busy processes).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cpu_burn import cpu_ticks, wait_for_ticks
from services.caddy import Caddy

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.findings.system import PEGGED_CORES
from crucible_monitor.monitor import Monitor
from crucible_monitor.schemas import Finding, StatusSummary

_HOST_SUBJECTS = ("load", "swap", "pressure:", "filesystem:", "inodes:", "process:")


@dataclass
class Watched:
    """An agent started without its schedule, and its Monitor."""

    agent: Agent
    monitor: Monitor

    async def collect(self, *prefixes: str) -> None:
        """Run once each collector whose name starts with one of ``prefixes``."""
        names = [n for n in self.agent.collectors if n.startswith(prefixes)]
        assert names, f"no collector named {prefixes}: {sorted(self.agent.collectors)}"
        for name in names:
            await self.agent.run_collector(name)

    async def summary(self) -> StatusSummary:
        """The status summary, as ``get_system_status`` gives it."""
        return await self.monitor.status_summary()


def first_incident(summary: StatusSummary, ours: Callable[[str], bool] = lambda subject: False) -> Finding:
    """The first incident's lead, passing over host subjects that are not the scenario's (``ours``)."""
    leads = [
        f
        for f in summary.findings
        if f.caused_by is None and (ours(f.subject) or not f.subject.startswith(_HOST_SUBJECTS))
    ]
    assert leads, f"no incident: {summary.headline}"
    return leads[0]


def symptoms(summary: StatusSummary, cause: str) -> list[Finding]:
    """The findings the summary ties to ``cause``."""
    return [f for f in summary.findings if f.caused_by == cause]


def recovered(summary: StatusSummary) -> list[str]:
    """The subjects of the "recently recovered" list."""
    return [r.subject for r in summary.recovered]


def config(
    tmp_path: Path,
    *,
    system: bool | dict[str, Any] = False,
    services: bool | dict[str, Any] = False,
    alerts: dict[str, Any] | None = None,
    **collectors: Any,
) -> Config:
    """An agent's settings: only the collectors the scenario names (``system`` and ``services``: on, or their
    settings), the shorthand thresholds off unless ``alerts`` sets them."""
    quiet = {"enabled": False}
    services_off = {"enabled": False, "systemd": quiet, "supervisor": quiet}
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "faults-1", "api_token": "faults-token-0123"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {
                "system": system if isinstance(system, dict) else {"enabled": system},
                "services": services if isinstance(services, dict) else {**services_off, "enabled": services},
                **collectors,
            },
            "alerts": {"cpu_threshold": None, "memory_threshold": None, "disk_threshold": None, **(alerts or {})},
        }
    )


@asynccontextmanager
async def watching(settings: Config, *, clock: Callable[[], float] | None = None) -> AsyncIterator[Watched]:
    """A started agent (no schedule) and its Monitor; stopped at the end."""
    agent = Agent(settings, clock=clock) if clock is not None else Agent(settings)
    await agent.start(schedule=False)
    try:
        yield Watched(agent, Monitor(agent))
    finally:
        await agent.stop()


_NAMED = "import ctypes, sys\nctypes.CDLL(None).prctl(15, {name!r}.encode(), 0, 0, 0)\n"
"""Sets the process's kernel name (PR_SET_NAME), the name /proc/<pid>/stat and the summary show."""
BURNER = _NAMED.format(name="cpu-burner") + "print('ready', flush=True)\nwhile True:\n    pass\n"
GROWER = (
    _NAMED.format(name="mem-grower")
    + "kept = []\nprint('ready', flush=True)\n"
    + "for line in sys.stdin:\n    kept.append(b'x' * int(line))\n    print('grown', flush=True)\n"
)


def get(caddy: Caddy, path: str, times: int = 1) -> list[int]:
    def one(_: int) -> int:
        return httpx.get(caddy.url(path), headers={"Host": f"shop.test:{caddy.port}"}, timeout=30).status_code

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(times)))


def accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def access_lines(caddy: Caddy) -> int:
    return len(caddy.access_log.read_bytes().splitlines()) if caddy.access_log.exists() else 0


async def burn(watched: Watched, pid: int) -> None:
    """Two process snapshots a second of ``pid``'s CPU apart; skips when the machine is too busy for ``pid`` to
    peg a core (the summary then rightly names nothing)."""
    await watched.collect("processes")  # CPU is measured between two snapshots
    wait_for_ticks(pid, cpu_ticks(pid) + 100)  # a second of its own CPU
    await watched.collect("processes", "system")
    snapshot = watched.agent.latest_processes()
    cores = next((p.cpu_cores for p in snapshot.by_cpu if p.pid == pid), None) if snapshot else None
    if cores is None or cores < PEGGED_CORES:
        pytest.skip(f"this machine is busy: the burner got {cores} of a core, less than {PEGGED_CORES}")
