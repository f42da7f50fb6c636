"""A real Caddy (Debian's ``caddy``) serving one site on 127.0.0.1, with Caddy's JSON access log.

    with run_caddy(tmp_path, ["shop.test", "api.test"], "respond /health 200") as caddy:
        httpx.get(caddy.url("/health"), headers={"Host": f"shop.test:{caddy.port}"})
        ... caddy.access_log ...

The site answers plain HTTP for each host name on one free port; the access log is ``<directory>/access.log``.
The admin API is off and Caddy's own data and config directories are inside ``directory``.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from supervisor_fixture import free_port, wait_until

from services import binary, check_running, started

__all__ = ["Caddy", "run_caddy"]

_START_TIMEOUT = 20.0


@dataclass(frozen=True)
class Caddy:
    """A running Caddy: its port and access log."""

    port: int
    access_log: Path
    directory: Path
    process: subprocess.Popen[bytes]

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:<port><path>`` (send ``Host: <name>:<port>`` to pick one of the site's names)."""
        return f"http://127.0.0.1:{self.port}{path}"

    def answers(self) -> bool:
        """True once the port accepts connections."""
        check_running(self.process, "caddy", self.directory / "caddy.out")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False


@contextmanager
def run_caddy(directory: Path, hosts: Sequence[str], body: str) -> Iterator[Caddy]:
    """Start Caddy with one site for ``hosts`` whose directives are ``body``; stop it at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    access_log = directory / "access.log"
    addresses = ", ".join(f"http://{host}:{port}" for host in hosts)
    caddyfile = directory / "Caddyfile"
    caddyfile.write_text(
        "{\n"
        "\tadmin off\n"
        "\tauto_https off\n"
        f"\tstorage file_system {directory / 'data'}\n"
        "}\n"
        f"{addresses} {{\n"
        f"\tlog {{\n\t\toutput file {access_log}\n\t\tformat json\n\t}}\n"
        f"{body}\n"
        "}\n",
        encoding="utf-8",
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory / "data"),
        "XDG_CONFIG_HOME": str(directory / "config"),
    }
    argv = [binary("caddy"), "run", "--config", str(caddyfile), "--adapter", "caddyfile"]
    with started(argv, directory / "caddy.out", env=env) as process:
        caddy = Caddy(port, access_log, directory, process)
        wait_until(caddy.answers, _START_TIMEOUT, "caddy to listen")
        yield caddy
