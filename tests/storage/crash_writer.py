"""A writer process for the crash test: appends numbered batches, flushing and compacting as it goes.

It prints ``ack <batch>`` after each append returns; the test SIGKILLs it at random points and checks that every
acknowledged batch survives exactly once. It resumes one tick after the newest sample the store holds (the killed
run may have written batches beyond the last acknowledgement the test read). Usage: ``crash_writer.py DIR BATCH``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from crucible_monitor.config import StorageConfig
from crucible_monitor.models import Sample
from crucible_monitor.storage.store import MetricStore

SERIES = 20
TICK_SECONDS = 1800.0  # half an hour per batch, so a run crosses days and exercises rollups
BASE = 1_760_000_400.0  # a multiple of TICK_SECONDS, so query buckets line up with ticks


def main() -> None:
    directory, first_batch = Path(sys.argv[1]), int(sys.argv[2])
    tick = 0
    store = MetricStore(
        directory,
        StorageConfig(fsync=False, raw_retention=timedelta(days=3650), minute_retention=timedelta(days=3650)),
        retention=timedelta(days=3650),
        clock=lambda: BASE + tick * TICK_SECONDS,
    )
    store.open()
    newest = store.query(
        "crash_value", start=BASE, end=BASE + 1e9, step=TICK_SECONDS, agg="count", labels={"series": "0"}
    )
    if newest:
        tick = round((newest[0].timestamps[-1] - BASE) / TICK_SECONDS) + 1
    for batch in range(first_batch, first_batch + 1_000_000):
        ts = BASE + tick * TICK_SECONDS
        store.append(Sample("crash_value", batch, {"series": str(i)}, ts) for i in range(SERIES))
        print(f"ack {batch}", flush=True)
        tick += 1
        if batch % 7 == 0:
            store.flush()
        if batch % 13 == 0:
            store.maintain()


if __name__ == "__main__":
    main()
