"""Alert evaluation: one engine cycle with 500 rules over current samples (goal < 20 ms).

A metric store holds 1,000 series (100 metrics × 10 instances) and a state.db in a temporary directory; 500
threshold rules each watch one series, and 25 of them (5 %) fire, so every cycle also updates 25 firing alerts and
looks at their notification groups. Each timed cycle first stores a new sample per series (untimed), then runs
``AlertEngine.evaluate()``: reading the inputs, evaluating every rule, the lifecycle and dispatch in one
transaction. ``conditions_ms`` times the rule evaluation alone (no state.db).
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from crucible_monitor.alerts.conditions import AlertInputs, Snapshot, evaluate
from crucible_monitor.alerts.config import AlertingConfig
from crucible_monitor.alerts.engine import AlertEngine
from crucible_monitor.config import StorageConfig
from crucible_monitor.models import Sample
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

__all__ = ["run"]

RULES = 500
METRICS = 100
INSTANCES = 10
FIRING = 25
START = 1_800_000_000.0


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def run(cycles: int = 60) -> dict[str, object]:
    """Time ``cycles`` engine cycles after a warm-up; returns milliseconds."""
    rng = random.Random(4)
    values = {(m, i): rng.uniform(0.0, 0.8) for m in range(METRICS) for i in range(INSTANCES)}
    rules = []
    for r in range(RULES):
        metric, instance = r % METRICS, (r // METRICS) % INSTANCES
        rules.append(
            {
                "name": f"Rule{r}",
                "kind": "threshold",
                "metric": f"bench_metric_{metric}",
                "match": {"instance": str(instance)},
                "value": 0.9,
                "for": "30s",
            }
        )
        if r < FIRING:
            values[(metric, instance)] = 0.95
    config = AlertingConfig.model_validate(
        {"rules": rules, "receivers": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}}}
    )
    now = START

    def clock() -> float:
        return now

    with tempfile.TemporaryDirectory() as tmp:
        store = MetricStore(Path(tmp) / "metrics", StorageConfig(fsync=False), retention=timedelta(days=1), clock=clock)
        store.open()
        state = StateDB(Path(tmp) / "state.db", clock=clock)
        engine = AlertEngine(config, state, AlertInputs(samples=store), host="bench", clock=clock)
        cycle_ms: list[float] = []
        conditions_ms: list[float] = []
        try:
            for cycle in range(cycles + 10):
                now += 10
                store.append(Sample(f"bench_metric_{m}", v, {"instance": str(i)}, now) for (m, i), v in values.items())
                started = time.perf_counter()
                engine.evaluate()
                elapsed = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                snapshot = Snapshot(engine.inputs, now, 300)
                for rule in engine.rules.values():
                    evaluate(rule, snapshot)
                conditions = (time.perf_counter() - started) * 1000
                if cycle >= 10:  # the first cycles open the alerts and reach steady state
                    cycle_ms.append(elapsed)
                    conditions_ms.append(conditions)
            firing = state.execute("SELECT count(*) FROM alerts WHERE state = 'firing'")[0][0]
        finally:
            state.close()
            store.close()
    return {
        "rules": RULES,
        "series": METRICS * INSTANCES,
        "firing_alerts": firing,
        "cycles": cycles,
        "cycle_ms": _stats(cycle_ms),
        "conditions_ms": _stats(conditions_ms),
        "goal_ms": 20,
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
