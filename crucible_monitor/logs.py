"""The last lines of a service's log (journal or supervisor) or of a configured log file, filtered as plain text.

Nothing here goes through a shell: journalctl gets an argument list, supervisor's logs come over XML-RPC, files
are read from their end. Output is bounded: at most ``MAX_LINES`` lines of at most ``MAX_LINE_CHARS`` characters.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Mapping
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


def tail_log(
    source: str,
    *,
    lines: int,
    contains: str | None,
    services: Mapping[str, ServiceStatus],
    files: Mapping[str, Path],
    supervisor: SupervisorConfig,
) -> LogTail:
    """The last ``lines`` lines of ``source`` (a watched service or a name in ``logs.files``) containing ``contains``.

    Raises:
        NotFoundError: ``source`` is neither; the message lists the valid sources.
        CollectorError: the log cannot be read (no journal here, supervisord down, file unreadable).
    """
    lines = max(1, min(lines, MAX_LINES))
    if source in files:
        try:
            text = _read_end(files[source])
        except OSError as exc:
            why = "it is a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
            raise CollectorError(f"cannot read {files[source]}: {why}") from None
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
        valid = sorted([*services, *files])
        raise NotFoundError(f"unknown log source {source!r}; valid: {', '.join(valid) or 'none configured'}")
    selected, truncated = _select(text, lines, contains)
    return LogTail(source=source, kind=kind, lines=selected, filter=contains, truncated=truncated)


def _journal(unit: str) -> str:
    try:
        return run_systemctl(journalctl_argv(unit, MAX_LINES * 4), timeout=_JOURNAL_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CollectorError(f"the journal of {unit} is not readable here ({type(exc).__name__})") from None
