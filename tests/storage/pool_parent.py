"""A stand-in for the agent in the orphan test: starts a storage worker pool as the agent does and keeps its one
worker busy; prints the worker's pid. Run as ``python pool_parent.py [--untied]``."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from crucible_monitor.storage.workers import die_with_parent


def busy() -> None:
    print(os.getpid(), flush=True)
    time.sleep(600)  # a long Parquet job, from the test's point of view


if __name__ == "__main__":
    tied = "--untied" not in sys.argv
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=get_context("spawn"),
        max_tasks_per_child=1,
        initializer=die_with_parent if tied else None,
        initargs=(os.getpid(),) if tied else (),
    )
    pool.submit(busy).result()
