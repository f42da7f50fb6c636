"""Reliability runs of the real agent, written to docs/reliability.md.

    python benchmarks/reliability.py        # 100 SIGKILLs, 30 accelerated days, 2 minutes of full disk (root: tmpfs)
    python benchmarks/reliability.py --kills 20 --days 3 --full-disk 60
    python benchmarks/reliability.py --kills 100 --days 0 --full-disk 0 --check   # CI: assert, write nothing

1. **SIGKILL loop** (``tests/kill_loop.py``): ``crucible-monitor serve`` on a clock 60× real time, killed with
   SIGKILL (its main process only: the Parquet worker must die with it) ``--kills`` times at a random moment inside
   a collection, a WAL flush or the maintenance (compaction, rollups, retention), a target each in turn, and started
   again a few accelerated hours later. Before each kill the points the API served for the round are read (what the
   agent acknowledged); at the end each must be in the raw Parquet files exactly once (unless older than the raw
   retention), every file must open, and no process of a killed agent may be left.
2. **Accelerated days** (``tests/accelerated_days.py``): ``--days`` days of the agent on a hand-moved clock, a
   synthetic textfile of 50 gauges collected every 10 s, its flush, compaction, rollups and retention run as its
   scheduler runs them; RSS, descriptors, disk and a 24 h query taken once a day.
3. **Full disk**: the data directory on a 16 MiB tmpfs filled to the last byte for ``--full-disk`` seconds, then freed:
   the log lines and events it caused, the samples held in memory, and whether they were written once space returned.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the harnesses the tests use

import accelerated_days  # noqa: E402
import kill_loop  # noqa: E402
from daemons import free_port  # noqa: E402

DOC = ROOT / "docs" / "reliability.md"
TOKEN = "reliability-token-0123456789"
METRIC = "memory_used_bytes"


@dataclass
class Agent:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(
            f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()


def _config(directory: Path, data_dir: Path, port: int) -> Path:
    config = directory / "monitor.yaml"
    config.write_text(
        f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {data_dir}\n  collect_interval: 1s\n"
        f"  api_token: {TOKEN}\nstorage:\n  flush_interval: 2s\ncollectors:\n  services:\n    enabled: false\n",
        encoding="utf-8",
    )
    return config


@contextmanager
def _serve(config: Path, port: int, log: Path) -> Iterator[tuple[Agent, float]]:
    """The agent started; yields it and the seconds it took to be healthy. SIGKILLs its group at the end if alive."""
    started = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crucible_monitor.cli", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    agent = Agent(process, f"http://127.0.0.1:{port}", log)
    try:
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{agent.url}/api/v1/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.05)  # polling a condition, bounded by the assert above (the agent exits or answers)
        yield agent, time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def full_disk(seconds: float) -> dict[str, Any] | None:
    if os.geteuid() != 0:
        return None
    with tempfile.TemporaryDirectory(prefix="crucible-full-") as tmp:
        directory = Path(tmp)
        mount = directory / "small"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)]).returncode != 0:
            return None
        try:
            port = free_port()
            config = _config(directory, mount / "data", port)
            log = directory / "agent.log"
            began = time.time() - 5
            with _serve(config, port, log) as (agent, _):
                time.sleep(3)  # a few samples on disk before it fills
                filler = mount / "filler"
                with filler.open("wb") as handle, contextlib.suppress(OSError):
                    while True:
                        handle.write(b"\0" * 65536)
                        handle.flush()
                lines_before = len(log.read_text(errors="replace").splitlines())
                time.sleep(seconds)  # the length of the outage being measured
                status = agent.get("/api/v1/status")
                held = next((f["problem"] for f in status["findings"] if f["subject"] == "storage"), None)
                lines_during = len(log.read_text(errors="replace").splitlines()) - lines_before
                filler.unlink()
                time.sleep(5)  # space is back: the held samples are written at the next collection
                listed = agent.get("/api/v1/events", kind="agent", since="1h")
                events = listed["items"] if isinstance(listed, dict) else listed
                written = [e["message"] for e in events if "disk was full" in e["message"]]
                points = len(_served(agent, began))
            return {
                "seconds": seconds,
                "log_lines_during": lines_during,
                "status_finding": held,
                "events_after": written,
                "points_served_after": points,
                "tracebacks_in_log": log.read_text(errors="replace").count("Traceback"),
            }
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def _served(agent: Agent, since: float) -> list[float]:
    """The timestamps of the points the agent serves since ``since`` (one raw sample per bucket of ≤ 50 ms)."""
    step = max(0.05, (time.time() - since) / 10_000)
    history = agent.get(
        "/api/v1/metrics/history", metric=METRIC, start=f"{since}", step=f"{step * 1000:.0f}ms", agg="last"
    )
    return sorted(ts for s in history["series"] for ts, _ in s["points"])


def kills(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="crucible-kills-") as tmp:
        return kill_loop.run(Path(tmp), count)


def days(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="crucible-days-") as tmp:
        config = accelerated_days.days_config(
            Path(tmp), raw_days=7, minute_days=14, keep_days=21, max_disk="20MB", worker=True
        )
        started = time.monotonic()
        run = anyio.run(
            lambda: accelerated_days.run_days(config, count, progress=lambda d: print(f"day {d}/{count}", flush=True))
        )
        took = time.monotonic() - started
    first, last = run.days[0], run.days[-1]
    return {
        "days": count,
        "series": 50,
        "collections": run.collections,
        "flushes": run.flushes,
        "maintenances": run.maintenances,
        "collector_errors": run.collector_errors,
        "retention": "raw 7 d, 1 m rollups 14 d, 1 h rollups 21 d, cap 20 MB",
        "real_seconds": round(took),
        "per_day": [vars(d) for d in run.days],
        "rss_mb_first_last_max": [first.rss_mb, last.rss_mb, max(d.rss_mb for d in run.days)],
        "python_blocks_first_last_max": [
            first.python_blocks,
            last.python_blocks,
            max(d.python_blocks for d in run.days),
        ],
        "open_fds_first_last_max": [first.open_fds, last.open_fds, max(d.open_fds for d in run.days)],
        "disk_bytes_max": max(d.disk_bytes for d in run.days),
        "query_ms_first_last_max": [first.query_ms, last.query_ms, max(d.query_ms for d in run.days)],
    }


def _kept_sections(doc: str) -> list[str]:
    """The sections other benchmarks own (between their markers: ``benchmarks/doc_sections.py``), kept as they are."""
    return [m.group(0) + "\n" for m in re.finditer(r"<!-- ([\w-]+): written by .*? -->.*?<!-- /\1 -->", doc, re.DOTALL)]


def render(results: dict[str, Any], kept: list[str]) -> str:
    kill, run, disk = results["kill_loop"], results["accelerated_days"], results["full_disk"]
    runs = sorted(set(results["commands"].values()))
    lines = ["# Reliability", "", f"Measured on {results['machine']} by", ""]
    lines += [f"- `{r.rsplit(' (', 1)[0]}` ({r.rsplit(' (', 1)[1]}" for r in runs] + [""]
    lines += ["## SIGKILL loop", ""]
    if kill is None:
        lines += ["Not run this time.", ""]
    else:
        phases = ", ".join(f"{n} {k}" for n, k in kill["kills_by_phase"].items())
        lines += [
            "`crucible-monitor serve` on a clock 60× real time (`tests/accelerated_agent.py`; 10 s collection, a WAL",
            f"flush every accelerated minute, maintenance hourly) killed with SIGKILL {kill['kills']} times, its main",
            "process only, each time inside a collection, a flush or the maintenance (compaction, rollups, retention),",
            "in turn, or at any moment; restarted a few accelerated hours later each time.",
            "",
            "| Measure | Result |",
            "|---|---|",
            f"| Kills inside each job (several may run at once) | {phases} |",
            f"| Accelerated days covered | {kill['accelerated_days']} |",
            f"| Points the API served before a kill (acknowledged) | {kill['acknowledged_points']:,} |",
            f"| Of them within the raw retention at the end / missing | "
            f"{kill['acknowledged_within_raw_retention']:,} / {kill['lost']} |",
            f"| Raw rows / duplicate rows | {kill['raw_rows']:,} / {kill['duplicates']} |",
            f"| Raw days kept / rollup files | {kill['raw_days_kept']} / {kill['rollup_files']} |",
            f"| Parquet files / unreadable | {kill['parquet_files']} / {kill['unreadable_parquet_files']} |",
            f"| Worker processes outliving a killed agent | {kill['orphan_processes']} |",
            f"| Start to healthy (median) | {kill['startup_seconds_median']} s |",
            f"| Tracebacks in the log (the agent's) | {kill['tracebacks_in_log']} |",
            f"| Worker starts cut short by a kill (multiprocessing's `EOFError` on its closed pipe) | "
            f"{kill['worker_starts_cut_short']} |",
            "",
        ]
    lines += ["## Accelerated days", ""]
    if run is None:
        lines += ["Not run this time.", ""]
    else:
        rss, fds, query = run["rss_mb_first_last_max"], run["open_fds_first_last_max"], run["query_ms_first_last_max"]
        blocks = run["python_blocks_first_last_max"]
        lines += [
            f"{run['days']} days of the agent on a hand-moved clock ({run['real_seconds']} s real): a synthetic",
            f"textfile of {run['series']} gauges collected every 10 s, {run['flushes']:,} WAL flushes,",
            f"{run['maintenances']:,} hourly maintenances (each in a worker process, as the agent runs them);",
            f"retention {run['retention']}.",
            "",
            "| Measure (end of day 1 / last day / max) | Result |",
            "|---|---|",
            f"| Collections / collector errors | {run['collections']:,} / {run['collector_errors']} |",
            f"| RSS of the agent's process | {rss[0]} / {rss[1]} / {rss[2]} MiB |",
            f"| Python objects allocated (blocks) | {blocks[0]:,} / {blocks[1]:,} / {blocks[2]:,} |",
            f"| Open descriptors | {fds[0]} / {fds[1]} / {fds[2]} |",
            f"| Disk (cap 20 MB) | max {run['disk_bytes_max']:,} bytes |",
            f"| 24 h query of one series | {query[0]} / {query[1]} / {query[2]} ms |",
            f"| 24 h query, median of the first / last third of the days | {_thirds(run, 'query_ms')} ms |",
            f"| RSS, median of the first / last third of the days | {_thirds(run, 'rss_mb')} MiB |",
            "",
        ]
    lines += ["## Full disk", ""]
    if disk is None:
        lines += ["Not run: it mounts a tmpfs, which needs root (or was not asked for).", ""]
    else:
        lines += [
            f"The data directory on a 16 MiB tmpfs filled to the last byte for {disk['seconds']:g} s, then freed.",
            "",
            "| Measure | Result |",
            "|---|---|",
            f"| Log lines during the outage | {disk['log_lines_during']} |",
            f"| The status summary during it | {disk['status_finding']} |",
            f"| Events once space returned | {'; '.join(disk['events_after']) or 'none'} |",
            f"| Points served after (the held ones written) | {disk['points_served_after']} |",
            f"| Tracebacks in the log | {disk['tracebacks_in_log']} |",
            "",
        ]
    lines += ["## Raw results", "", "```json", json.dumps(results, indent=2), "```", ""]
    lines += kept
    return "\n".join(lines)


def _thirds(run: dict[str, Any], key: str) -> str:
    """The median of ``key`` over the first and over the last third of the days (a trend, not one noisy day)."""
    values = [day[key] for day in run["per_day"]]
    third = max(1, len(values) // 3)
    return f"{statistics.median(values[:third]):g} / {statistics.median(values[-third:]):g}"


def failures(results: dict[str, Any]) -> list[str]:
    """What went wrong, for ``--check`` and the exit status."""
    kill, run = results["kill_loop"], results["accelerated_days"]
    found = []
    if kill is not None:
        keys = ("lost", "duplicates", "unreadable_parquet_files", "orphan_processes", "tracebacks_in_log")
        found += [f"kill loop: {key} = {kill[key]}" for key in keys if kill[key]]
    if run is not None and run["collector_errors"]:
        found.append(f"accelerated days: {run['collector_errors']} collector errors")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--full-disk", type=float, default=120.0, metavar="SECONDS")
    parser.add_argument("--check", action="store_true", help="print the failures and exit 1 on any; write nothing")
    args = parser.parse_args(argv)
    import platform

    results = {
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, Linux {platform.release()}",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "kill_loop": kills(args.kills) if args.kills else None,
        "accelerated_days": days(args.days) if args.days else None,
        "full_disk": full_disk(args.full_disk) if args.full_disk else None,
    }
    found = failures(results)
    for line in found:
        print(line, file=sys.stderr)
    if args.check:
        print(json.dumps(results, indent=2))
        return 1 if found else 0
    command = ("python benchmarks/reliability.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    doc = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    DOC.write_text(render(_merged(results, doc, command), _kept_sections(doc)), encoding="utf-8")
    print(f"wrote {DOC}")
    return 1 if found else 0


_PARTS = ("kill_loop", "accelerated_days", "full_disk")


def _merged(results: dict[str, Any], doc: str, command: str) -> dict[str, Any]:
    """This run's parts, and the page's earlier figures for the parts not run this time (each with its command)."""
    try:
        raw = doc.split("## Raw results", 1)[1]
        previous = json.loads(raw.split("```json\n", 1)[1].split("\n```", 1)[0])
    except (IndexError, ValueError):
        previous = {}
    commands = dict(previous.get("commands", {}))
    if not commands and doc.startswith("# Reliability") and "Measured by `" in doc:  # a page of one run
        whole = f"{doc.split('Measured by `', 1)[1].split('`', 1)[0]} ({previous.get('date', '')})"
        commands = dict.fromkeys(_PARTS, whole)
    for part in _PARTS:
        if results[part] is not None:
            commands[part] = f"{command} ({results['date']})"
        elif previous.get(part) is not None:
            results[part] = previous[part]
    results["commands"] = {part: commands[part] for part in _PARTS if part in commands}
    return results


if __name__ == "__main__":
    sys.exit(main())
