"""A real MariaDB server (Debian's ``mariadb-server``) in a temporary data directory.

    with run_mariadb(tmp_path) as server:
        server.execute("CREATE DATABASE shop")
        ... server.socket, server.port ...

``mariadb-install-db`` creates the data directory (``root`` without a password, no test database); ``mariadbd``
then runs in the foreground with ``--no-defaults`` (nothing from ``/etc/mysql``), listening on a unix socket and on
``127.0.0.1:<port>``, with performance_schema on. Statements of the test go through :meth:`MariaDB.execute` as
root over the socket, with PyMySQL (not through the code under test).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
from supervisor_fixture import free_port, wait_until

from services import binary, check_running, short_directory, started

__all__ = ["MariaDB", "run_mariadb"]

_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class MariaDB:
    """A running server: its unix socket, its TCP port on 127.0.0.1 and its data directory."""

    socket: Path
    port: int
    datadir: Path
    process: subprocess.Popen[bytes]

    def connect(self, database: str | None = None) -> pymysql.connections.Connection[Any]:
        """A root connection over the socket (autocommit); close it."""
        return pymysql.connect(unix_socket=str(self.socket), user="root", database=database, autocommit=True)

    def execute(self, sql: str, params: Sequence[object] = (), *, database: str | None = None) -> list[Any]:
        """Run one statement as root and return its rows."""
        with self.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def answers(self) -> bool:
        """True once the server accepts connections."""
        check_running(self.process, "mariadbd", self.datadir.parent / "mariadbd.log")
        if not self.socket.exists():  # PyMySQL would leak its socket on this failure
            return False
        try:
            self.execute("SELECT 1")
        except pymysql.err.OperationalError:
            return False
        return True


@contextmanager
def run_mariadb(directory: Path, extra_args: Sequence[str] = ()) -> Iterator[MariaDB]:
    """Install a data directory under ``directory``, start ``mariadbd`` on it, stop it at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    datadir = directory / "data"
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *as_root,
        ],
        check=True,
        capture_output=True,
    )
    with short_directory() as sockets:
        socket = sockets / "mysqld.sock"
        port = free_port()
        argv = [
            binary("mariadbd"),
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={socket}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            f"--pid-file={directory / 'mariadbd.pid'}",
            f"--log-error={directory / 'mariadbd.log'}",
            "--performance-schema=ON",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
            "--skip-log-bin",
            *as_root,
            *extra_args,
        ]
        with started(argv, directory / "mariadbd.out") as process:
            server = MariaDB(socket, port, datadir, process)
            wait_until(server.answers, _START_TIMEOUT, "mariadbd to accept connections")
            yield server
