"""MCP tool-call latency: get_system_status and get_metrics over 24 hours, in-process and over HTTP.

The data directory holds the last 24 hours of the synthetic ~200-series host at 10 s (see synthetic.py), written
as raw Parquet as the agent would have flushed it; the agent's own collectors run on top.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pyarrow as pa
import pyarrow.compute as pc
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.monitor import Monitor
from crucible_monitor.server.mcp import build_mcp_server
from crucible_monitor.storage.parquet import write_atomic

try:
    from bench_storage import _day_table
except ImportError:  # run as benchmarks.bench_mcp
    from benchmarks.bench_storage import _day_table

__all__ = ["run"]

CALLS = 100
METRICS_CALL = {"metric": "cpu_usage_ratio", "labels": {"cpu": "total"}, "since": "24h", "max_points": 100}


def _fill(data_dir: Path) -> None:
    """Yesterday and today, up to now, of the synthetic host, as flushed raw files."""
    now = time.time()
    today = now - now % 86400
    for offset, day_start in enumerate((today - 86400, today)):
        table = _day_table(offset)
        shift_ms = int((day_start - 1_764_288_000.0 - offset * 86400) * 1000)
        ts = table.column("ts").cast("int64").to_numpy() + shift_ms
        table = table.set_column(2, "ts", pa.array(ts).cast(pa.timestamp("ms", tz="UTC")))
        table = table.filter(pc.less(table.column("ts").cast("int64"), int(now * 1000)))
        day = time.strftime("%Y-%m-%d", time.gmtime(day_start))
        write_atomic(table, data_dir / "metrics" / "raw" / day / f"{offset:012d}-{offset:012d}.parquet")


async def _time(call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    await call()
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        result = await call()
        samples.append((time.perf_counter() - started) * 1000)
        assert not result.is_error, result.content
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(samples[int(CALLS * 0.95) - 1], 2)}


async def _in_process(config: Config) -> dict[str, dict[str, float]]:
    agent = Agent(config)
    await agent.start(schedule=False)
    for name in list(agent.collectors):
        await agent.run_collector(name)
    try:
        async with Client(build_mcp_server(Monitor(agent), read_only=True)) as client:
            return {
                "get_system_status": await _time(lambda: client.call_tool("get_system_status", {})),
                "get_metrics_24h": await _time(lambda: client.call_tool("get_metrics", METRICS_CALL)),
            }
    finally:
        await agent.stop()


async def _over_http(config_path: Path, data_dir: Path, port: int) -> dict[str, dict[str, float]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        token = (data_dir / "api_token").read_text(encoding="utf-8").strip()
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            return {
                "get_system_status": await _time(lambda: client.call_tool("get_system_status", {})),
                "get_metrics_24h": await _time(lambda: client.call_tool("get_metrics", METRICS_CALL)),
            }
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run() -> dict[str, object]:
    """Latencies in-process (in-memory MCP client) and over streamable HTTP (a `serve` process)."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        _fill(data_dir)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config_path = Path(tmp) / "monitor.yaml"
        config_path.write_text(
            f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {data_dir}\n"
            "storage:\n  fsync: false\n  worker_process: false\n",
            encoding="utf-8",
        )
        config = Config.model_validate({"agent": {"data_dir": str(data_dir)}, "storage": {"fsync": False}})
        in_process = asyncio.run(_in_process(config))
        over_http = asyncio.run(_over_http(config_path, data_dir, port))
    return {"calls": CALLS, "in_process": in_process, "http": over_http, "cpu_count": os.cpu_count()}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
