"""A stand-in for the agent in the orphan test: starts the agent's storage worker pool and keeps its one worker
busy; prints the worker's pid."""

from __future__ import annotations

import os
import time

from crucible_monitor.storage.workers import worker_pool


def busy() -> None:
    print(os.getpid(), flush=True)
    time.sleep(600)  # a long Parquet job, from the test's point of view


if __name__ == "__main__":
    worker_pool().submit(busy).result()
