"""The benchmark scripts that write docs/benchmarks.md: the peers section is rewritten in place between its markers
(the rest of the page kept, a peer's failure reported beside the others' numbers), and the scaling benchmark's
synthetic population has exactly the series it claims. No timings are asserted: those are the benchmarks' job."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


peers_page = _load("peers_page")
bench_scaling = _load("bench_scaling")


def _results(node_us: float = 14.0) -> dict[str, Any]:
    side = {
        "cpu_us_per_sample": 6.5,
        "cpu_percent_of_one_core": 0.8,
        "samples_per_second": 1200.0,
        "rss_mb": 67.0,
        "pss_mb": 50.0,
    }
    return {
        "date": "2026-12-03",
        "versions": {"netdata": "1.37.1-2"},
        "settings": {"rounds": 5, "scrapes": 40, "cycles": 200, "warm_up_s": 30.0, "window_s": 30.0},
        "node_exporter": {"series": 507, "cpu_us_per_sample": node_us, "cpu_ms_per_scrape": 7.0},
        "system_collector": {"series": 102, "cpu_us_per_sample": 7.0, "cpu_ms_per_cycle": 0.7},
        "netdata_and_agent": {"netdata": {**side, "dimensions": 1232}, "agent": {**side, "cpu_us_per_sample": 65.0}},
        "tsdb": {
            "samples": 100,
            "blocks": 12,
            "bytes": {"total": 372, "chunks": 356, "index": 10},
            "bytes_per_sample": 3.72,
            "chunk_bytes_per_sample": 3.56,
            "ours": {"raw_bytes_per_sample": 1.21, "raw_1m_1h_bytes_per_raw_sample": 2.25},
        },
    }


def _page(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    return text, json.loads(text.rsplit("```json\n", 1)[1].split("\n```", 1)[0])


def test_the_peers_section_is_rewritten_in_place_and_the_rest_of_the_page_kept(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text('# Benchmarks\n\nOther numbers.\n\n```json\n{"collect": {"series": 102}}\n```\n', encoding="utf-8")
    peers_page.write(_results(node_us=14.0), doc)
    peers_page.write(_results(node_us=20.0), doc)
    text, numbers = _page(doc)
    assert text.count(peers_page.BEGIN) == 1 and text.count(peers_page.END) == 1
    assert text.startswith("# Benchmarks\n\nOther numbers.\n")
    assert numbers["collect"] == {"series": 102}
    assert numbers["peers"]["node_exporter"]["cpu_us_per_sample"] == 20.0
    assert "| 7.0 µs (102 series, 0.7 ms a cycle) | 20.0 µs (507 series, 7.0 ms a scrape) | 0.35× |" in text
    assert "14.0 µs" not in text


def test_a_peer_that_cannot_run_is_reported_with_its_error_beside_the_others() -> None:
    results = _results()
    results["netdata_and_agent"] = {"error": "RuntimeError: netdata exited with 1 | no systemd\nat start"}
    text = peers_page.section(results)
    assert "could not run here: RuntimeError: netdata exited with 1 / no systemd at start" in text
    assert "| 1.21 | 3.72 | 0.33× |" in text  # the TSDB comparison still reported
    assert "0.50×" in text  # and node_exporter's (7.0 / 14.0)


def test_the_scaling_population_has_the_series_it_claims_and_the_canary_alone_in_its_metric() -> None:
    for size in (1_000, 10_001):
        series = bench_scaling.population(size)
        assert len({(d.metric, json.dumps(d.labels, sort_keys=True)) for d in series}) == size
        assert [d.metric for d in series].count(bench_scaling.CANARY) == 1
