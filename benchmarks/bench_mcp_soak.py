"""10,000 MCP tool calls over streamable HTTP against a real `crucible-monitor serve`, at bounded concurrency.

python benchmarks/bench_mcp_soak.py                       # 10,000 calls, 8 sessions; writes its section of
                                                          # docs/reliability.md
python benchmarks/bench_mcp_soak.py --calls 500 --no-write

The agent collects every 2 s with its own collectors, and the sessions hold a ``read`` token (what an assistant is
given). Each of ``--concurrency`` MCP sessions calls the next of a rotation of read tools until ``--calls`` are done.
Measured: errors (an exception or an ``is_error`` result), the latency of each call, and the agent's RSS sampled
every 100 calls, compared between the first and the last thousand calls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
import psutil
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).parent))
from daemons import free_port  # noqa: E402  (benchmarks are scripts beside this one)
from doc_sections import write_section  # noqa: E402

__all__ = ["run"]

READ_TOKEN = "mcp-soak-read-token-0123456789abcdef"
ROTATION: list[tuple[str, dict[str, Any]]] = [
    ("get_system_status", {}),
    ("get_metrics", {"metric": "cpu_usage_ratio", "labels": {"cpu": "total"}, "since": "1h", "max_points": 60}),
    ("list_alerts", {}),
    ("list_services", {}),
    ("get_events", {"since": "1h"}),
    ("list_metrics", {}),
]
FLAT_MB = 10.0
"""RSS counts as flat when the last thousand calls' median is within this of the first thousand's."""


def _start(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    config = tmp / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {tmp / 'data'}\n  collect_interval: 2s\n"
        f"  tokens:\n    - {{name: assistant, scope: read, secret: {READ_TOKEN}}}\nstorage:\n  fsync: false\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit("the agent did not start")
        time.sleep(0.1)  # polling a starting process


def _pending_rows(base: str) -> int:
    """Samples the agent holds in memory until its next flush (part of its RSS that grows with time, not calls)."""
    health = httpx.get(f"{base}/api/v1/health", headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=30)
    rows: int = health.json()["storage"]["pending_rows"]
    return rows


async def _soak(base: str, pid: int, calls: int, concurrency: int) -> dict[str, Any]:
    agent = psutil.Process(pid)
    pending_before = _pending_rows(base)
    latencies: list[float] = []
    errors: list[str] = []
    rss: list[tuple[int, float]] = [(0, agent.memory_info().rss / 1024**2)]
    issued = 0

    async def session() -> None:
        nonlocal issued
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {READ_TOKEN}"}, timeout=60)
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            while issued < calls:
                name, arguments = ROTATION[issued % len(ROTATION)]
                issued += 1
                started = time.perf_counter()
                try:
                    result = await client.call_tool(name, arguments)
                except Exception as exc:  # counted: that is the measurement
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
                else:
                    if result.is_error:
                        errors.append(f"{name}: {result.content}")
                latencies.append((time.perf_counter() - started) * 1000)
                if len(latencies) % 100 == 0:
                    rss.append((len(latencies), agent.memory_info().rss / 1024**2))

    began = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    pending_after = _pending_rows(base)
    latencies.sort()
    first = [mb for done, mb in rss if 0 < done <= 1000]
    last = [mb for done, mb in rss if done > calls - 1000]
    start_mb, end_mb = statistics.median(first), statistics.median(last)
    return {
        "calls": len(latencies),
        "concurrency": concurrency,
        "tools": [name for name, _ in ROTATION],
        "errors": len(errors),
        "error_examples": errors[:5],
        "seconds": round(seconds, 1),
        "calls_per_second": round(len(latencies) / seconds, 1),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p99": round(latencies[int(len(latencies) * 0.99) - 1], 1),
            "max": round(latencies[-1], 1),
        },
        "rss_mb": {
            "before": round(rss[0][1], 1),
            "first_thousand_median": round(start_mb, 1),
            "last_thousand_median": round(end_mb, 1),
            "peak": round(max(mb for _, mb in rss), 1),
            "every_thousand": [round(mb, 1) for done, mb in rss if done and done % 1000 == 0],
            "flat": end_mb - start_mb <= FLAT_MB,
        },
        "samples_in_memory": {"before": pending_before, "after": pending_after},
    }


def run(calls: int = 10_000, concurrency: int = 8) -> dict[str, Any]:
    """Serve an agent, soak it with MCP calls, stop it; the measurements."""
    with tempfile.TemporaryDirectory() as scratch:
        port = free_port()
        process = _start(Path(scratch), port)
        try:
            results = asyncio.run(_soak(f"http://127.0.0.1:{port}", process.pid, calls, concurrency))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    results["machine"] = f"{os.cpu_count()} cores, Python {platform.python_version()}, Linux {platform.release()}"
    results["date"] = time.strftime("%Y-%m-%d")
    return results


def render(results: dict[str, Any], command: str) -> str:
    """The section of docs/reliability.md (its markers added by ``write_section``)."""
    rss, latency = results["rss_mb"], results["latency_ms"]
    return "\n".join(
        [
            "## MCP calls over HTTP",
            "",
            f"Measured by `{command}` on {results['machine']} ({results['date']}). {results['calls']:,} tool calls",
            f"from {results['concurrency']} MCP sessions at once over streamable HTTP, with a `read` token, against",
            "`crucible-monitor serve` collecting every 2 s; the tools in turn: "
            + ", ".join(f"`{t}`" for t in results["tools"])
            + ".",
            "",
            "| Measure | Result |",
            "|---|---|",
            f"| Calls / errors | {results['calls']:,} / {results['errors']} |",
            f"| Latency p50 / p99 / max | {latency['p50']} / {latency['p99']} / {latency['max']} ms |",
            f"| Throughput | {results['calls_per_second']} calls/s ({results['seconds']} s in all) |",
            f"| Agent RSS before the calls | {rss['before']} MB |",
            f"| Agent RSS, first / last thousand calls (median) | {rss['first_thousand_median']} / "
            f"{rss['last_thousand_median']} MB ({'flat' if rss['flat'] else 'grew'}: within {FLAT_MB:g} MB) |",
            f"| Agent RSS peak | {rss['peak']} MB |",
            f"| Agent RSS after each thousand calls | {' · '.join(f'{mb:g}' for mb in rss['every_thousand'])} MB |",
            f"| Samples in memory until the next flush (grow with time, not calls), before / after | "
            f"{results['samples_in_memory']['before']:,} / {results['samples_in_memory']['after']:,} |",
            "",
            "```json",
            json.dumps(results, indent=2),
            "```",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-write", action="store_true", help="print the results; leave docs/reliability.md")
    args = parser.parse_args(argv)
    results = run(args.calls, args.concurrency)
    print(json.dumps(results, indent=2))
    if not args.no_write:
        command = "python benchmarks/bench_mcp_soak.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
        write_section("mcp-soak", "benchmarks/bench_mcp_soak.py", render(results, command))
    return 0 if results["errors"] == 0 and results["rss_mb"]["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
