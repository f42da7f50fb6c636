"""Daemons for the benchmarks (the agent, and for benchmarks/peers.py Debian's packages), started in the foreground,
and the CPU and memory of a process tree read from /proc."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

__all__ = ["PACKAGES", "cpu_seconds", "ensure_packages", "free_port", "memory_mb", "started", "tree"]

PACKAGES = {
    "prometheus-node-exporter": "/usr/bin/prometheus-node-exporter",
    "netdata": "/usr/sbin/netdata",
    "prometheus": "/usr/bin/promtool",
}
"""Debian package → the program of it that the benchmark runs."""
_TICKS = os.sysconf("SC_CLK_TCK")


def ensure_packages() -> list[str]:
    """Install the peers' Debian packages that are missing (``apt-get``); returns those installed.

    Raises:
        SystemExit: a package is missing and cannot be installed (not root, no apt-get, the install failed).
    """
    missing = [package for package, path in PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return []
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(f"missing {', '.join(missing)}: run as root on Debian, or apt-get install them first")
    install = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"apt-get install {' '.join(missing)} failed: {done.stderr.strip()[-500:]}")
    return missing


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()


def tree(root: int) -> list[int]:
    """``root`` and every live process descending from it."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError):
                continue  # gone meanwhile
    found = [root]
    for pid in found:
        found.extend(child for child, parent in parents.items() if parent == pid)
    return found


def cpu_seconds(root: int) -> float:
    """CPU time of the tree: utime + stime of every process, and cutime + cstime (the children it reaped)."""
    total = 0
    for pid in tree(root):
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return total / _TICKS


def memory_mb(root: int) -> dict[str, float]:
    """RSS and PSS of every process of the tree, summed (MiB)."""
    rss = pss = 0
    for pid in tree(root):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii")
        except OSError:
            continue
        rss += int(re.search(r"^Rss:\s+(\d+)", text, re.M)[1])  # type: ignore[index]
        pss += int(re.search(r"^Pss:\s+(\d+)", text, re.M)[1])  # type: ignore[index]
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1), "processes": len(tree(root))}


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


@contextmanager
def started(command: list[str], ready: str, **kwargs: Any) -> Iterator[subprocess.Popen[bytes]]:
    """A daemon in the foreground, in its own process group, stopped (SIGTERM, then SIGKILL) on the way out.

    Its output goes to a temporary file (a pipe nobody reads would fill and stall it); the tail of it is in the
    error when it does not come up.
    """
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True, **kwargs)
        try:
            try:
                _wait_ready(ready, process)
            except RuntimeError as exc:
                output.seek(0)
                tail = output.read().decode(errors="replace").strip()[-400:]
                raise RuntimeError(f"{command[0]}: {exc}: {tail}") from exc
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
