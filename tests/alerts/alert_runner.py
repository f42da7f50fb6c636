"""An agent-like process for the restart test: samples → metric store → alert engine → outbox → a webhook.

Usage: ``alert_runner.py DIR WEBHOOK_URL``. It runs a fixed scenario on a tick clock (10 s per tick, the tick kept in
``DIR/tick`` so a restarted runner carries on where the killed one was): series ``i`` of ``SERIES`` is high during
ticks ``[3i, 3i + 12)``, so each fires once and resolves once. Every tick it stores the samples, evaluates, delivers
what is due and prints ``tick N firing=F pending=P``; once the scenario is over and the outbox is empty it prints
``done`` and exits. The test SIGKILLs it at random points and counts what the webhook received.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

from crucible_monitor.alerts.conditions import AlertInputs
from crucible_monitor.alerts.config import AlertingConfig
from crucible_monitor.alerts.runtime import Alerting
from crucible_monitor.config import StorageConfig
from crucible_monitor.models import Sample
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

SERIES = 8
BASE = 1_800_000_000.0
STEP = 10.0
LAST_TICK = 3 * (SERIES - 1) + 12 + 3


def config(url: str) -> AlertingConfig:
    return AlertingConfig.model_validate(
        {
            "rules": [{"name": "Load", "kind": "threshold", "metric": "load_value", "value": 0.5, "for": "20s"}],
            # a hang times out; an answer on a loaded machine must not (a timed-out 200 would be sent twice)
            "receivers": {"hook": {"type": "webhook", "url": url, "timeout": "2s"}},
            "route": {"group_by": ["..."], "group_wait": "0s", "group_interval": "10s", "repeat_interval": "1000h"},
            "delivery": {"initial_backoff": "10s", "max_backoff": "40s"},
        }
    )


def _save_tick(path: Path, tick: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(tick), encoding="utf-8")
    os.replace(tmp, path)


async def main(directory: Path, url: str) -> None:
    tick_file = directory / "tick"
    tick = int(tick_file.read_text(encoding="utf-8")) if tick_file.exists() else 0

    def clock() -> float:
        return BASE + tick * STEP

    store = MetricStore(directory / "metrics", StorageConfig(fsync=False), retention=timedelta(days=3650), clock=clock)
    store.open()
    state = StateDB(directory / "state.db", clock=clock)
    alerting = Alerting(config(url), state, AlertInputs(samples=store), host="runner", clock=clock)
    try:
        while True:
            store.append(
                Sample("load_value", 1.0 if 3 * i <= tick < 3 * i + 12 else 0.0, {"series": str(i)}, clock())
                for i in range(SERIES)
            )
            alerting.evaluate()
            await alerting.deliver()
            firing = len(alerting.operations.list_alerts(state="firing"))
            pending = len(alerting.outbox.pending())
            print(f"tick {tick} firing={firing} pending={pending}", flush=True)
            if tick >= LAST_TICK and pending == 0:
                print("done", flush=True)
                return
            tick += 1
            _save_tick(tick_file, tick)
    finally:
        await alerting.aclose()
        state.close()
        store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
