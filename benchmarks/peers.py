"""Peers side by side, on this machine in one run: node_exporter, Netdata and Prometheus's TSDB against the agent.

python benchmarks/peers.py     # as root: installs Debian's packages when missing; about 5 minutes

- **node_exporter** (``prometheus-node-exporter``, started on a loopback port): ``/metrics`` scraped back to back,
  its CPU (``/proc/<pid>/stat`` utime + stime) divided by the samples the scrapes returned; ours: the system
  collector's cycles in this process (``time.process_time``), divided by the samples they return.
- **Netdata** (``netdata -D``, a temporary config on a loopback port, its own directories) and the agent
  (``crucible-monitor serve``, ``collect_interval: 1s``, the default collectors, a temporary data directory) side
  by side over the same windows: the CPU of each process tree (the children and reaped children included) divided
  by its samples (Netdata: its charts' dimensions / update_every, from ``/api/v1/charts``; ours: the rows stored
  with a timestamp in the window, read back from its Parquet files after it stops), and the RSS and PSS of every
  process of the tree (``/proc/<pid>/smaps_rollup``).
- **Prometheus's TSDB**: the synthetic day of ``benchmarks/synthetic.py`` (the host of ``bench_storage.py``) as
  OpenMetrics, turned into blocks by ``promtool tsdb create-blocks-from openmetrics``; bytes per sample of the
  blocks against our raw tier and raw + rollups for the same day, written through our store.

Each timing is the median of :data:`ROUNDS` rounds in this run. The section of ``docs/benchmarks.md`` between the
markers is rewritten (and ``peers`` in its JSON block); the rest of the page is left as it is.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crucible_monitor.collectors.system import SystemCollector
from crucible_monitor.config import StorageConfig, SystemCollectorConfig
from crucible_monitor.storage.files import live_raw_files
from crucible_monitor.storage.parquet import RAW_SCHEMA, SORT_KEYS, write_atomic
from crucible_monitor.storage.store import MetricStore

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from daemons import PACKAGES, cpu_seconds, ensure_packages, free_port, memory_mb, started  # noqa: E402
from peers_page import write  # noqa: E402
from synthetic import day_arrays  # noqa: E402  (benchmarks are scripts beside each other)

__all__ = ["main", "run"]

DOC = HERE.parent / "docs" / "benchmarks.md"
ROUNDS = 5
SCRAPES = 40
CYCLES = 200
WARM_S = 30.0
WINDOW_S = 30.0
START = 1_764_288_000.0  # a UTC midnight: the first day of bench_storage.py


def _median(values: list[float], digits: int = 2) -> float:
    return round(statistics.median(values), digits)


# -- node_exporter against the system collector ------------------------------------------------------------


def node_exporter() -> dict[str, Any]:
    """CPU per sample of node_exporter's scrapes, median of the rounds."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    command = [PACKAGES["prometheus-node-exporter"], f"--web.listen-address=127.0.0.1:{port}"]
    with started(command, url) as process, httpx.Client(timeout=10) as client:
        for _ in range(5):
            client.get(url)
        per_sample, per_scrape, series = [], [], 0
        for _ in range(ROUNDS):
            before, samples = cpu_seconds(process.pid), 0
            for _ in range(SCRAPES):
                text = client.get(url).text
                series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
                samples += series
            cpu = cpu_seconds(process.pid) - before
            per_sample.append(cpu / samples * 1e6)
            per_scrape.append(cpu / SCRAPES * 1000)
        memory = memory_mb(process.pid)
    return {
        "scrapes_per_round": SCRAPES,
        "series": series,
        "cpu_us_per_sample": _median(per_sample),
        "cpu_ms_per_scrape": _median(per_scrape),
        **memory,
    }


async def _our_cycles() -> dict[str, Any]:
    system = SystemCollector(SystemCollectorConfig())
    for _ in range(20):  # first reads, label caches, the mount table
        await system.collect()
    per_sample, per_cycle, series = [], [], 0
    for _ in range(ROUNDS):
        cpu, samples = 0.0, 0
        for _ in range(CYCLES):
            time.sleep(0.01)  # lets /proc/stat move on, so that every cycle computes the CPU ratios
            began = time.process_time()
            collection = await system.collect()
            cpu += time.process_time() - began
            samples += len(collection.samples)
            series = max(series, len(collection.samples))
        per_sample.append(cpu / samples * 1e6)
        per_cycle.append(cpu / CYCLES * 1000)
    return {
        "cycles_per_round": CYCLES,
        "series": series,
        "cpu_us_per_sample": _median(per_sample),
        "cpu_ms_per_cycle": _median(per_cycle, 3),
    }


def system_collector() -> dict[str, Any]:
    """CPU per sample of our system collector's cycles (in this process), median of the rounds."""
    return asyncio.run(_our_cycles())


# -- Netdata against the agent, both at 1 s -------------------------------------------------------------------


def _netdata_config(directory: Path, port: int) -> Path:
    dirs = {name: directory / name for name in ("cache", "lib", "log", "run", "lock")}
    for path in dirs.values():
        path.mkdir(parents=True)
    config = directory / "netdata.conf"
    config.write_text(
        "[global]\n    run as user = root\n    hostname = bench\n"
        "[db]\n    update every = 1\n    mode = dbengine\n"
        "[directories]\n" + "".join(f"    {name} = {path}\n" for name, path in dirs.items()) + "[logs]\n"
        f"    debug log = {dirs['log'] / 'debug.log'}\n    error log = {dirs['log'] / 'error.log'}\n"
        "    access log = none\n"
        f"[web]\n    bind to = 127.0.0.1:{port}\n[registry]\n    enabled = no\n",
        encoding="utf-8",
    )
    return config


def _netdata_rate(url: str) -> tuple[int, float]:
    """Netdata's dimensions, and the samples per second its charts collect (dimensions / update_every)."""
    charts = httpx.get(f"{url}/api/v1/charts", timeout=10).json()["charts"].values()
    dimensions = sum(len(c["dimensions"]) for c in charts)
    return dimensions, sum(len(c["dimensions"]) / c["update_every"] for c in charts)


def _agent_config(directory: Path, port: int) -> Path:
    config = directory / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {directory / 'data'}\n  collect_interval: 1s\n",
        encoding="utf-8",
    )
    return config


def _stored_between(data: Path, windows: list[tuple[float, float]]) -> list[int]:
    """Rows the agent stored with a timestamp in each window, read back once it has stopped (the store is opened and
    closed first, so that anything a slow shutdown left in the WAL is in Parquet too)."""
    store = MetricStore(data / "metrics", StorageConfig(), retention=timedelta(days=30))
    store.open()
    store.close()
    counts = [0] * len(windows)
    for day in (data / "metrics" / "raw").iterdir():
        for path in live_raw_files(day)[0]:
            ts = pq.read_table(path, columns=["ts"]).column("ts").cast("int64").to_numpy()
            for i, (start, end) in enumerate(windows):
                counts[i] += int(((ts >= start * 1000) & (ts < end * 1000)).sum())
    return counts


def netdata_and_agent() -> dict[str, Any]:
    """Netdata and the agent at 1 s over the same windows: CPU per sample, RSS and PSS; medians of the rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "netdata").mkdir()
        netdata_port, agent_port = free_port(), free_port()
        netdata_url, agent_url = f"http://127.0.0.1:{netdata_port}", f"http://127.0.0.1:{agent_port}"
        netdata_cmd = [PACKAGES["netdata"], "-D", "-c", str(_netdata_config(root / "netdata", netdata_port))]
        agent_cmd = [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config"]
        agent_cmd.append(str(_agent_config(root, agent_port)))
        windows: list[tuple[float, float]] = []
        rounds: list[dict[str, Any]] = []
        with (
            started(netdata_cmd, f"{netdata_url}/api/v1/info", cwd=root / "netdata") as netdata,
            started(agent_cmd, f"{agent_url}/api/v1/health") as agent,
        ):
            time.sleep(WARM_S)  # both: first collections, plugins started, lazily imported modules
            for _ in range(ROUNDS):
                began = time.time()
                cpu = {"netdata": cpu_seconds(netdata.pid), "agent": cpu_seconds(agent.pid)}
                time.sleep(WINDOW_S)
                cpu = {
                    "netdata": cpu_seconds(netdata.pid) - cpu["netdata"],
                    "agent": cpu_seconds(agent.pid) - cpu["agent"],
                }
                ended = time.time()
                windows.append((began, ended))
                dimensions, rate = _netdata_rate(netdata_url)
                rounds.append(
                    {
                        "began": began,
                        "ended": ended,
                        "seconds": ended - began,
                        "cpu": cpu,
                        "netdata_dimensions": dimensions,
                        "netdata_samples": rate * (ended - began),
                        "memory": {"netdata": memory_mb(netdata.pid), "agent": memory_mb(agent.pid)},
                    }
                )
        for stored, r in zip(_stored_between(root / "data", windows), rounds, strict=True):
            if not stored:
                raise RuntimeError(f"the agent stored no samples between {r['began']} and {r['ended']}")
            r["agent_samples"] = stored

    def median(get: Callable[[dict[str, Any]], float], digits: int = 2) -> float:
        return _median([get(r) for r in rounds], digits)

    def side(name: str, samples: str) -> dict[str, Any]:
        return {
            "cpu_us_per_sample": median(lambda r: r["cpu"][name] / r[samples] * 1e6),
            "cpu_percent_of_one_core": median(lambda r: 100 * r["cpu"][name] / r["seconds"], 3),
            "samples_per_second": median(lambda r: r[samples] / r["seconds"], 1),
            "rss_mb": median(lambda r: r["memory"][name]["rss_mb"], 1),
            "pss_mb": median(lambda r: r["memory"][name]["pss_mb"], 1),
            "processes": median(lambda r: r["memory"][name]["processes"], 0),
        }

    return {
        "rounds": ROUNDS,
        "window_s": WINDOW_S,
        "warm_up_s": WARM_S,
        "netdata": {**side("netdata", "netdata_samples"), "dimensions": rounds[-1]["netdata_dimensions"]},
        "agent": side("agent", "agent_samples"),
    }


# -- Prometheus's TSDB against our tiers ----------------------------------------------------------------------


def _openmetrics(path: Path) -> int:
    """The synthetic day as OpenMetrics (one family per metric, each series in time order); returns its samples."""
    families: dict[str, list[tuple[str, Any, Any]]] = {}
    for metric, key, ts, values in day_arrays(START, seed=0):
        families.setdefault(metric, []).append((key, ts, values))
    samples = 0
    with path.open("w", encoding="utf-8") as out:
        for metric, series in families.items():
            out.write(f"# TYPE {metric} gauge\n")
            for key, ts, values in series:
                labels = ",".join(f'{k}="{v}"' for k, v in json.loads(key).items())
                name = f"{metric}{{{labels}}}" if labels else metric
                out.writelines(f"{name} {v!r} {t // 1000}\n" for t, v in zip(ts.tolist(), values.tolist(), strict=True))
                samples += len(ts)
        out.write("# EOF\n")
    return samples


def _day_table() -> pa.Table:
    """The synthetic day as our raw tier holds it (as bench_storage.py builds its first day)."""
    parts = list(day_arrays(START, seed=0))
    lengths = [len(p[2]) for p in parts]
    return pa.table(
        {
            "metric": pa.array(np.repeat([p[0] for p in parts], lengths), pa.string()),
            "labels": pa.array(np.repeat([p[1] for p in parts], lengths), pa.string()),
            "ts": pa.array(np.concatenate([p[2] for p in parts])).cast(pa.timestamp("ms", tz="UTC")),
            "value": pa.array(np.concatenate([p[3] for p in parts]), pa.float64()),
        },
        schema=RAW_SCHEMA,
    ).sort_by(SORT_KEYS)


def _ours_for_the_day() -> dict[str, Any]:
    table = _day_table()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_atomic(
            table, root / "raw" / time.strftime("%Y-%m-%d", time.gmtime(START)) / "000000000001-000000000001.parquet"
        )
        store = MetricStore(root, StorageConfig(), retention=timedelta(days=30), clock=lambda: START + 86400 + 600)
        store.open()
        store.maintain()
        store.close()
        sizes = {tier: sum(p.stat().st_size for p in (root / tier).rglob("*.parquet")) for tier in ("raw", "1m", "1h")}
    samples = table.num_rows
    return {
        "samples": samples,
        "bytes": sizes,
        "raw_bytes_per_sample": round(sizes["raw"] / samples, 3),
        "raw_1m_1h_bytes_per_raw_sample": round(sum(sizes.values()) / samples, 3),
    }


def tsdb() -> dict[str, Any]:
    """Bytes per sample of promtool's blocks for the synthetic day, and of our tiers for the same day."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = _openmetrics(root / "day.om")
        began = time.perf_counter()
        done = subprocess.run(
            [
                PACKAGES["prometheus"],
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "-q",
                str(root / "day.om"),
                str(root / "blocks"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"promtool failed: {done.stderr.strip()[-400:]}")
        seconds = time.perf_counter() - began
        files = [p for p in (root / "blocks").rglob("*") if p.is_file()]
        total = sum(p.stat().st_size for p in files)
        chunks = sum(p.stat().st_size for p in files if p.parent.name == "chunks")
        index = sum(p.stat().st_size for p in files if p.name == "index")
        blocks = sum(1 for p in (root / "blocks").iterdir() if p.is_dir())
        version = subprocess.run([PACKAGES["prometheus"], "--version"], capture_output=True, text=True, check=False)
    return {
        "samples": samples,
        "promtool": version.stdout.split("\n", 1)[0],
        "promtool_seconds": round(seconds, 1),
        "blocks": blocks,
        "bytes": {"total": total, "chunks": chunks, "index": index},
        "bytes_per_sample": round(total / samples, 3),
        "chunk_bytes_per_sample": round(chunks / samples, 3),
        "ours": _ours_for_the_day(),
    }


# -- the run and the page -------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    out = {}
    for package in PACKAGES:
        done = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
        )
        out[package] = done.stdout.strip() or "?"
    return out


def run() -> dict[str, Any]:
    """Every comparison; a peer that cannot run here is reported with its error, the others still run."""
    measures: dict[str, Callable[[], dict[str, Any]]] = {
        "node_exporter": node_exporter,
        "system_collector": system_collector,
        "netdata_and_agent": netdata_and_agent,
        "tsdb": tsdb,
    }
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "versions": _versions(),
        "settings": {"rounds": ROUNDS, "scrapes": SCRAPES, "cycles": CYCLES, "warm_up_s": WARM_S, "window_s": WINDOW_S},
    }
    for name, measure in measures.items():
        print(f"{name}...", flush=True)
        try:
            results[name] = measure()
        except Exception as exc:  # the top level of one comparison: report it, run the others
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return results


def main() -> None:
    """Install what is missing, measure, rewrite the section."""
    installed = ensure_packages()
    if installed:
        print(f"installed {', '.join(installed)}", flush=True)
    results = run()
    write(results, DOC)
    print(json.dumps(results, indent=2))
    print(f"wrote the peers section of {DOC}")


if __name__ == "__main__":
    main()
