"""A real Redis server (Debian's ``redis-server``) on a unix socket only, without persistence.

with run_redis(tmp_path) as server:
    client = server.client()     # redis-py, for the test's own writes
    ... server.url ...           # what a config names: unix:///tmp/cm-.../redis.sock
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from supervisor_fixture import wait_until

from services import binary, check_running, short_directory, started

__all__ = ["RedisServer", "run_redis"]

_START_TIMEOUT = 20.0


@dataclass(frozen=True)
class RedisServer:
    """A running server and its socket."""

    socket: Path
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        """The server as a redis URL (database 0)."""
        return f"unix://{self.socket}?db=0"

    def client(self) -> redis.Redis:
        """A redis-py client for the test's own reads and writes; close it."""
        return redis.Redis(unix_socket_path=str(self.socket))

    def answers(self) -> bool:
        """True once the server answers PING."""
        check_running(self.process, "redis-server", self.directory / "redis.out")
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False


@contextmanager
def run_redis(directory: Path) -> Iterator[RedisServer]:
    """Start ``redis-server`` with its socket in a short directory; stop it at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    with short_directory() as sockets:
        socket = sockets / "redis.sock"
        argv = [
            binary("redis-server"),
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ]
        with started(argv, directory / "redis.out") as process:
            server = RedisServer(socket, directory, process)
            wait_until(server.answers, _START_TIMEOUT, "redis-server to answer PING")
            yield server
