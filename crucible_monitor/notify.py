"""systemd's notify protocol without a dependency: ``READY=1`` once the agent runs, ``WATCHDOG=1`` from its loop.

Only when systemd asks for it: ``NOTIFY_SOCKET`` names a unix datagram socket (a path, or ``@name`` for an abstract
one); the watchdog interval is half of ``WATCHDOG_USEC`` (``WatchdogSec=`` in the unit), and only for the process
``WATCHDOG_PID`` names when it is set. Outside systemd every call here does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

__all__ = ["notify", "schedule_watchdog", "watchdog_interval"]

logger = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def _address() -> str | None:
    address = os.environ.get(NOTIFY_SOCKET, "")
    if address.startswith("@"):
        return "\0" + address[1:]  # abstract namespace
    return address if address.startswith("/") else None


def notify(message: str) -> bool:
    """Send one notification (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``); False when there is no socket or it
    cannot be reached (logged, never raised: a lost notification must not stop the agent)."""
    address = _address()
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(message.encode("utf-8"))
        except OSError as exc:
            logger.warning("cannot notify systemd at %s: %s", os.environ.get(NOTIFY_SOCKET), exc.strerror or exc)
            return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half the unit's ``WatchdogSec``), or None when no watchdog is set
    for this process."""
    if _address() is None:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


def schedule_watchdog(scheduler: AsyncIOScheduler) -> None:
    """Under a unit with ``WatchdogSec``, ping systemd from the event loop itself (a coroutine job runs on the loop,
    not in a thread): a hung loop stops the pings and systemd restarts the agent."""
    from apscheduler.triggers.interval import IntervalTrigger

    every = watchdog_interval()
    if every is not None:

        async def ping() -> None:
            notify("WATCHDOG=1")

        scheduler.add_job(ping, IntervalTrigger(seconds=every), id="watchdog", next_run_time=datetime.now())
