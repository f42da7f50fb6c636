"""Monolog log files of a Laravel app: the entry parser, reading a file backwards, and which files to read.

Only an entry's first line (``[date] channel.LEVEL: message context extra``) is parsed: it carries the time,
channel, level, message and the exception class of the context; the stack-trace lines after it are skipped.
"""

from __future__ import annotations

import glob
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from crucible_monitor.config import LaravelAppConfig

__all__ = [
    "ERROR_LEVELS",
    "LEVELS",
    "MAX_MESSAGE_CHARS",
    "LogEntry",
    "entries_newest_first",
    "log_files",
    "parse_log_line",
]

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""Monolog's levels (RFC 5424), lowest first."""
ERROR_LEVELS = frozenset(LEVELS[LEVELS.index("error") :])
MAX_MESSAGE_CHARS = 500
_SCAN_BLOCK = 1024 * 1024
_ENTRY = re.compile(
    rb"\[(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:?\d{2}|Z)?)\] "
    rb"(\S+?)\.(DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL|ALERT|EMERGENCY): ?"
)
_EXCEPTION = re.compile(rb'"exception":"\[object\] \(((?:[A-Za-z_][A-Za-z0-9_]*\\\\)*[A-Za-z_][A-Za-z0-9_]*)\(code: ')
_CONTEXT = re.compile(r' (?:\{"|\[\{|\[\] \[\]$|\{\} \[\]$|\[\]$)')


@dataclass(frozen=True, slots=True)
class LogEntry:
    """The first line of one Monolog entry."""

    ts: float
    channel: str
    level: str
    """Lower case, one of :data:`LEVELS`."""
    message: str
    exception: str | None
    """The class of the exception in the entry's context, e.g. ``App\\Exceptions\\PaymentFailed``."""


def parse_log_line(line: bytes, zone: zoneinfo.ZoneInfo) -> LogEntry | None:
    """An entry's first line (``[date] channel.LEVEL: message context extra``); None for any other line.

    Times without an offset (Laravel's ``Y-m-d H:i:s``) are in ``zone``.
    """
    match = _ENTRY.match(line)
    if match is None:
        return None
    stamp, channel, level = match.groups()
    try:
        moment = datetime.fromisoformat(stamp.decode().replace(" ", "T", 1))
    except ValueError:  # digits that are no date (month 13...)
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    exception = _EXCEPTION.search(line, match.end())
    rest = line[match.end() :].decode("utf-8", "replace").rstrip()
    context = _CONTEXT.search(rest)
    message = (rest[: context.start()] if context else rest).strip()
    return LogEntry(
        ts=moment.timestamp(),
        channel=channel.decode("utf-8", "replace"),
        level=level.decode().lower(),
        message=message[:MAX_MESSAGE_CHARS],
        exception=exception.group(1).replace(b"\\\\", b"\\").decode() if exception else None,
    )


def entries_newest_first(path: Path, since: float, zone: zoneinfo.ZoneInfo, budget: list[int]) -> Iterator[LogEntry]:
    """The entries of one log file from its end back to ``since``, reading blocks backwards within ``budget[0]``."""
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        carry = b""
        while end > 0:
            if budget[0] <= 0:
                return
            start = max(0, end - _SCAN_BLOCK)
            handle.seek(start)
            block = handle.read(end - start) + carry
            budget[0] -= end - start
            lines = block.split(b"\n")
            carry = lines.pop(0) if start > 0 else b""
            for line in reversed(lines):
                entry = parse_log_line(line, zone)
                if entry is None:
                    continue
                if entry.ts < since:
                    return
                yield entry
            end = start


def log_files(app: LaravelAppConfig, since: float) -> list[Path]:
    """The app's log files written to since ``since``, newest first."""
    files: dict[Path, float] = {}
    for pattern in app.log_patterns():
        for name in glob.glob(pattern):
            try:
                files[Path(name)] = Path(name).stat().st_mtime
            except OSError:
                continue
    return sorted((path for path, mtime in files.items() if mtime >= since), key=files.__getitem__, reverse=True)
