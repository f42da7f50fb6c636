"""Reliability runs of the real agent, written to docs/reliability.md.

    python benchmarks/reliability.py                # 20 SIGKILLs, and 2 minutes of full disk (needs root for a tmpfs)
    python benchmarks/reliability.py --kills 50 --full-disk 300

1. **SIGKILL loop**: ``crucible-monitor serve`` (1 s collection, flush every 2 s) is killed with SIGKILL (its whole
   process group: the Parquet worker too) at a random moment, ``--kills`` times, and started again. Before each kill
   the served points of ``memory_used_bytes`` are read over the API (what the agent acknowledged); at the end every
   one must still be there exactly once, every Parquet file must open, no process of an earlier run may be left, and
   the time from start to a healthy ``/api/v1/health`` is measured.
2. **Full disk**: the data directory on a 16 MiB tmpfs filled to the last byte for ``--full-disk`` seconds, then freed:
   the log lines and events it caused, the samples held in memory, and whether they were written once space returned.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "reliability.md"
TOKEN = "reliability-token-0123456789"
METRIC = "memory_used_bytes"


@dataclass
class Agent:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(directory: Path, data_dir: Path, port: int) -> Path:
    config = directory / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {data_dir}\n  collect_interval: 1s\n"
        f"  api_token: {TOKEN}\nstorage:\n  flush_interval: 2s\ncollectors:\n  services:\n    enabled: false\n",
        encoding="utf-8",
    )
    return config


@contextmanager
def _serve(config: Path, port: int, log: Path) -> Iterator[tuple[Agent, float]]:
    """The agent started; yields it and the seconds it took to be healthy. SIGKILLs its group at the end if alive."""
    started = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    agent = Agent(process, f"http://127.0.0.1:{port}", log)
    try:
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{agent.url}/api/v1/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.05)  # polling a condition, bounded by the assert above (the agent exits or answers)
        yield agent, time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _served(agent: Agent, since: float) -> list[float]:
    """The timestamps of the points the agent serves since ``since`` (one raw sample per bucket of ≤ 50 ms)."""
    step = max(0.05, (time.time() - since) / 10_000)
    history = agent.get(
        "/api/v1/metrics/history", metric=METRIC, start=f"{since}", step=f"{step * 1000:.0f}ms", agg="last"
    )
    return sorted(ts for s in history["series"] for ts, _ in s["points"])


def _leftovers(data_dir: Path) -> list[int]:
    """Processes whose command line or open files still name ``data_dir`` (an earlier run's worker, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if str(data_dir) in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
    return found


def kill_loop(kills: int, seed: int = 20261202) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="crucible-reliability-") as tmp:
        directory = Path(tmp)
        data_dir = directory / "data"
        port = _free_port()
        config = _config(directory, data_dir, port)
        log = directory / "agent.log"
        acknowledged: set[float] = set()
        began = time.time() - 5
        startups, leftovers = [], 0
        for _ in range(kills):
            with _serve(config, port, log) as (agent, took):
                startups.append(took)
                time.sleep(rng.uniform(1.0, 4.0))  # the moment of the kill: the point of the run, not synchronisation
                acknowledged.update(_served(agent, began))
            leftovers += len(_leftovers(data_dir))
        with _serve(config, port, log) as (agent, took):
            startups.append(took)
            after = _served(agent, began)
        unreadable = 0
        for path in data_dir.rglob("*.parquet"):
            try:
                pq.read_table(path)
            except Exception:  # counted, that is the measurement
                unreadable += 1
        return {
            "kills": kills,
            "acknowledged_points": len(acknowledged),
            "lost": len(acknowledged - set(after)),
            "duplicates": len(after) - len(set(after)),
            "unreadable_parquet_files": unreadable,
            "parquet_files": sum(1 for _ in data_dir.rglob("*.parquet")),
            "leftover_processes": leftovers,
            "startup_seconds": {"median": round(statistics.median(startups), 2), "max": round(max(startups), 2)},
            "tracebacks_in_log": log.read_text(errors="replace").count("Traceback"),
        }


def full_disk(seconds: float) -> dict[str, Any] | None:
    if os.geteuid() != 0:
        return None
    with tempfile.TemporaryDirectory(prefix="crucible-full-") as tmp:
        directory = Path(tmp)
        mount = directory / "small"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]).returncode != 0:
            return None
        try:
            port = _free_port()
            config = _config(directory, mount / "data", port)
            log = directory / "agent.log"
            began = time.time() - 5
            with _serve(config, port, log) as (agent, _):
                time.sleep(3)  # a few samples on disk before it fills
                filler = mount / "filler"
                with filler.open("wb") as handle, contextlib.suppress(OSError):
                    while True:
                        handle.write(b"\0" * 65536)
                        handle.flush()
                lines_before = len(log.read_text(errors="replace").splitlines())
                time.sleep(seconds)  # the length of the outage being measured
                status = agent.get("/api/v1/status")
                held = next((f["problem"] for f in status["findings"] if f["subject"] == "storage"), None)
                lines_during = len(log.read_text(errors="replace").splitlines()) - lines_before
                filler.unlink()
                time.sleep(5)  # space is back: the held samples are written at the next collection
                listed = agent.get("/api/v1/events", kind="agent", since="1h")
                events = listed["items"] if isinstance(listed, dict) else listed
                written = [e["message"] for e in events if "disk was full" in e["message"]]
                points = len(_served(agent, began))
            return {
                "seconds": seconds,
                "log_lines_during": lines_during,
                "status_finding": held,
                "events_after": written,
                "points_served_after": points,
                "tracebacks_in_log": log.read_text(errors="replace").count("Traceback"),
            }
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def render(results: dict[str, Any], command: str) -> str:
    kill, disk = results["kill_loop"], results["full_disk"]
    lines = [
        "# Reliability",
        "",
        f"Measured by `{command}` on {results['machine']} ({results['date']}).",
        "",
        "## SIGKILL loop",
        "",
        "`crucible-monitor serve` (1 s collection, WAL flushed to Parquet every 2 s) killed with SIGKILL, its whole",
        f"process group, at a random moment {kill['kills']} times, and started again each time.",
        "",
        "| Measure | Result |",
        "|---|---|",
        f"| Points the API served before a kill (acknowledged) | {kill['acknowledged_points']:,} |",
        f"| Of them missing after the last restart | {kill['lost']} |",
        f"| Duplicate points | {kill['duplicates']} |",
        f"| Parquet files / unreadable | {kill['parquet_files']} / {kill['unreadable_parquet_files']} |",
        f"| Processes of a killed run still alive | {kill['leftover_processes']} |",
        "| Start to healthy (median / max) | "
        f"{kill['startup_seconds']['median']} s / {kill['startup_seconds']['max']} s |",
        f"| Tracebacks in the log | {kill['tracebacks_in_log']} |",
        "",
        "## Full disk",
        "",
    ]
    if disk is None:
        lines += ["Not run: it mounts a tmpfs, which needs root.", ""]
    else:
        lines += [
            f"The data directory on a 16 MiB tmpfs filled to the last byte for {disk['seconds']:g} s, then freed.",
            "",
            "| Measure | Result |",
            "|---|---|",
            f"| Log lines during the outage | {disk['log_lines_during']} |",
            f"| The status summary during it | {disk['status_finding']} |",
            f"| Events once space returned | {'; '.join(disk['events_after']) or 'none'} |",
            f"| Points served after (the held ones written) | {disk['points_served_after']} |",
            f"| Tracebacks in the log | {disk['tracebacks_in_log']} |",
            "",
        ]
    lines += ["Raw results:", "", "```json", json.dumps(results, indent=2), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--full-disk", type=float, default=120.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    import platform

    results = {
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, Linux {platform.release()}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "kill_loop": kill_loop(args.kills),
        "full_disk": full_disk(args.full_disk),
    }
    command = "python benchmarks/reliability.py" + (" " + " ".join(argv or sys.argv[1:])).rstrip()
    DOC.write_text(render(results, command.strip()), encoding="utf-8")
    print(f"wrote {DOC}")
    return 1 if results["kill_loop"]["lost"] or results["kill_loop"]["duplicates"] else 0


if __name__ == "__main__":
    sys.exit(main())
