"""A full disk, told once a minute: the agent's jobs (alert evaluation, flushes, analysis, delivery) all fail while
the data directory's filesystem is full, and each would otherwise log a traceback every cycle."""

from __future__ import annotations

import errno
import logging
import math
import sqlite3
import sys
import time
from collections.abc import Callable

from crucible_monitor.errors import DiskFull

__all__ = ["JobLog", "is_disk_full"]

logger = logging.getLogger("crucible_monitor.agent")

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception it was raised from, says the disk (or the quota) is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and (exc.errno in _FULL_ERRNOS or "No space left on device" in str(exc)):
            return True
        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class JobLog:
    """Logs a job's failure with its traceback, but a full disk as one warning a minute for every job together."""

    def __init__(self, clock: Callable[[], float] = time.time, every: float = 60.0) -> None:
        self.clock = clock
        self.every = every
        self._full_logged = -math.inf

    def disk_full(self, what: str, exc: BaseException) -> None:
        """The disk is full: say so, at most once per ``every`` seconds."""
        now = self.clock()
        if now - self._full_logged >= self.every:
            self._full_logged = now
            logger.warning("%s: the disk is full (%s); retrying (logged once a minute while it lasts)", what, exc)

    def failed(self, what: str) -> None:
        """Call in an ``except`` block: the exception being handled, logged as it deserves."""
        exc = sys.exc_info()[1]
        if exc is not None and is_disk_full(exc):
            self.disk_full(what, exc)
        else:
            logger.exception("%s", what)
