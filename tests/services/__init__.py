"""Real services for tests, started as plain child processes in temporary directories (never through systemd).

Each module starts one Debian-packaged server on loopback or a unix socket, waits until it answers, and stops it
at the end: :mod:`services.mariadb`, :mod:`services.redis_server`, :mod:`services.caddy`, :mod:`services.php_fpm`.
They need the packages ``.ci/run`` installs::

    apt-get install -y --no-install-recommends mariadb-server redis-server caddy php8.2-fpm

This module holds what they share: finding a binary, short socket directories, starting and stopping a process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["APT_PACKAGES", "binary", "check_running", "short_directory", "started", "stop"]

APT_PACKAGES = "mariadb-server redis-server caddy php8.2-fpm"
_STOP_TIMEOUT = 20.0
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def binary(name: str) -> str:
    """The path of a server binary, looking in the sbin directories too (they are not on every user's PATH).

    Raises:
        RuntimeError: it is not installed; the message gives the apt line.
    """
    found = shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN]))
    if found is None:
        raise RuntimeError(f"{name} is not installed: apt-get install -y --no-install-recommends {APT_PACKAGES}")
    return found


@contextmanager
def short_directory() -> Iterator[Path]:
    """A fresh directory with a short path, for unix sockets (AF_UNIX paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="cm-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def refusing_socket() -> Iterator[Path]:
    """A unix socket path that refuses connections: bound, never listened on, closed."""
    with short_directory() as directory:
        path = directory / "pool.sock"
        with socket.socket(socket.AF_UNIX) as closed:
            closed.bind(str(path))
        yield path


@contextmanager
def started(
    argv: Sequence[str], output: Path, *, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running as a child process with stdout and stderr in ``output``; stopped on exit."""
    with output.open("wb") as handle:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time; idempotent."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)


def check_running(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    """Fail at once, with the log's end, when a server exited instead of starting.

    Raises:
        RuntimeError: the process has exited.
    """
    if process.poll() is not None:
        tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{name} exited with status {process.returncode}:\n{tail}")
