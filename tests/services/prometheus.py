"""A real Prometheus (Debian's ``prometheus``) scraping given targets every second, on 127.0.0.1.

    with run_prometheus(tmp_path, ["127.0.0.1:9100"], token_file=path) as prom:
        prom.query("up")       # the instant query API's result list

Its TSDB, config and log are inside ``directory``; the scrape sends ``Authorization: Bearer <token_file>``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from supervisor_fixture import free_port, wait_until

from services import binary, check_running, started

__all__ = ["Prometheus", "run_prometheus"]

_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus: its HTTP API."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    def answers(self) -> bool:
        """True once its readiness endpoint says so."""
        check_running(self.process, "prometheus", self.directory / "prometheus.log")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result of an instant query."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/query", params={"query": promql}, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health and last error."""
        response = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/targets", timeout=10)
        response.raise_for_status()
        active: list[dict[str, Any]] = response.json()["data"]["activeTargets"]
        return active


@contextmanager
def run_prometheus(
    directory: Path, targets: Sequence[str], *, token_file: Path, job: str = "crucible"
) -> Iterator[Prometheus]:
    """Start Prometheus scraping ``targets`` (host:port) at ``/metrics`` every second; stop it at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "prometheus.yml"
    listed = ", ".join(f"'{t}'" for t in targets)
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: {job}\n"
        f"    authorization:\n      credentials_file: {token_file}\n"
        f"    static_configs:\n      - targets: [{listed}]\n",
        encoding="utf-8",
    )
    argv = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with started(argv, directory / "prometheus.log") as process:
        prometheus = Prometheus(port, directory, process)
        wait_until(prometheus.answers, _START_TIMEOUT, "prometheus to be ready")
        yield prometheus
