"""A real supervisord for tests: started in a temporary directory, driven over its unix socket, stopped cleanly.

Usage::

    with run_supervisord(tmp_path, {"sleeper": {"command": "/bin/sleep 1000"}}) as sv:
        with sv.rpc() as rpc:
            rpc.supervisor.stopProcess("sleeper")

supervisord comes from the ``supervisor`` package (``sys.executable -m supervisor.supervisord``), runs in the
foreground as a child of the test, logs to ``<tmp_path>/supervisord.log`` and answers XML-RPC on a unix socket.
The fixture talks to it with supervisor's own ``SupervisorTransport``, not with the code under test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from supervisor.xmlrpc import SupervisorTransport

__all__ = ["Supervisord", "free_port", "run_supervisord", "wait_until"]

_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 20.0
_POLL_INTERVAL = 0.05
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(_POLL_INTERVAL)  # poll interval of a bounded wait, not synchronisation


@dataclass
class Supervisord:
    """A running supervisord: its files, its socket URL and the means to talk to it and stop it."""

    directory: Path
    socket_path: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The URL a ``SupervisorConfig`` uses for this supervisord."""
        return f"unix://{self.socket_path}"

    @contextmanager
    def rpc(self) -> Iterator[xmlrpc.client.ServerProxy]:
        """An XML-RPC proxy on the unix socket, closed on exit."""
        transport = SupervisorTransport(self.username, self.password, self.url)
        with xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport) as proxy:
            yield proxy

    def answers(self) -> bool:
        """True when supervisord is up and its XML-RPC interface says RUNNING."""
        if self.process.poll() is not None:
            raise RuntimeError(f"supervisord exited with {self.process.returncode}; see {self.log_path}")
        if not self.socket_path.exists():
            return False
        try:
            with self.rpc() as rpc:
                state = cast(dict[str, Any], rpc.supervisor.getState())
        except (OSError, xmlrpc.client.Error):
            return False
        return bool(state["statename"] == "RUNNING")

    def process_info(self, name: str) -> dict[str, Any]:
        """``supervisor.getProcessInfo(name)``."""
        with self.rpc() as rpc:
            return cast(dict[str, Any], rpc.supervisor.getProcessInfo(name))

    def stop(self) -> None:
        """Stop supervisord (SIGTERM: it stops its programs and removes its socket) and wait for it. Idempotent."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(_STOP_TIMEOUT)


def _config_text(
    directory: Path,
    socket_path: Path,
    programs: Mapping[str, Mapping[str, str]],
    username: str | None,
    password: str | None,
    http_port: int | None,
) -> str:
    credentials = [f"username = {username}", f"password = {password}"] if username and password else []
    lines = ["[unix_http_server]", f"file = {socket_path}", "chmod = 0700", *credentials]
    if http_port is not None:
        lines += ["", "[inet_http_server]", f"port = 127.0.0.1:{http_port}", *credentials]
    lines += [
        "",
        "[supervisord]",
        f"logfile = {directory / 'supervisord.log'}",
        f"pidfile = {directory / 'supervisord.pid'}",
        f"childlogdir = {directory}",
        "loglevel = info",
        "nodaemon = true",
        "minfds = 64",
        "minprocs = 32",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for name, options in programs.items():
        lines += ["", f"[program:{name}]"]
        lines += [f"{key} = {value}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


@contextmanager
def run_supervisord(
    tmp_path: Path,
    programs: Mapping[str, Mapping[str, str]],
    *,
    username: str | None = None,
    password: str | None = None,
    http_port: int | None = None,
    timeout: float = _START_TIMEOUT,
) -> Iterator[Supervisord]:
    """Start supervisord with ``programs`` (section name → options), wait until it answers, stop it at the end.

    ``username`` and ``password`` protect its servers with basic auth; ``http_port`` also serves XML-RPC on
    ``http://127.0.0.1:<http_port>``.

    Config, logs and pid file go to ``tmp_path``; so does the socket unless that path would be too long for
    AF_UNIX, in which case it goes to a short temporary directory removed at the end.
    """
    socket_dir = tmp_path
    short_dir: str | None = None
    if len(str(tmp_path / "supervisor.sock")) > _MAX_SOCKET_PATH:
        short_dir = tempfile.mkdtemp(prefix="sv")
        socket_dir = Path(short_dir)
    socket_path = socket_dir / "supervisor.sock"
    config_path = tmp_path / "supervisord.conf"
    config_path.write_text(
        _config_text(tmp_path, socket_path, programs, username, password, http_port), encoding="utf-8"
    )
    with (tmp_path / "supervisord.out").open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    supervisord = Supervisord(
        directory=tmp_path,
        socket_path=socket_path,
        config_path=config_path,
        log_path=tmp_path / "supervisord.log",
        process=process,
        username=username,
        password=password,
    )
    try:
        wait_until(supervisord.answers, timeout, "supervisord to answer XML-RPC")
        yield supervisord
    finally:
        supervisord.stop()
        if short_dir is not None:
            if socket_path.exists():
                socket_path.unlink()
            os.rmdir(short_dir)
