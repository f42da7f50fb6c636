"""The agent as a process: time from start to a healthy /api/v1/health, and its RSS and CPU over a run.

Starts `crucible-monitor serve` on a free port with a temporary data directory and the default collectors at the
default 10 s interval, then reads the process's own /proc/<pid>/stat and statm.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from daemons import free_port

__all__ = ["run"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _start(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = tmp / "monitor.yaml"
    config.write_text(f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {tmp / 'data'}\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, f"http://127.0.0.1:{port}"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text(encoding="ascii").split()[1]) * _PAGE


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def startup_seconds(runs: int = 5) -> dict[str, float]:
    """Seconds from exec to the first 200 from /api/v1/health, median and worst of ``runs``."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            process, url = _start(Path(tmp))
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.005)
            times.append(time.perf_counter() - started)
            _stop(process)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}


def steady_state(minutes: float) -> dict[str, float]:
    """RSS and CPU of an agent collecting at 10 s for ``minutes`` (after a 30 s warm-up)."""
    with tempfile.TemporaryDirectory() as tmp:
        process, url = _start(Path(tmp))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        time.sleep(30)  # warm-up: first collections, imports of lazily loaded modules
        cpu_before, wall_before = _cpu_seconds(process.pid), time.monotonic()
        peak = 0
        end = wall_before + minutes * 60
        while time.monotonic() < end:
            peak = max(peak, _rss_bytes(process.pid))
            time.sleep(1)
        cpu = _cpu_seconds(process.pid) - cpu_before
        wall = time.monotonic() - wall_before
        final = _rss_bytes(process.pid)
        _stop(process)
    return {
        "minutes": minutes,
        "cpu_percent_of_one_core": round(100 * cpu / wall, 3),
        "rss_peak_mb": round(peak / 2**20, 1),
        "rss_end_mb": round(final / 2**20, 1),
    }


def run(minutes: float = 10.0) -> dict[str, object]:
    """Start-up time and a steady-state run of ``minutes``."""
    return {"startup_to_healthy": startup_seconds(), "steady_state": steady_state(minutes)}


if __name__ == "__main__":
    import json

    print(json.dumps(run(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0), indent=2))
