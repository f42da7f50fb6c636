"""SIGKILLs of the real agent on an accelerated clock, aimed at collection, flush and maintenance (compaction,
rollups, retention), and what survives them: shared by ``tests/storage/test_kill_accelerated.py`` (in CI) and
``benchmarks/reliability.py`` (the figures of ``docs/reliability.md``).

Each round starts ``tests/accelerated_agent.py`` (``crucible-monitor serve`` on a clock 60× real time, moved a few
hours forward first, as after an outage), reads the points the API serves for this round (acknowledged), waits a
random moment, then for the round's target phase to be running, and SIGKILLs the agent's main process only: its
Parquet worker must die with it. After the last round the agent is started once more, left to finish one
maintenance and stopped cleanly, and the data directory is read file by file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
from supervisor_fixture import free_port

from crucible_monitor.storage.files import live_raw_files
from crucible_monitor.storage.parquet import read_table

HARNESS = Path(__file__).with_name("accelerated_agent.py")
TOKEN = "kill-loop-token-0123456789abcdef"
METRIC = "memory_used_bytes"
SPEED = 60.0
TARGETS = ("collect", "flush", "maintain", "any")
RAW_RETENTION_DAYS = 2
DAY = 86400.0


def write_config(directory: Path, port: int) -> Path:
    """10 s collection of the system collectors, a flush every accelerated minute, retention of a few days."""
    config = directory / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {directory / 'data'}\n  collect_interval: 10s\n"
        f"  api_token: {TOKEN}\n  data_retention: 6d\n"
        f"storage:\n  flush_interval: 1m\n  raw_retention: {RAW_RETENTION_DAYS}d\n  minute_retention: 4d\n"
        "collectors:\n  services:\n    enabled: false\nanalysis:\n  enabled: false\n",
        encoding="utf-8",
    )
    return config


def wait_for(predicate: Any, seconds: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)  # polling a condition with a deadline
    raise TimeoutError(f"{what}: not within {seconds:g} s")


@dataclass
class Served:
    """A started accelerated agent."""

    process: subprocess.Popen[bytes]
    url: str
    timeline: Path
    phases: Path

    def now(self) -> float:
        """The agent's clock, computed from its timeline file."""
        saved = json.loads(self.timeline.read_text(encoding="utf-8"))
        return float(saved["origin"] + (time.time() - saved["real_origin"]) * saved["speed"] + saved["skipped"])

    def points(self, start: float, end: float) -> list[float]:
        """Timestamps of the points the API serves for ``METRIC`` between ``start`` and ``end``."""
        response = httpx.get(
            f"{self.url}/api/v1/metrics/history",
            params={"metric": METRIC, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "10s", "agg": "last"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        response.raise_for_status()
        return [ts for s in response.json()["series"] for ts, _ in s["points"]]


def _session_processes(session: int) -> list[int]:
    """Live processes of a session (the agent is its session's leader: its workers and resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == session and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@contextmanager
def serve(config: Path, url: str, log: Path, skip: float) -> Iterator[Served]:
    """The accelerated agent of ``config``, healthy at ``url``; SIGKILLs its session at the end if anything of it is
    still alive."""
    directory = config.parent
    timeline, phases = directory / "timeline.json", directory / "phases"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(HARNESS), "--config", str(config), "--speed", str(SPEED)]
            + ["--timeline", str(timeline), "--phases", str(phases), "--skip", str(skip)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process, url, timeline, phases)

    def healthy() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
        return False

    try:
        wait_for(healthy, 60, "the agent answering /api/v1/health", interval=0.05)
        yield served
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _inside(phases: Path, target: str) -> str | None:
    """The jobs running now if ``target`` is among them (``any``: if any runs)."""
    running = phases.read_text(encoding="utf-8")
    if target == "any":
        return running or None
    return running if target in running.split(",") else None


@dataclass
class KillLoop:
    """What the rounds saw; :meth:`result` adds what the data directory holds."""

    kills: int = 0
    by_phase: Counter[str] = field(default_factory=Counter)
    acknowledged: set[float] = field(default_factory=set)
    orphans: int = 0
    startups: list[float] = field(default_factory=list)


def run(directory: Path, kills: int, seed: int = 20261203) -> dict[str, Any]:
    """``kills`` rounds, then a clean start and stop; the figures of the run."""
    rng = random.Random(seed)
    port = free_port()
    config, url = write_config(directory, port), f"http://127.0.0.1:{port}"
    log = directory / "agent.log"
    loop = KillLoop()
    for round_ in range(kills):
        target = TARGETS[round_ % len(TARGETS)]
        started = time.monotonic()
        with serve(config, url, log, skip=rng.uniform(1, 4) * 3600) as agent:
            loop.startups.append(time.monotonic() - started)
            began = agent.now() - 60
            # a random moment (the point of the run, not synchronisation); maintenance first runs an accelerated
            # minute after the start, then hourly: aim early for it
            time.sleep(rng.uniform(0.0, 0.4) if target == "maintain" else rng.uniform(0.2, 1.5))
            loop.acknowledged.update(agent.points(began, agent.now() + 10))
            phase = wait_for(
                functools.partial(_inside, agent.phases, target), 90, f"round {round_}: inside {target}", 0.002
            )
            os.kill(agent.process.pid, signal.SIGKILL)
            agent.process.wait()
            loop.kills += 1
            for name in phase.split(","):
                loop.by_phase[name] += 1
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not _session_processes(agent.process.pid), 10, "the workers dying with the agent")
            loop.orphans += len(_session_processes(agent.process.pid))
    with serve(config, url, log, skip=0) as agent:
        # one maintenance left to finish: it compacts, rolls up and expires what the killed ones left
        wait_for(functools.partial(_inside, agent.phases, "maintain"), 120, "the last maintenance starting")
        wait_for(lambda: _inside(agent.phases, "maintain") is None, 300, "the last maintenance finishing")
        final_now = agent.now()
        agent.process.send_signal(signal.SIGTERM)
        assert agent.process.wait(timeout=60) == 0, log.read_text(errors="replace")[-3000:]
    return loop_result(loop, directory / "data" / "metrics", final_now, log)


def loop_result(loop: KillLoop, metrics: Path, now: float, log: Path) -> dict[str, Any]:
    unreadable, files = 0, list(metrics.rglob("*.parquet"))
    for path in files:
        try:
            pq.read_table(path)
        except Exception:  # counted: that is the measurement
            unreadable += 1
    rows: Counter[tuple[str, str, int]] = Counter()
    raw_days = sorted(p for p in (metrics / "raw").iterdir() if p.is_dir())
    for day in raw_days:
        for path in live_raw_files(day)[0]:
            table = read_table(path)
            ts = table.column("ts").cast("int64").to_pylist()
            rows.update(zip(table.column("metric").to_pylist(), table.column("labels").to_pylist(), ts, strict=True))
    kept = {ts / 1000 for (metric, _, ts) in rows if metric == METRIC}
    horizon = (now // DAY - RAW_RETENTION_DAYS) * DAY  # whole days older than the raw retention may be gone
    within = {ts for ts in loop.acknowledged if ts >= horizon}
    return {
        "kills": loop.kills,
        "kills_by_phase": dict(sorted(loop.by_phase.items())),
        "accelerated_days": round((now - min(loop.acknowledged, default=now)) / DAY, 1),
        "acknowledged_points": len(loop.acknowledged),
        "acknowledged_within_raw_retention": len(within),
        "lost": len(within - kept),
        "duplicates": sum(n - 1 for n in rows.values() if n > 1),
        "raw_rows": sum(rows.values()),
        "raw_days_kept": len(raw_days),
        "rollup_files": sum(1 for _ in metrics.glob("1m/*.parquet")) + sum(1 for _ in metrics.glob("1h/*.parquet")),
        "parquet_files": len(files),
        "unreadable_parquet_files": unreadable,
        "orphan_processes": loop.orphans,
        "startup_seconds_median": round(sorted(loop.startups)[len(loop.startups) // 2], 2) if loop.startups else 0,
        **_tracebacks(log.read_text(errors="replace")),
    }


_CUT_SHORT = "EOFError: Ran out of input"
"""How a Parquet worker that was being spawned when the agent was killed ends: its pipe from the parent is closed
before it read its first job (multiprocessing prints that, not the agent)."""


def _tracebacks(log: str) -> dict[str, int]:
    """Tracebacks in the log: the agent's own, and the worker starts a kill cut short."""
    blocks = log.split("Traceback (most recent call last):")[1:]
    cut_short = sum(1 for b in blocks if "spawn_main" in b and _CUT_SHORT in b.split("Traceback")[0])
    return {"tracebacks_in_log": len(blocks) - cut_short, "worker_starts_cut_short": cut_short}
