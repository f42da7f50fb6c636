"""A log followed live: the lines of the agent's log stream (``GET /api/v1/logs/stream``) appended as they come.

:class:`LogTail` reads :meth:`~crucible_monitor.remote.RemoteMonitor.follow_logs` in a worker that lives as long as
the widget; when the stream drops or the agent refuses it, the widget says so in its border and connects again after
a backoff (:data:`BACKOFF_START` doubling up to :data:`BACKOFF_MAX`), starting over from the stream's first lines.
The lines are the host's text: shown as data (a ``Log`` parses no markup), secrets masked, control characters
written out as escapes so they cannot drive the terminal.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Protocol, runtime_checkable

from textual.widgets import Log

from crucible_monitor.errors import CrucibleError
from crucible_monitor.untrusted import mask_secrets

__all__ = ["BACKOFF_MAX", "BACKOFF_START", "FollowsLogs", "LogTail", "as_data", "next_backoff"]

BACKOFF_START = 0.5
"""Seconds before the first reconnection."""
BACKOFF_MAX = 15.0
"""The longest wait between reconnections."""
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


@runtime_checkable
class FollowsLogs(Protocol):
    """What can follow a log (:class:`~crucible_monitor.remote.RemoteMonitor`, or a recording)."""

    def follow_logs(
        self, source: str, *, lines: int = 20, contains: str | None = None, on_open: Callable[[], object] | None = None
    ) -> AsyncIterator[str]: ...


def as_data(line: str) -> str:
    """A host's log line as safe text: secrets masked, each control character but tab shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", mask_secrets(line))


def next_backoff(current: float) -> float:
    """The wait after ``current`` seconds: doubled, at most :data:`BACKOFF_MAX`."""
    return min(BACKOFF_MAX, current * 2)


class LogTail(Log):
    """The last lines of one log, followed live; ``state`` says how the stream goes (shown as the border subtitle)."""

    def __init__(self, source: str, *, lines: int = 100, id: str | None = None) -> None:
        """Args:
        source: a watched service, or a name in ``logs.files``.
        lines: the lines kept (and asked for when the stream starts).
        id: the widget id.
        """
        super().__init__(id=id, max_lines=lines, highlight=False)
        self.source = source
        self.keep = lines
        self.state = "connecting"
        self.connections = 0
        """Streams opened so far (reconnections included)."""

    def follow(self, ops: object) -> bool:
        """Follow the log through ``ops`` until the widget goes away; False when ``ops`` cannot stream logs."""
        if not isinstance(ops, FollowsLogs):
            return False
        self.run_worker(self._follow(ops), exclusive=True, group="logtail")
        return True

    def show_lines(self, lines: Iterable[str]) -> None:
        """Replace what is shown with ``lines`` (a log read without the stream), unless it shows them already."""
        safe = [as_data(line) for line in lines]
        if list(self.lines) != safe:
            self.clear()
            self.write_lines(safe)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.border_subtitle = state

    def _opened(self) -> None:
        """A new stream starts with the log's last lines: start over."""
        self.connections += 1
        self.clear()
        self._set_state("following")

    async def _follow(self, ops: FollowsLogs) -> None:
        backoff = BACKOFF_START
        while True:
            self._set_state("connecting")
            opened = self.connections
            try:
                async for line in ops.follow_logs(self.source, lines=self.keep, on_open=self._opened):
                    self.write_line(as_data(line))
                why = "the stream ended"
            except CrucibleError as exc:
                why = str(exc)
            if self.connections > opened:
                backoff = BACKOFF_START  # it worked, then dropped: try again soon
            elif not self.lines:
                self.write_line(as_data(f"(log unavailable: {why})"))
            self._set_state(f"reconnecting in {backoff:g} s: {as_data(why)}")
            await asyncio.sleep(backoff)  # the backoff before the next attempt, not a synchronisation
            backoff = next_backoff(backoff)
