"""What the anomaly engine costs the agent: memory, and the time of a refit and of a scoring run.

Runs in a fresh child process so that RSS is its own: it imports what the agent imports, fills a metric store with
7 days of 1-minute samples of the key series, then creates the engine, refits (scikit-learn runs in a grandchild
process) and scores 60 one-minute runs. Prints JSON: RSS (MB, from ``/proc/self/statm``) at each stage, whether
scikit-learn or pandas got imported into the agent process, the fitting child's peak RSS, and timings.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

__all__ = ["run"]

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
DAYS = 7


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return round(int(f.read().split()[1]) * _PAGE_MB, 1)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _child() -> dict[str, object]:
    # the imports are part of the measurement: the agent's first, the engine's after the store is filled
    import numpy as np

    import crucible_monitor.monitor
    from crucible_monitor.config import StorageConfig
    from crucible_monitor.models import Sample
    from crucible_monitor.storage.state import StateDB
    from crucible_monitor.storage.store import MetricStore

    out: dict[str, object] = {"rss_agent_imports_mb": _rss_mb(), "agent_module": crucible_monitor.monitor.__name__}
    start = 1_764_288_000.0
    clock = _Clock(start + DAYS * 86400)
    with tempfile.TemporaryDirectory() as tmp:
        store = MetricStore(
            Path(tmp) / "metrics", StorageConfig(fsync=False), retention=timedelta(days=30), clock=clock
        )
        store.open()
        rng = np.random.default_rng(0)
        disk = 0.0
        for minute in range(DAYS * 1440 + 61):
            ts = start + minute * 60.0
            disk += 3e6 * (1 + 0.2 * rng.standard_normal())
            store.append(
                [
                    Sample("cpu_usage_ratio", 0.1 + 0.02 * rng.standard_normal(), {"cpu": "total"}, ts),
                    Sample("load1", 0.5 + 0.1 * rng.standard_normal(), {}, ts),
                    Sample("memory_used_ratio", 0.4 + 0.01 * rng.standard_normal(), {}, ts),
                    Sample("disk_read_bytes_total", disk, {"device": "sda"}, ts),
                    Sample("network_receive_bytes_total", disk / 3, {"interface": "eth0"}, ts),
                ]
            )
            if minute % 1440 == 1439:
                store.flush()
        state = StateDB(Path(tmp) / "state.db", clock=clock)
        filled = _rss_mb()
        out["rss_store_filled_mb"] = filled

        from crucible_monitor.analysis.engine import AnomalyEngine  # measured: the import's own cost
        from crucible_monitor.config import AnalysisConfig

        out["rss_engine_imported_mb"] = _rss_mb()
        engine = AnomalyEngine(store, state, AnalysisConfig(), data_dir=Path(tmp), host="bench", clock=clock)
        began = time.perf_counter()
        info = engine.refit()
        out["refit_seconds"] = round(time.perf_counter() - began, 3)
        out["refit_buckets"] = info.samples if info else 0
        out["fit_child_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        timings = []
        for minute in range(60):
            clock.now = start + DAYS * 86400 + minute * 60.0 + 75
            began = time.perf_counter()
            engine.score()
            timings.append(time.perf_counter() - began)
        out["score_run_ms_median"] = round(sorted(timings)[len(timings) // 2] * 1000, 2)
        after = _rss_mb()
        out["rss_after_refit_and_60_scores_mb"] = after
        out["engine_rss_delta_mb"] = round(after - filled, 1)
        out["sklearn_in_agent_process"] = "sklearn" in sys.modules
        out["pandas_in_agent_process"] = "pandas" in sys.modules
        state.close()
        store.close()
    return out


def run() -> dict[str, object]:
    """Measure in a fresh child process."""
    result = subprocess.run(
        [sys.executable, __file__, "--child"], check=True, capture_output=True, text=True, timeout=600
    )
    measured: dict[str, object] = json.loads(result.stdout)
    return measured


if __name__ == "__main__":
    print(json.dumps(_child() if "--child" in sys.argv else run(), indent=2))
