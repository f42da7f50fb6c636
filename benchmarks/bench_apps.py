"""Application collectors: access-log throughput on one core, and the MySQL collector's cost per cycle.

Access logs: lines in Caddy's JSON format (the shape Debian's Caddy 2.6.2 writes, with browser-like headers) and in
nginx's combined format with ``$request_time`` are appended to a file, and one ``AccessLogsCollector.collect()``
reads, parses and aggregates them all (counters, cycle quantiles, per-endpoint minutes); the process is pinned to
one CPU. MySQL: a real MariaDB (the test fixture's, in a temporary directory) with a 40-table schema; a cycle is
one ``MysqlCollector.collect()``, timed with and without the ``information_schema`` sizes query. Prints one JSON
object::

    {"caddy_json_lines_per_second": {...}, "combined_lines_per_second": {...}, "mysql_cycle_ms": {...}, ...}
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from crucible_monitor.collectors.access_logs import AccessLogsCollector, AccessLogsConfig
from crucible_monitor.collectors.mysql import MysqlCollector, MysqlConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from services.mariadb import run_mariadb  # noqa: E402  (the tests' real-server fixture)

__all__ = ["run"]

GOAL_LINES_PER_SECOND = 200_000
_USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "curl/7.88.1",
)
_PATHS = ("/", "/cart", "/login", "/api/orders", "/static/app.css", "/favicon.ico")


def _uri(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return f"/products/{rng.randrange(5000)}?ref=home"
    if roll < 0.4:
        return f"/orders/{rng.randrange(100000)}/items/{rng.randrange(10)}"
    return rng.choice(_PATHS)


def _status(rng: random.Random) -> int:
    return rng.choices((200, 301, 304, 404, 500, 502), (85, 3, 5, 5, 1, 1))[0]


def _caddy_lines(count: int, start: float, rng: random.Random) -> bytes:
    lines = []
    for i in range(count):
        entry = {
            "level": "info",
            "ts": start + i / 1000,
            "logger": "http.log.access.log0",
            "msg": "handled request",
            "request": {
                "remote_ip": f"203.0.113.{i % 250}",
                "remote_port": str(40000 + i % 20000),
                "proto": "HTTP/2.0",
                "method": "GET" if rng.random() < 0.9 else "POST",
                "host": rng.choice(("shop.example.com", "api.example.com")),
                "uri": _uri(rng),
                "headers": {
                    "User-Agent": [rng.choice(_USER_AGENTS)],
                    "Accept": ["text/html,application/xhtml+xml"],
                    "Accept-Encoding": ["gzip, deflate, br"],
                    "Cookie": ["REDACTED"],
                },
                "tls": {"resumed": False, "version": 772, "cipher_suite": 4865, "proto": "h2", "server_name": "shop"},
            },
            "user_id": "",
            "duration": round(rng.expovariate(1 / 0.08), 9),
            "size": rng.randrange(200, 60000),
            "status": _status(rng),
            "resp_headers": {"Server": ["Caddy"], "Content-Type": ["text/html; charset=utf-8"]},
        }
        lines.append(json.dumps(entry, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def _combined_lines(count: int, start: float, rng: random.Random) -> bytes:
    lines = []
    for i in range(count):
        when = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(start + i / 1000))
        lines.append(
            f'203.0.113.{i % 250} - - [{when}] "GET {_uri(rng)} HTTP/1.1" {_status(rng)} {rng.randrange(200, 60000)} '
            f'"https://shop.example.com/" "{rng.choice(_USER_AGENTS)}" {rng.expovariate(1 / 0.08):.3f}'
        )
    return ("\n".join(lines) + "\n").encode()


def _throughput(fmt: str, lines: int, runs: int) -> dict[str, object]:
    rng = random.Random(7)
    make = _caddy_lines if fmt == "caddy" else _combined_lines
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "access.log"
        log.write_bytes(b"")
        file = {"path": str(log), "format": fmt, "host": None if fmt == "caddy" else "shop.example.com"}
        collector = AccessLogsCollector(AccessLogsConfig(files=[file]), state_dir=Path(tmp) / "state")
        asyncio.run(collector.collect())
        rates = []
        size = 0
        read = 0.0
        for run in range(runs):
            data = make(lines, time.time() + run, rng)
            size = len(data)
            with log.open("ab") as handle:
                handle.write(data)
            started = time.perf_counter()
            collection = asyncio.run(collector.collect())
            elapsed = time.perf_counter() - started
            total = next(s.value for s in collection.samples if s.metric == "access_log_lines_total")
            if total - read != lines:
                raise RuntimeError(f"one collection read {total - read:g} of {lines} lines")
            read = total
            rates.append(lines / elapsed)
    return {
        "median": round(statistics.median(rates)),
        "min": round(min(rates)),
        "lines_per_read": lines,
        "runs": runs,
        "bytes_per_line": round(size / lines),
    }


def _mysql(cycles: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, run_mariadb(Path(tmp) / "mariadb") as server:
        server.execute("CREATE DATABASE shop")
        for i in range(40):
            server.execute(f"CREATE TABLE shop.t{i} (id INT PRIMARY KEY, note VARCHAR(100))")
            server.execute(f"INSERT INTO shop.t{i} VALUES (1, 'a'), (2, 'b')")
        base = {"unix_socket": server.socket, "user": "root"}

        async def timed(config: MysqlConfig) -> tuple[list[float], list[float], int]:
            collector = MysqlCollector(config)
            series = len((await collector.collect()).samples)  # connects
            walls, cpus = [], []
            for _ in range(cycles):
                wall, cpu = time.perf_counter(), time.process_time()
                await collector.collect()
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            await collector.aclose()
            return walls, cpus, series

        plain = asyncio.run(timed(MysqlConfig.model_validate({**base, "sizes_interval": "1h"})))
        sizes = asyncio.run(timed(MysqlConfig.model_validate({**base, "sizes_interval": "1ms"})))
    return {
        "cycle_ms": _ms(plain[0]),
        "cycle_cpu_ms": _ms(plain[1]),
        "cycle_with_sizes_ms": _ms(sizes[0]),
        "cycle_with_sizes_cpu_ms": _ms(sizes[1]),
        "series_with_sizes": sizes[2],
        "tables": 40,
        "cycles": cycles,
        "connection": "unix socket",
    }


def _ms(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {"median": round(statistics.median(ms), 3), "p95": round(ms[int(len(ms) * 0.95) - 1], 3)}


def run(lines: int = 80_000, runs: int = 7, mysql_cycles: int = 200) -> dict[str, object]:
    """Measure access-log throughput (``runs`` reads of ``lines`` lines each: one collection reads at most 64 MiB)
    and ``mysql_cycles`` MySQL cycles; about 40 s with the defaults."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # one core, as the goal says
    caddy = _throughput("caddy", lines, runs)
    combined = _throughput("combined", lines, runs)
    return {
        "caddy_json_lines_per_second": caddy,
        "combined_lines_per_second": combined,
        "goal_lines_per_second": GOAL_LINES_PER_SECOND,
        "goal_met": int(str(caddy["median"])) >= GOAL_LINES_PER_SECOND,
        "mysql": _mysql(mysql_cycles),
        "pinned_cpu": cpu,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
