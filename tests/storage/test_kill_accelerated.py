"""SIGKILLs of the real agent (``crucible-monitor serve`` on a clock 60× real time) aimed at collection, flush and
maintenance (compaction, rollups, retention): no acknowledged sample lost, none stored twice, every Parquet file
readable, no worker outliving the agent. The same loop with 100 kills writes ``docs/reliability.md``
(``python benchmarks/reliability.py``); CI runs 100 too (``.ci/run``), this test a round of each target phase
several times over so the suite stays short."""

from __future__ import annotations

from pathlib import Path

import kill_loop


def test_sigkills_during_collection_flush_and_maintenance_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    result = kill_loop.run(tmp_path, kills=12)
    assert result["kills"] == 12
    assert {"collect", "flush", "maintain"} <= set(result["kills_by_phase"]), result
    assert result["acknowledged_points"] > 0
    assert result["lost"] == 0, result
    assert result["duplicates"] == 0, result
    assert result["unreadable_parquet_files"] == 0, result
    assert result["orphan_processes"] == 0, result
    assert result["tracebacks_in_log"] == 0, result
    # the last maintenance finished what the killed ones began: raw days beyond the retention gone, rollups written
    assert result["raw_days_kept"] <= kill_loop.RAW_RETENTION_DAYS + 1, result
    assert result["accelerated_days"] < 2 or result["rollup_files"] > 0, result
