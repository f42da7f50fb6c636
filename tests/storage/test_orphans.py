"""A SIGKILLed agent leaves no storage worker behind: the worker dies with its parent, even mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
from supervisor_fixture import wait_until

PARENT = Path(__file__).with_name("pool_parent.py")
DEADLINE = 30.0


def test_a_busy_storage_worker_dies_when_its_parent_is_sigkilled() -> None:
    parent = subprocess.Popen([sys.executable, str(PARENT)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = psutil.Process(int(parent.stdout.readline()))  # the worker is in its 600 s job now
    try:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()

        def worker_gone() -> bool:
            return not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE

        wait_until(worker_gone, DEADLINE, "the busy worker to die with its parent")
    finally:
        if worker.is_running():
            worker.kill()
        parent.stdout.close()
