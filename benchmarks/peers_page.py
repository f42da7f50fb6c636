"""The peers section of docs/benchmarks.md: a ratio table (ours / theirs) with the raw numbers, between markers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["BEGIN", "END", "section", "write"]

BEGIN = "<!-- peers: begin (python benchmarks/peers.py rewrites this section) -->"
END = "<!-- peers: end -->"


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}×" if theirs else "–"


def _failed(part: dict[str, Any]) -> str:
    """A measurement's error as one table cell (no pipes, no line breaks)."""
    error = " ".join(str(part["error"]).split()).replace("|", "/")
    return f"could not run here: {error}"


def section(results: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md, markers included."""
    rows: list[tuple[str, str, str, str]] = []
    node, ours = results["node_exporter"], results["system_collector"]
    rows.append(
        (
            "CPU per sample: our system collector's cycle / a node_exporter scrape",
            _failed(ours)
            if "error" in ours
            else f"{ours['cpu_us_per_sample']} µs ({ours['series']} series, {ours['cpu_ms_per_cycle']} ms a cycle)",
            _failed(node)
            if "error" in node
            else f"{node['cpu_us_per_sample']} µs ({node['series']} series, {node['cpu_ms_per_scrape']} ms a scrape)",
            "–" if "error" in node or "error" in ours else _ratio(ours["cpu_us_per_sample"], node["cpu_us_per_sample"]),
        )
    )
    both = results["netdata_and_agent"]
    if "error" in both:
        rows.append(("At 1 s: the agent / Netdata", "–", _failed(both), "–"))
    else:
        agent, netdata = both["agent"], both["netdata"]
        for label, key, unit in (
            ("CPU per sample stored, process tree", "cpu_us_per_sample", " µs"),
            ("CPU, process tree", "cpu_percent_of_one_core", " % of a core"),
            ("Samples per second", "samples_per_second", ""),
            ("RSS, every process of the tree", "rss_mb", " MB"),
            ("PSS, every process of the tree", "pss_mb", " MB"),
        ):
            rows.append(
                (
                    f"At 1 s, the agent / Netdata: {label}",
                    f"{agent[key]}{unit}",
                    f"{netdata[key]}{unit}",
                    _ratio(agent[key], netdata[key]),
                )
            )
    store = results["tsdb"]
    if "error" in store:
        rows.append(
            (
                "Bytes per sample, one day: our tiers / Prometheus's TSDB",
                "–",
                _failed(store),
                "–",
            )
        )
    else:
        mine = store["ours"]
        for label, value in (
            ("raw tier", mine["raw_bytes_per_sample"]),
            ("raw + 1m + 1h tiers", mine["raw_1m_1h_bytes_per_raw_sample"]),
        ):
            rows.append(
                (
                    f"Bytes per sample, the synthetic day: our {label} / TSDB blocks",
                    str(value),
                    str(store["bytes_per_sample"]),
                    _ratio(value, store["bytes_per_sample"]),
                )
            )
        rows.append(
            (
                "Bytes per sample, the synthetic day: our raw tier / TSDB chunks alone",
                str(mine["raw_bytes_per_sample"]),
                str(store["chunk_bytes_per_sample"]),
                _ratio(mine["raw_bytes_per_sample"], store["chunk_bytes_per_sample"]),
            )
        )
    s = results["settings"]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    versions = ", ".join(f"{package} {version}" for package, version in results["versions"].items())
    netdata_note = tsdb_note = ""
    day_samples = f" ({store['samples']:,} samples)" if "samples" in store else ""
    if "error" not in both:
        netdata_note = (
            f" Netdata's samples: its {both['netdata']['dimensions']:,} dimensions, each collected every\n  "
            "`update_every` of its chart; ours: the rows stored with a timestamp in the window, read back after the\n  "
            "agent stopped."
        )
    if "error" not in store:
        tsdb_note = (
            f" promtool wrote {store['blocks']} blocks of 2 h (it has no flag for longer ones; Prometheus would\n  "
            "compact them later, which keeps the chunks and merges the indexes):\n  "
            f"{store['bytes']['total']:,} bytes, {store['bytes']['chunks']:,} of them chunks."
        )
    return f"""{BEGIN}
## Peers side by side

Measured by `python benchmarks/peers.py` (as root: it installs Debian's packages when they are missing) on
{results["date"]}: {versions}. The daemons run in the foreground on loopback ports with temporary directories (no
systemd here). Timings are medians of {s["rounds"]} rounds of the same run.

- **node_exporter**: {s["scrapes"]} scrapes a round back to back, its CPU from `/proc/<pid>/stat` per sample
  returned (serving and formatting the text included); ours: {s["cycles"]} system collector cycles a round
  in-process (collection only).
- **Netdata and the agent** (default collectors, `collect_interval: 1s`) side by side over the same
  {s["window_s"]:g} s windows after a {s["warm_up_s"]:g} s warm-up: CPU of each process tree (children included)
  per sample; RSS and PSS of every process of the tree.{netdata_note}
- **Bytes**: the synthetic day of `bench_storage.py`{day_samples} as OpenMetrics through
  `promtool tsdb create-blocks-from openmetrics`, against the same day written through our store (raw tier
  compacted, rollups by `maintain()`).{tsdb_note}

| Measure | Ours | Theirs | Ours / theirs |
|---|---|---|---|
{table}
{END}"""


def write(results: dict[str, Any], doc: Path) -> None:
    """Replace the section between the markers (or add it before the JSON block) and ``peers`` in the JSON block."""
    page = doc.read_text(encoding="utf-8")
    head, _, held = page.rpartition("```json\n")
    data, _, tail = held.partition("\n```")
    numbers = json.loads(data)
    numbers["peers"] = results
    if BEGIN in head and END in head:
        before, _, rest = head.partition(BEGIN)
        head = before + section(results) + rest.partition(END)[2]
    else:
        head = head.rstrip("\n") + "\n\n" + section(results) + "\n\n"
    doc.write_text(f"{head}```json\n{json.dumps(numbers, indent=2)}\n```{tail}", encoding="utf-8")
