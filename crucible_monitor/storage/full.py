"""A full disk, told once a minute: the agent's jobs (alert evaluation, flushes, analysis, delivery) all fail while
the data directory's filesystem is full, and each would otherwise log a traceback every cycle.

And a space reserve, so that alerting goes on: the agent keeps a file of :data:`RESERVE_BYTES` in its data
directory and deletes it when the disk fills, which leaves ``state.db`` (alerts, their notifications, events, the
audit) room to write; samples stay held in memory until the disk has twice the reserve free again (they would
eat it), and the reserve is taken again once they are written.
"""

from __future__ import annotations

import errno
import logging
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from crucible_monitor.errors import DiskFull

__all__ = ["RESERVE_BYTES", "JobLog", "SpaceReserve", "free_bytes", "is_disk_full"]

logger = logging.getLogger("crucible_monitor.agent")

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

RESERVE_BYTES = 4 * 1024**2
"""Space kept for ``state.db`` while the disk is full (thousands of alert transitions and events)."""


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

    def __init__(
        self, clock: Callable[[], float] = time.time, every: float = 60.0, on_full: Callable[[], object] = lambda: None
    ) -> None:
        self.clock = clock
        self.every = every
        self.on_full = on_full
        self._full_logged = -math.inf

    def disk_full(self, what: str, exc: BaseException) -> None:
        """The disk is full: call ``on_full`` and say so, at most once per ``every`` seconds."""
        self.on_full()
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


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged writer can still use on ``directory``'s filesystem (0 if it cannot be read)."""
    try:
        found = os.statvfs(directory)
    except OSError:
        return 0
    return found.f_bavail * found.f_frsize


class SpaceReserve:
    """A file of ``size`` bytes at ``path``, given up when the disk fills and taken again once space returns."""

    def __init__(self, path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = path
        self.size = size
        self.released = False
        """Given up for a full disk (and not taken again yet)."""

    def take(self) -> bool:
        """Create the file (allocated, not sparse) if it is missing and the disk has twice its size free: the
        reserve must not be what fills a disk. Returns whether it is in place. Called once space has returned: samples
        no longer wait for it, whether it could be taken or not."""
        self.released = False
        if self.path.exists():
            return True
        if free_bytes(self.path.parent) < 2 * self.size:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            return False
        try:
            os.posix_fallocate(fd, 0, self.size)
        except OSError:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            return False
        os.close(fd)
        return True

    def release(self) -> None:
        """Delete the file (the disk is full); a no-op when it is not there."""
        if self.path.exists():
            try:
                self.path.unlink()
            except OSError:
                logger.warning("cannot delete the space reserve %s", self.path)
                return
            self.released = True
            logger.warning("the disk is full: released %d MiB kept for state.db", self.size // 1024**2)

    def holding_samples(self) -> bool:
        """Whether samples must stay in memory: the reserve was given up and the disk has not twice its size free."""
        return self.released and free_bytes(self.path.parent) < 2 * self.size
