"""The last lines of a service's log (journal or supervisor), of a configured log file (a glob: the newest file it
matches) or of a Laravel app's logs (``laravel:<app>``), filtered as plain text.

Nothing here goes through a shell: journalctl gets an argument list, supervisor's logs come over XML-RPC, files
are read from their end. Output is bounded: at most ``MAX_LINES`` lines of at most ``MAX_LINE_CHARS`` characters.
"""

from __future__ import annotations

import errno
import glob
import os
import stat
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from crucible_monitor.config import SupervisorConfig
from crucible_monitor.errors import CollectorError, NotFoundError
from crucible_monitor.managers.supervisor import SUPERVISOR_ERRORS, SupervisorClient
from crucible_monitor.managers.systemd import journalctl_argv, run_systemctl
from crucible_monitor.schemas import LogTail, ServiceStatus

__all__ = ["MAX_LINES", "tail_log"]

MAX_LINES = 500
MAX_LINE_CHARS = 500
_READ_BYTES = 1024 * 1024  # what is searched for the filter, from the end
_JOURNAL_TIMEOUT = 10.0


def _select(text: str, lines: int, contains: str | None) -> tuple[list[str], bool]:
    found = [line[:MAX_LINE_CHARS] for line in text.splitlines() if line.strip()]
    if contains:
        needle = contains.lower()
        found = [line for line in found if needle in line.lower()]
    return found[-lines:], len(found) > lines


def _read_end(path: Path) -> str:
    """The end of a regular file, opened without following a symlink in its last component.

    A writable log directory (a web app's ``storage/logs``) must not become a way to read other files: a link
    planted there in place of the log is refused, and so is anything but a regular file (a FIFO would block).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    with os.fdopen(fd, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _READ_BYTES))
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    return text if size <= _READ_BYTES else text.partition("\n")[2]  # drop the partial first line


def newest(patterns: Sequence[str]) -> Path | None:
    """The most recently modified regular file matching any of ``patterns`` (globs or plain paths); symbolic links
    are not followed, so a link planted in a log directory is never picked."""
    found: list[tuple[float, str]] = []
    for pattern in patterns:
        for name in glob.glob(pattern) if glob.has_magic(pattern) else [pattern]:
            try:
                info = os.lstat(name)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found.append((info.st_mtime, name))
    return Path(max(found)[1]) if found else None


def tail_log(
    source: str,
    *,
    lines: int,
    contains: str | None,
    services: Mapping[str, ServiceStatus],
    files: Mapping[str, Path],
    supervisor: SupervisorConfig,
    apps: Mapping[str, Sequence[str]] | None = None,
) -> LogTail:
    """The last ``lines`` lines of ``source`` containing ``contains``: a watched service, a name in ``logs.files``
    (a path or glob; a glob reads its newest file) or ``laravel:<app>`` (``apps``: name → the app's log globs).

    Raises:
        NotFoundError: ``source`` is none of these; the message lists the valid sources.
        CollectorError: the log cannot be read (no journal here, supervisord down, no file matches, unreadable).
    """
    lines = max(1, min(lines, MAX_LINES))
    patterns = {name: [str(path)] for name, path in files.items()}
    patterns |= {f"laravel:{name}": list(globs) for name, globs in (apps or {}).items()}
    if source in patterns:
        text = _read_newest(patterns[source])
        kind = "file"
    elif source in services:
        status = services[source]
        if status.manager == "supervisor":
            try:
                with SupervisorClient(supervisor) as client:
                    out, err = client.tail(source, _READ_BYTES)
            except SUPERVISOR_ERRORS as exc:
                raise CollectorError(f"cannot read supervisor's log of {source}: {type(exc).__name__}") from None
            text = out + "".join(f"[stderr] {line}\n" for line in err.splitlines())
            kind = "supervisor"
        else:
            text = _journal(source)
            kind = "journal"
    else:
        valid = sorted([*services, *patterns])
        raise NotFoundError(f"unknown log source {source!r}; valid: {', '.join(valid) or 'none configured'}")
    selected, truncated = _select(text, lines, contains)
    return LogTail(source=source, kind=kind, lines=selected, filter=contains, truncated=truncated)


def _read_newest(patterns: Sequence[str]) -> str:
    path = newest(patterns)
    if path is None:
        if len(patterns) == 1 and not glob.has_magic(patterns[0]):
            try:  # say why the one file is not read: missing, a symbolic link, not a regular file
                return _read_end(Path(patterns[0]))
            except OSError as exc:
                raise CollectorError(f"cannot read {patterns[0]}: {_why(exc)}") from None
        raise CollectorError(f"no regular file matches {', '.join(patterns)}")
    try:
        return _read_end(path)
    except OSError as exc:
        raise CollectorError(f"cannot read {path}: {_why(exc)}") from None


def _why(exc: OSError) -> str:
    return "it is a symbolic link" if exc.errno == errno.ELOOP else str(exc.strerror)


def _journal(unit: str) -> str:
    try:
        return run_systemctl(journalctl_argv(unit, MAX_LINES * 4), timeout=_JOURNAL_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CollectorError(f"the journal of {unit} is not readable here ({type(exc).__name__})") from None
