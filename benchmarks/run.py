"""Run every benchmark and rewrite docs/benchmarks.md with the numbers.

python benchmarks/run.py             # full run (~25 minutes: the agent runs for 10, the scaling curve ~7)
python benchmarks/run.py --quick     # the agent runs for 1 minute
python benchmarks/run.py --only tokens   # one benchmark, merged into the results the page holds
python benchmarks/run.py --only nab      # the NAB evaluation (in-sample, cross-validated, FP/recall curve)
python benchmarks/run.py --only live     # the live detector as the agent runs it (store reads included)
python benchmarks/run.py --only cost     # CPU per sample at 1 s and 10 s, memory of the tree, py-spy hot spots
python benchmarks/run.py --only fleet    # 10 agents, one fleet MCP server, a Prometheus scraping them
python benchmarks/run.py --only scaling  # 1,000 to 50,000 series: CPU, memory, queries, maintenance, 5,000 rules
python benchmarks/peers.py               # node_exporter, Netdata and Prometheus's TSDB beside us (own section)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import bench_agent  # noqa: E402  (benchmarks are scripts beside this one)
import bench_alerts  # noqa: E402
import bench_apps  # noqa: E402
import bench_collect  # noqa: E402
import bench_cost  # noqa: E402
import bench_fleet  # noqa: E402
import bench_live  # noqa: E402
import bench_mcp  # noqa: E402
import bench_nab  # noqa: E402
import bench_scaling  # noqa: E402
import bench_storage  # noqa: E402
import bench_tokens  # noqa: E402
from peers_page import section as peers_section  # noqa: E402

DOC = HERE.parent / "docs" / "benchmarks.md"


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii").splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, Linux {platform.release()}"


def _check(value: float, goal: float) -> str:
    return "✓" if value <= goal else "✗"


def render(results: dict[str, Any], command: str) -> str:
    """docs/benchmarks.md from the results."""
    collect, storage, agent, alerts = results["collect"], results["storage"], results["agent"], results["alerts"]
    mcp, apps = results["mcp"], results["apps"]
    mysql = apps["mysql"]
    cycle = collect["system_cycle_ms"]
    startup = agent["startup_to_healthy"]
    steady = agent["steady_state"]
    q = storage["queries"]
    rows = [
        (
            "One system collection cycle (median / p95)",
            f"{cycle['median']} / {cycle['p95']} ms",
            "≤ 1 ms median",
            _check(cycle["median"], 1.0),
        ),
        (
            "Top-processes snapshot (median / p95)",
            f"{collect['processes_snapshot_ms']['median']} / {collect['processes_snapshot_ms']['p95']} ms",
            "",
            "",
        ),
        (
            f"Agent RSS over {steady['minutes']:g} min at 10 s (peak)",
            f"{steady['rss_peak_mb']} MB",
            "≤ 150 MB",
            _check(steady["rss_peak_mb"], 150),
        ),
        (
            f"Agent CPU over {steady['minutes']:g} min at 10 s",
            f"{steady['cpu_percent_of_one_core']} % of a core",
            "≤ 0.5 %",
            _check(steady["cpu_percent_of_one_core"], 0.5),
        ),
        (
            "Bytes per sample, raw tier, one compacted day",
            f"{storage['raw_bytes_per_sample']}",
            "≤ 2, lossless",
            _check(storage["raw_bytes_per_sample"], 2),
        ),
        ("Bytes per raw sample, raw + 1m + 1h tiers", f"{storage['raw_1m_1h_bytes_per_raw_sample']}", "", ""),
        (
            "History query, 24 h of one series, raw 10 s points (median / p95)",
            f"{q['24h_step_10s_raw']['median_ms']} / {q['24h_step_10s_raw']['p95_ms']} ms",
            "≤ 10 ms",
            _check(q["24h_step_10s_raw"]["median_ms"], 10),
        ),
        (
            "History query, 24 h of one series, 5 min steps (1m tier)",
            f"{q['24h_step_5m_1m_tier']['median_ms']} / {q['24h_step_5m_1m_tier']['p95_ms']} ms",
            "≤ 10 ms",
            _check(q["24h_step_5m_1m_tier"]["median_ms"], 10),
        ),
        (
            "History query, 30 days of one series, 3 h steps (1h tier)",
            f"{q['30d_step_3h_1h_tier']['median_ms']} / {q['30d_step_3h_1h_tier']['p95_ms']} ms",
            "≤ 50 ms",
            _check(q["30d_step_3h_1h_tier"]["median_ms"], 50),
        ),
        (
            "History query, 30 days of one series, 1 h steps (1h tier)",
            f"{q['30d_step_1h_1h_tier']['median_ms']} / {q['30d_step_1h_1h_tier']['p95_ms']} ms",
            "≤ 50 ms",
            _check(q["30d_step_1h_1h_tier"]["median_ms"], 50),
        ),
        (
            "Start to a healthy /api/v1/health (median / worst of 5)",
            f"{startup['median_s']} / {startup['max_s']} s",
            "≤ 1.5 s",
            _check(startup["median_s"], 1.5),
        ),
        *(
            (
                f"MCP `{tool}`, {where} (p50 / p95)",
                f"{t['p50_ms']} / {t['p95_ms']} ms",
                "p95 < 50 ms" if where == "in-process" else "",
                _check(t["p95_ms"], 50) if where == "in-process" else "",
            )
            for where, key in (("in-process", "in_process"), ("over HTTP", "http"))
            for tool, t in mcp[key].items()
        ),
        (
            "Caddy JSON access-log parsing on one core (median of 7 reads)",
            f"{apps['caddy_json_lines_per_second']['median']:,} lines/s",
            "≥ 200,000 lines/s",
            "✓" if apps["caddy_json_lines_per_second"]["median"] >= 200_000 else "✗",
        ),
        (
            "Combined (nginx/Apache) access-log parsing on one core",
            f"{apps['combined_lines_per_second']['median']:,} lines/s",
            "",
            "",
        ),
        (
            "MySQL collector cycle, wall / CPU (median)",
            f"{apps['mysql']['cycle_ms']['median']} / {apps['mysql']['cycle_cpu_ms']['median']} ms",
            "",
            "",
        ),
        (
            "MySQL cycle with database and table sizes (40 tables), wall / CPU",
            f"{mysql['cycle_with_sizes_ms']['median']} / {mysql['cycle_with_sizes_cpu_ms']['median']} ms",
            "",
            "",
        ),
        (
            "Alert evaluation, 500 rules over 1,000 series (median / p95 of a cycle)",
            f"{alerts['cycle_ms']['median']} / {alerts['cycle_ms']['p95']} ms",
            "< 20 ms",
            _check(alerts["cycle_ms"]["median"], 20),
        ),
        (
            "NAB standard score, streaming detector (dev set, in-sample)",
            f"{results['nab']['streaming']['standard']['score']}",
            "≥ 76",
            "✓" if results["nab"]["streaming"]["standard"]["score"] >= 76 else "✗",
        ),
        *(
            [
                (
                    "NAB standard score, streaming detector (dev set, leave-one-category-out)",
                    f"{results['nab']['cross_validation']['cross_validated_standard']}",
                    "≥ 72",
                    "✓" if results["nab"]["cross_validation"]["cross_validated_standard"] >= 72 else "✗",
                ),
                (
                    "Streaming detector scoring, one series one cycle (the detector alone)",
                    f"{results['nab'].get('live_us_per_point', results['nab']['streaming_ms_per_1000_points'])} µs",
                    "≤ 20 µs",
                    _check(results["nab"].get("live_us_per_point", results["nab"]["streaming_ms_per_1000_points"]), 20),
                ),
            ]
            if "cross_validation" in results["nab"]
            else []
        ),
        *(
            [
                (
                    f"Live detector, one series one cycle with its store reads ({r['series']} series)",
                    f"{r['us_per_series_per_cycle']} µs",
                    "",
                    "",
                )
                for r in results["live"]["runs"]
            ]
            if "live" in results
            else []
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    return f"""# Benchmarks

Measured by `{command}` on {results["machine"]}, {results["date"]}. Rerun it to refresh this file; the raw
numbers are in the JSON block at the end.

| Measure | Result | Goal | |
|---|---|---|---|
{table}

## How each is measured

- **Collection cycle** (`benchmarks/bench_collect.py`): `SystemCollector.collect()` on this machine's real
  `/proc`, {collect.get("cycles", 2000)} cycles 10 ms apart after a warm-up (so every cycle computes CPU ratios),
  {collect["series"]} series per cycle. The processes snapshot reads every `/proc/<pid>/stat` and the details of
  the top 10 by CPU and by memory.
- **Agent RSS and CPU** (`benchmarks/bench_agent.py`): `crucible-monitor serve` with the default collectors at the
  default 10 s interval, a temporary data directory; after a 30 s warm-up, CPU time from `/proc/<pid>/stat` over
  the run divided by wall time, RSS from `/proc/<pid>/statm` sampled every second.
- **Bytes per sample** (`benchmarks/bench_storage.py`): one day at 10 s of {storage["series"]} series shaped like
  the collectors' output (`benchmarks/synthetic.py`: heavy-tailed byte counters, page-sized memory, jiffy-based
  ratios rounded to 0.01 % as the system collector rounds them, µs pressure totals, rarely changing service and
  check gauges), {storage["samples_per_day"]:,} samples, written through the store and compacted into one file.
  Values read back bit-identical (a test checks the round trip). File sizes: raw
  {storage["day_file_bytes"]["raw"]:,} B, 1m {storage["day_file_bytes"]["1m"]:,} B, 1h
  {storage["day_file_bytes"]["1h"]:,} B.
- **Queries**: 30 such days through `MetricStore.maintain()` (compaction, rollups, retention keeping 7 raw days;
  {storage["maintenance_seconds_for_30_days"]} s for all 30), then `MetricStore.query()` for
  `cpu_usage_ratio{{cpu="total"}}`, 50 runs after one warm-up (file footers cached, as in a running agent).
- **Start-up**: wall time from starting the process to the first 200 from `/api/v1/health`, 5 runs.
- **MCP tool calls** (`benchmarks/bench_mcp.py`): the last 24 hours of the synthetic host as flushed Parquet plus
  one collection of every real collector; {mcp["calls"]} calls each of `get_system_status` and `get_metrics`
  (`cpu_usage_ratio{{cpu="total"}}` over 24 h, 100 points) after one warm-up, through the in-memory MCP client and
  over streamable HTTP to a `crucible-monitor serve` process, with the token.
- **Application collectors** (`benchmarks/bench_apps.py`): the access-log collector's read, parse and aggregate
  path over generated Caddy JSON lines ({apps["caddy_json_lines_per_second"]["bytes_per_line"]} bytes each, real
  Caddy 2.6 fields) and combined-format lines, pinned to one core, 80,000 lines per read; the MySQL collector
  against a real MariaDB started by the benchmark, {apps["mysql"]["cycles"]} cycles over a unix socket.
- **Alert evaluation** (`benchmarks/bench_alerts.py`): the alert engine with 500 threshold rules over a store holding
  the newest points of 1,000 series ({alerts["firing_alerts"]} firing), {alerts["cycles"]} evaluation cycles (rule
  conditions, lifecycle, grouping and the outbox inserts in one transaction); the conditions alone take
  {alerts["conditions_ms"]["median"]} ms.

{bench_nab.render(results["nab"])}
{bench_live.render(results["live"]) if "live" in results else ""}
{bench_cost.render(results["cost"]) if "cost" in results else ""}
{bench_tokens.render(results["tokens"]) if "tokens" in results else ""}
{bench_fleet.render(results["fleet"]) if "fleet" in results else ""}
{bench_scaling.render(results["scaling"]) if "scaling" in results else ""}
{peers_section(results["peers"]) if "peers" in results else ""}

```json
{json.dumps(results, indent=2)}
```
"""


_SINGLE: dict[str, Callable[[], Any]] = {
    "tokens": bench_tokens.run,
    "nab": bench_nab.run,
    "live": bench_live.run,
    "cost": bench_cost.run,
    "fleet": bench_fleet.run,
    "scaling": bench_scaling.run,
}
"""The benchmarks ``--only`` can run alone."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="run the agent for 1 minute instead of 10")
    parser.add_argument(
        "--render", action="store_true", help="only re-render the page from the results it already holds"
    )
    parser.add_argument(
        "--only", choices=sorted(_SINGLE), help="run one benchmark and merge its numbers into those the page holds"
    )
    args = parser.parse_args()
    held = (
        json.loads(DOC.read_text(encoding="utf-8").rsplit("```json\n", 1)[1].split("\n```", 1)[0])
        if DOC.exists()
        else {}
    )
    if args.render or args.only:
        results = held
        if args.only:
            print(f"{args.only}...", flush=True)
            results[args.only] = _SINGLE[args.only]()
        DOC.write_text(render(results, results.get("command", "python benchmarks/run.py")), encoding="utf-8")
        print(f"wrote {DOC}")
        return
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    print("collection cycle...", flush=True)
    collect = bench_collect.run()
    print("storage (30 days of data)...", flush=True)
    storage = bench_storage.run()
    print("MCP tool calls...", flush=True)
    mcp = bench_mcp.run()
    print("application collectors (access logs, MySQL)...", flush=True)
    apps = bench_apps.run()
    print("NAB (anomaly detection)...", flush=True)
    nab = bench_nab.run()
    print("alert evaluation...", flush=True)
    alerts = bench_alerts.run()
    print("the live detector...", flush=True)
    live = bench_live.run()
    print("characters the model reads...", flush=True)
    tokens = bench_tokens.run()
    print("the fleet (10 agents)...", flush=True)
    fleet = bench_fleet.run()
    print("scaling (1,000 to 50,000 series)...", flush=True)
    scaling = bench_scaling.run()
    print("what a sample costs (two agents, 2 min each)...", flush=True)
    cost = bench_cost.run()
    print(f"agent ({1 if args.quick else 10} min)...", flush=True)
    agent = bench_agent.run(1.0 if args.quick else 10.0)
    results = {
        "command": command,
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d"),
        "collect": collect,
        "storage": storage,
        "agent": agent,
        "alerts": alerts,
        "mcp": mcp,
        "nab": nab,
        "apps": apps,
        "tokens": tokens,
        "live": live,
        "fleet": fleet,
        "scaling": scaling,
        "cost": cost,
        **({"peers": held["peers"]} if "peers" in held else {}),  # benchmarks/peers.py measures those
    }
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render(results, command), encoding="utf-8")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
