"""A real PHP-FPM (Debian's ``php8.2-fpm``) with one pool on a unix socket and its status page on.

    with run_php_fpm(tmp_path, pm="ondemand", max_children=2) as fpm:
        ... fpm.socket, fpm.docroot ...      # scripts from tests/fixtures/apps/php are in docroot

The master runs in the foreground (``-F``) with no php.ini (``-n``) and a config written into ``directory``;
``pm.status_path`` is ``/status``. As root it needs ``-R``, and then its workers run as root too. The master's log
(``<directory>/php-fpm.log``) is unbuffered, so a test can wait for its warnings.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from supervisor_fixture import wait_until

from services import binary, check_running, short_directory, started

__all__ = ["PhpFpm", "run_php_fpm"]

SCRIPTS = Path(__file__).parent.parent / "fixtures" / "apps" / "php"
_START_TIMEOUT = 20.0


@dataclass(frozen=True)
class PhpFpm:
    """A running PHP-FPM: its pool's socket and the document root holding the test scripts."""

    socket: Path
    docroot: Path
    directory: Path
    process: subprocess.Popen[bytes]

    def answers(self) -> bool:
        """True once the pool's socket accepts connections."""
        check_running(self.process, "php-fpm", self.directory / "php-fpm.log")
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.socket))
        except OSError:
            return False
        return True


@contextmanager
def run_php_fpm(
    directory: Path,
    *,
    pm: Literal["static", "dynamic", "ondemand"] = "static",
    max_children: int = 2,
    slowlog_timeout: str = "0",
) -> Iterator[PhpFpm]:
    """Start PHP-FPM with one pool named ``app``; stop it at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    docroot = directory / "www"
    shutil.copytree(SCRIPTS, docroot)
    with short_directory() as sockets:
        pool_socket = sockets / "php-fpm.sock"
        config = directory / "php-fpm.conf"
        config.write_text(
            "[global]\n"
            f"pid = {directory / 'php-fpm.pid'}\n"
            f"error_log = {directory / 'php-fpm.log'}\n"
            "daemonize = no\n"
            "log_buffering = no\n"
            "[app]\n"
            f"listen = {pool_socket}\n"
            f"pm = {pm}\n"
            f"pm.max_children = {max_children}\n"
            + ("pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 1\n" if pm == "dynamic" else "")
            + "pm.status_path = /status\n"
            f"slowlog = {directory / 'slow.log'}\n"
            f"request_slowlog_timeout = {slowlog_timeout}\n",
            encoding="utf-8",
        )
        as_root = ["-R"] if os.geteuid() == 0 else []
        argv = [binary("php-fpm8.2"), "-n", "-F", "-y", str(config), *as_root]
        with started(argv, directory / "php-fpm.out") as process:
            fpm = PhpFpm(pool_socket, docroot, directory, process)
            wait_until(fpm.answers, _START_TIMEOUT, "php-fpm to listen")
            yield fpm
