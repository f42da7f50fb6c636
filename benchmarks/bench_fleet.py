"""The fleet under load: 10 agents on loopback, one fleet MCP server, and a Prometheus scraping them all.

Ten `crucible-monitor serve` processes with the default collectors (distinct hostnames, ports and data
directories, one token) and an eleventh whose ``fleet.hosts`` names the ten: ``get_fleet_status`` through its
``/mcp`` over streamable HTTP (every call asks each host for its summary, concurrently), p50 and p95 of
:data:`CALLS` calls after a warm-up, then the fleet server's resident memory (``/proc/<pid>/statm``) beside a plain
agent's. The series of one default agent's ``/metrics`` are counted, and a real Prometheus (Debian's
``prometheus``, tests/services/prometheus.py) scrapes the ten: its head series and its own resident memory.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from services.prometheus import run_prometheus  # noqa: E402  (the tests' real Prometheus)
from supervisor_fixture import free_port, wait_until  # noqa: E402

__all__ = ["HOSTS", "render", "run"]

HOSTS = 10
CALLS = 50
TOKEN = "bench-fleet-token-0123456789"
_PAGE = os.sysconf("SC_PAGE_SIZE")
_START = 60.0
_SETTLE = 12.0


@contextmanager
def _agent(directory: Path, name: str, extra: str = "") -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A `serve` process with the default collectors, its base URL; stopped at the end."""
    directory.mkdir(parents=True)
    port = free_port()
    config = directory / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {directory / 'data'}\n  hostname: {name}\n"
        f"  api_token: {TOKEN}\nstorage:\n  fsync: false\n  worker_process: false\n{extra}",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _series(url: str) -> int:
    """The samples (one per series) of an agent's ``/metrics``."""
    body = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def _rss_mb(pid: int) -> float:
    return round(int(Path(f"/proc/{pid}/statm").read_text(encoding="ascii").split()[1]) * _PAGE / 2**20, 1)


async def _fleet_calls(url: str) -> tuple[list[float], dict[str, Any]]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
        first = await client.call_tool("get_fleet_status", {})
        assert not first.is_error and first.structured_content is not None, first.content
        unreachable = [h["name"] for h in first.structured_content["hosts"] if h["status"] == "unreachable"]
        assert not unreachable, f"hosts that did not answer: {unreachable}"
        samples = []
        for _ in range(CALLS):
            started = time.perf_counter()
            result = await client.call_tool("get_fleet_status", {})
            samples.append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result.content
        return sorted(samples), first.structured_content


def _prometheus_numbers(directory: Path, targets: list[str], per_host: int) -> dict[str, Any]:
    token_file = directory / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(0o600)
    with run_prometheus(directory / "prometheus", targets, token_file=token_file) as prometheus:

        def job_series() -> int:  # every series of the agents, up and scrape_* included
            [sample] = prometheus.query('count({job="crucible"})') or [{"value": [0, "0"]}]
            return int(sample["value"][1])

        wait_until(lambda: job_series() >= HOSTS * per_host, _START, "Prometheus to hold every agent's series")
        up = prometheus.query("up{job='crucible'}")
        own = httpx.get(f"http://127.0.0.1:{prometheus.port}/metrics", timeout=10).text
        head = next(line for line in own.splitlines() if line.startswith("prometheus_tsdb_head_series "))
        return {
            "targets_up": sum(1 for s in up if s["value"][1] == "1"),
            "job_series": job_series(),
            "head_series": int(float(head.split()[1])),
            "rss_mb": _rss_mb(prometheus.process.pid),
        }


def run() -> dict[str, Any]:
    """The fleet server's ``get_fleet_status`` latency and memory over 10 agents, and Prometheus' sizes."""
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        agents = [stack.enter_context(_agent(root / f"web-{i}", f"web-{i}")) for i in range(1, HOSTS + 1)]
        hosts = "".join(
            f"    - {{name: web-{i}, url: '{url}', token: {TOKEN}}}\n" for i, (_, url) in enumerate(agents, 1)
        )
        fleet_process, fleet_url = stack.enter_context(_agent(root / "fleet", "fleet", f"fleet:\n  hosts:\n{hosts}"))
        for _, url in [*agents, (fleet_process, fleet_url)]:
            wait_until(lambda u=url: _healthy(u), _START, f"{url} healthy")
        per_host: list[int] = []
        since = [time.monotonic()]

        def settled() -> bool:  # every collector has run: the count held for more than one 10 s interval
            count = _series(agents[0][1])
            if not per_host or count != per_host[-1]:
                since[0] = time.monotonic()
            per_host.append(count)
            return count > 0 and time.monotonic() - since[0] > _SETTLE

        wait_until(settled, _START, "one agent's /metrics to settle")
        samples, status = asyncio.run(_fleet_calls(fleet_url))
        fleet_rss, agent_rss = _rss_mb(fleet_process.pid), _rss_mb(agents[0][0].pid)
        targets = [url.removeprefix("http://") for _, url in agents]
        prometheus = _prometheus_numbers(root, targets, per_host[-1])
    return {
        "hosts": HOSTS,
        "calls": CALLS,
        "get_fleet_status_ms": {
            "p50": round(statistics.median(samples), 1),
            "p95": round(samples[int(CALLS * 0.95) - 1], 1),
        },
        "fleet_server_rss_mb": fleet_rss,
        "agent_rss_mb": agent_rss,
        "fleet_status_total": status["total"],
        "series_per_host": per_host[-1],
        "prometheus": prometheus,
        "cpu_count": os.cpu_count(),
    }


def render(fleet: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md with the fleet's numbers."""
    latency, prometheus = fleet["get_fleet_status_ms"], fleet["prometheus"]
    return f"""
## The fleet

Measured by `benchmarks/bench_fleet.py` (`python benchmarks/run.py --only fleet`): {fleet["hosts"]} `crucible-monitor
serve` agents on loopback with the default collectors, and an eleventh whose `fleet.hosts` names them;
`get_fleet_status` through its `/mcp` over streamable HTTP, {fleet["calls"]} calls after a warm-up (each asks every
host for its summary, concurrently), on this machine's {fleet["cpu_count"]} cores shared with the eleven agents.

| Measure | Result |
|---|---|
| `get_fleet_status` over {fleet["hosts"]} hosts (p50 / p95) | {latency["p50"]} / {latency["p95"]} ms |
| Fleet server RSS after the calls (a plain agent's) | {fleet["fleet_server_rss_mb"]} MB ({fleet["agent_rss_mb"]} MB) |
| Series of one default agent's `/metrics` | {fleet["series_per_host"]} |
| Prometheus head series, {prometheus["targets_up"]} agents scraped | {prometheus["head_series"]:,} |
| Prometheus RSS holding them | {prometheus["rss_mb"]} MB |

The fleet server's memory above a plain agent's is mostly the MCP SDK, which any agent loads on its first `/mcp`
request (see the start of this page); the latency is the slowest of the ten summaries plus this machine's two cores
running eleven agents at once (it varies with what else runs: another run here gave a p50 near 90 ms)."""


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
