"""``GET /api/v1/logs/stream``: a log followed live as server-sent events (``text/event-stream``), for browsers, the
dashboard or ``curl -N``.

The stream opens with the source's last ``lines`` lines, then sends each new line as it appears: every ``poll``
seconds it reads the source's tail again (the same reader as ``tail_logs``: a journal, a supervisor program's log,
a configured file or a Laravel app's logs) and sends what follows the lines it sent already. One event per line
(``data: <line>``); a comment every ``keepalive`` seconds keeps proxies from closing a quiet stream. The lines are
the host's text, raw: whoever shows them to a model fences them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from crucible_monitor.schemas import LogTail

__all__ = ["follow", "new_lines"]

_WINDOW = 200
"""Lines read at each poll: new lines are found after the overlap with what was sent."""


def new_lines(sent: Sequence[str], current: Sequence[str]) -> list[str]:
    """The lines of ``current`` after the last place where the end of ``sent`` stands in it (the longest such end
    first); all of ``current`` when it holds none of it (the log rotated, or more came than one read holds)."""
    now = list(current)
    for overlap in range(min(len(sent), len(now)), 0, -1):
        tail = list(sent[-overlap:])
        for end in range(len(now), overlap - 1, -1):
            if now[end - overlap : end] == tail:
                return now[end:]
    return now


def _event(line: str) -> str:
    return "".join(f"data: {part}\n" for part in line.split("\n")) + "\n"


async def follow(
    tail: Callable[[int], Awaitable[LogTail]],
    *,
    lines: int,
    poll: float = 1.0,
    keepalive: float = 15.0,
) -> AsyncIterator[str]:
    """Server-sent events of ``tail(n)``'s log: its last ``lines`` lines, then each new one."""
    first = await tail(lines)
    sent = list(first.lines)
    for line in sent:
        yield _event(line)
    quiet_since = time.monotonic()
    while True:
        await asyncio.sleep(poll)  # the poll interval: the log is read again this often
        current = (await tail(max(lines, _WINDOW))).lines
        fresh = new_lines(sent, current)
        for line in fresh:
            yield _event(line)
        if fresh:
            sent = list(current)
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= keepalive:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
