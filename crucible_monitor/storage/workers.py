"""The storage worker pool: one short-lived process at a time, tied to the agent (Linux ``PR_SET_PDEATHSIG``)."""

from __future__ import annotations

import ctypes
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

__all__ = ["die_with_parent", "worker_pool"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent (pid ``parent``) dies; a worker pool's initializer.

    Without it a SIGKILLed agent leaves its Parquet worker (and multiprocessing's resource tracker, which waits for
    the worker) running for good.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def worker_pool() -> ProcessPoolExecutor:
    """A pool of one spawned worker that runs one job and exits (so its memory goes back), and dies with us."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=get_context("spawn"),
        max_tasks_per_child=1,
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )
