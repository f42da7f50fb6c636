"""CPU time of a process as the kernel counts it, for tests that burn CPU (the ``burn_cpu`` fixture)."""

from __future__ import annotations

import time

DEADLINE = 10.0


def cpu_ticks(pid: int) -> int:
    """User plus system clock ticks ``pid`` has used (``/proc/PID/stat`` fields 14 and 15)."""
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def wait_for_ticks(pid: int, more_than: int) -> int:
    """Wait (bounded) until ``pid`` has used more than ``more_than`` clock ticks of CPU; the ticks it has."""
    deadline = time.monotonic() + DEADLINE
    while (ticks := cpu_ticks(pid)) <= more_than:
        assert time.monotonic() < deadline, f"pid {pid} did not run"
        time.sleep(0.01)  # poll without spinning: a busy wait would compete with the burner
    return ticks
